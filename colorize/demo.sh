#!/usr/bin/env bash
# make demo: train a small colorization network on scikit-image's bundled colour photos (about a minute of
# CPU), colorize gray versions of two held-out photos, and write gray | ours | original pictures.
# Run from the repo root as  PY=.venv/bin/python DEMO=$PWD/demo_out bash colorize/demo.sh
set -euo pipefail
PY=${PY:-python}
DEMO=${DEMO:-$(pwd)/demo_out}
OUT="$DEMO/colorize"
HERE="$(cd "$(dirname "$0")" && pwd)"
rm -rf "$OUT/cv" "$OUT/colorized"
mkdir -p "$OUT"
"$PY" -m colorize.demo photos "$OUT/data"
"$PY" "$HERE/train.py" -data_dir "$OUT/data/train" -val_dir "$OUT/data/heldout" -checkpoint_dir "$OUT/cv" \
    -width 4 -image_size 128 -batch_size 16 -loss l2 -max_cpu_time 70 -eval_every 100 -print_every 50 \
    -save_every 1000000 -gpu -1
MODEL=$(ls -t "$OUT"/cv/colornet_iter*.pt | head -1)
"$PY" "$HERE/colorize.py" "$OUT/data/heldout_gray" "$OUT/colorized" -model "$MODEL" -gpu -1
"$PY" -m colorize.demo compare "$OUT"
# a short video: 3 s of gray clip (a pan, a cut, an audio tone) colorized with temporal smoothing, audio kept
"$PY" -m colorize.demo clip "$OUT/gray_clip.mp4"
"$PY" "$HERE/colorize.py" "$OUT/gray_clip.mp4" "$OUT/colour_clip.mp4" -model "$MODEL" -gpu -1
