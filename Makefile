# torch-classics. `make demo` and `make test` set up everything they need themselves.
VENV ?= .venv
PYTHON ?= python3
V := $(abspath $(VENV))
PY := $(V)/bin/python
STAMP := $(V)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
DEMO := $(abspath demo_out)

.PHONY: setup demo test bench download-models download-data lint clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(V)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@rm -f $(V)/.installed-*; touch $@

EXPERIMENTS := charrnn chatbot colorize dcgan neuraltalk densecap
PRESENT := $(foreach e,$(EXPERIMENTS),$(if $(wildcard $(e)/tests),$(e)))

test: $(STAMP)
	$(PY) -m pytest common $(PRESENT)

demo: $(STAMP) demo-charrnn demo-chatbot demo-colorize demo-dcgan demo-neuraltalk demo-densecap
	$(PY) -m common.demo_index $(DEMO) --screenshot $(DEMO)/index.png
	@echo "demo outputs are in demo_out/: open demo_out/index.html"

# each experiment's demo is its own demo.sh (PY = the venv's python, DEMO = demo_out/)
demo-charrnn demo-chatbot demo-colorize demo-dcgan demo-neuraltalk demo-densecap: demo-%: $(STAMP)
	@if [ -f $*/demo.sh ]; then PY=$(PY) DEMO=$(DEMO) bash $*/demo.sh; fi

bench: $(STAMP)
	@for e in $(EXPERIMENTS); do [ -f bench/$${e}_bench.py ] || continue; \
	    echo "== bench/$${e}_bench.py"; $(PY) bench/$${e}_bench.py || exit 1; done

download-data: $(STAMP)
	$(PY) -m common.download_data
	$(PY) -m charrnn.download_data charrnn/data

# MODELS="colorize dcgan": only those experiments; NO_SETUP=1 PY=python: use that python as it is (the test does)
download-models: $(if $(NO_SETUP),,$(STAMP))
	@found=0; for s in $(if $(MODELS),$(addsuffix /download_model.sh,$(MODELS)),*/download_model.sh); do [ -f "$$s" ] || continue; found=1; \
	    echo "== $$s"; (cd $$(dirname $$s) && PY=$(PY) bash download_model.sh) || exit 1; done; \
	    [ $$found = 1 ] || echo "no experiment here publishes pretrained models (char-rnn and neuralconvo never did)"

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf demo_out
