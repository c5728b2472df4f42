#!/usr/bin/env bash
# make demo: train a small colorization network on scikit-image's bundled colour photos for a fixed number
# of iterations (so two runs give the same pictures), colorize gray versions of two held-out photos, and score
# them against two baselines (the gray photo, and the training photos' mean ab): demo_out/colorize/scores.txt.
# The loss: Zhang et al.'s classification over ab bins, decoded at temperature 1 (the mean of the predicted
# distribution), so where the small net is unsure the colour stays muted rather than a confident wrong red.
# Run from the repo root as  PY=.venv/bin/python DEMO=$PWD/demo_out bash colorize/demo.sh
set -euo pipefail
PY=${PY:-python}
DEMO=${DEMO:-$(pwd)/demo_out}
OUT="$DEMO/colorize"
HERE="$(cd "$(dirname "$0")" && pwd)"
rm -rf "$OUT"
mkdir -p "$OUT"
export OMP_NUM_THREADS=1  # one thread: the same floating-point sums, so the same picture, on any core count
"$PY" -m colorize.demo photos "$OUT/data"
"$PY" "$HERE/train.py" -data_dir "$OUT/data/train" -val_dir "$OUT/data/heldout" -checkpoint_dir "$OUT/cv" \
    -width 4 -image_size 128 -batch_size 16 -optimizer adam -learning_rate 0.001 -loss classify -temperature 1 -max_iters 300 \
    -eval_every 300 -print_every 50 -save_every 1000000 -seed 123 -gpu -1 | tee "$OUT/train.log"
"$PY" "$HERE/colorize.py" "$OUT/data/heldout_gray" "$OUT/colorized" -model "$OUT/cv/colornet_iter300.pt" -gpu -1 \
    -precision fp32  # not bf16 where the CPU has it: the same picture on every machine
"$PY" -m colorize.demo compare "$OUT"
# a short video: 3 s of gray clip (a pan, a cut, an audio tone) colorized with temporal smoothing, audio kept
"$PY" -m colorize.demo clip "$OUT/gray_clip.mp4"
"$PY" "$HERE/colorize.py" "$OUT/gray_clip.mp4" "$OUT/colour_clip.mp4" -model "$OUT/cv/colornet_iter300.pt" -gpu -1 \
    -precision fp32
