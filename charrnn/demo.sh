#!/usr/bin/env bash
# make demo: train a small char-rnn on the prose of Python's bundled docs, then sample from it.
# A fixed 800 iterations (about a minute on an idle 2-core machine), so the sample does not depend on load.
# Run from the repo root as  PY=.venv/bin/python DEMO=$PWD/demo_out bash charrnn/demo.sh
# (DEMO_ITERS shortens the run; the test of this script uses it.)
set -euo pipefail
PY=${PY:-python}
DEMO=${DEMO:-$(pwd)/demo_out}
OUT="$DEMO/charrnn"
mkdir -p "$OUT"
"$PY" -m charrnn.demo_corpus "$OUT/data/input.txt"
cd "$(dirname "$0")"   # run the scripts from inside charrnn/, as the original ran `th train.lua`
# one thread: a second one gains little at this size and collapses when the machine is busy
"$PY" train.py -data_dir "$OUT/data" -gpuid -1 -threads 1 -rnn_size 128 -num_layers 2 \
    -seq_length 50 -batch_size 50 -learning_rate 3e-3 -max_iters "${DEMO_ITERS:-800}" -eval_val_every 400 -print_every 100 \
    -checkpoint_dir "$OUT/cv" -savefile demo
"$PY" sample.py "$(ls -t "$OUT"/cv/lm_demo_*.pt | head -1)" -gpuid -1 \
    -primetext "The " -length 600 -temperature 0.7 -verbose 0 | tee "$OUT/sample.txt"
