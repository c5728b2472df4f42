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

test: $(STAMP)
	$(PY) -m pytest common charrnn chatbot

demo: $(STAMP) demo-charrnn demo-chatbot
	@echo "demo outputs are in demo_out/"

demo-charrnn: $(STAMP)
	@mkdir -p $(DEMO)/charrnn
	$(PY) -m charrnn.demo_corpus $(DEMO)/charrnn/data/input.txt
	cd charrnn && $(PY) train.py -data_dir $(DEMO)/charrnn/data -gpuid -1 -rnn_size 128 -num_layers 2 \
	    -seq_length 50 -batch_size 50 -learning_rate 3e-3 -max_time 60 -eval_val_every 400 -print_every 100 \
	    -checkpoint_dir $(DEMO)/charrnn/cv -savefile demo
	cd charrnn && $(PY) sample.py $$(ls -t $(DEMO)/charrnn/cv/lm_demo_*.pt | head -1) -gpuid -1 \
	    -primetext "The " -length 600 -temperature 0.7 -verbose 0 | tee $(DEMO)/charrnn/sample.txt

demo-chatbot: $(STAMP)
	@if [ -f chatbot/demo.sh ]; then PY=$(PY) DEMO=$(DEMO) bash chatbot/demo.sh; fi

bench: $(STAMP)
	$(PY) bench/charrnn_bench.py
	@if [ -f bench/chatbot_bench.py ]; then $(PY) bench/chatbot_bench.py; fi

download-data: $(STAMP)
	$(PY) -m charrnn.download_data charrnn/data

download-models: $(STAMP)
	@found=0; for s in */download_model.sh; do [ -f "$$s" ] || continue; found=1; \
	    echo "== $$s"; (cd $$(dirname $$s) && PY=$(PY) bash download_model.sh) || exit 1; done; \
	    [ $$found = 1 ] || echo "no experiment here publishes pretrained models (char-rnn and neuralconvo never did)"

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf demo_out
