#!/usr/bin/env bash
# make demo: the synthetic shapes world (common/testing/shapes.py) end to end. Run from the repo root as
#   PY=.venv/bin/python DEMO=$PWD/demo_out bash neuraltalk/demo.sh
# The recipe, all of it a fixed amount of work (no time budget: a busy machine gives the same model, later):
#  1. 4,000 scenes of 1-2 shapes, 128 px (3,860 train / 40 val / 100 test); every caption names every shape.
#  2. the small CNN pre-trained on the training scenes' boxes (which shape lies in each cell of an 8x8 grid),
#     800 iterations at learning rate 4e-3: our stand-in for ImageNet weights, which cannot be downloaded here
#     (a random-weight ResNet-18's features reached a shapes caption accuracy of 0.15-0.4 at this budget).
#  3. prepro: its 8x8 grid on 64x64 squashes as the fc and att features.
#  4. train the top-down attention captioner (attention over the 64 cells) for ITERS iterations of 128
#     images, one caption each, no dropout (better than 0.2 at this budget), the learning rate halving every
#     100 iterations after 300 (neuraltalk/README.md's demo section has what else was tried, with its figures).
#  5. caption the 100 held-out test images (beam 2) with the metrics, and score them: `shapes caption accuracy`
#     = the share whose caption names every shape with its colour and kind, and its place where it says one.
set -euo pipefail
PY=${PY:-python}
case "$PY" in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")";; esac  # a relative PY still works after the cd below
export OMP_NUM_THREADS=1  # one thread: the same floating-point sums, so the same captions, on any core count
DEMO=${DEMO:-$(pwd)/demo_out}
OUT="$DEMO/neuraltalk"
ITERS=600
mkdir -p "$OUT"
"$PY" -c "from common.testing.shapes import write_dataset; write_dataset('$OUT/shapes', 4000, seed=0, size=128, val_frac=0.01, test_frac=0.025, max_shapes=2)"
"$PY" -m neuraltalk.shapes_cnn -shapes_dir "$OUT/shapes" -output "$OUT/small_cnn.pth" -max_iters 800 \
    -learning_rate 4e-3 | tee "$OUT/cnn.log"
cd "$(dirname "$0")"   # run the scripts from inside neuraltalk/, as the originals ran `th train.lua`

"$PY" prepro.py -input_json "$OUT/shapes/dataset_shapes.json" -images_root "$OUT/shapes" \
    -output_json "$OUT/talk.json" -output_h5 "$OUT/talk.h5" -word_count_threshold 0 -max_length 13 \
    -cnn small -cnn_weights "$OUT/small_cnn.pth" -image_size 64 -crop_size 64 -att_size 8 -batch_size 100
"$PY" train.py -input_json "$OUT/talk.json" -input_h5 "$OUT/talk.h5" -caption_model topdown \
    -rnn_size 96 -input_encoding_size 96 -att_hid_size 64 -batch_size 128 -seq_per_img 1 -learning_rate 4e-3 \
    -drop_prob_lm 0 -learning_rate_decay_start 300 -learning_rate_decay_every 100 \
    -max_iters $ITERS -save_checkpoint_every $ITERS -val_images_use -1 -losses_log_every 50 \
    -checkpoint_path "$OUT/cv" -id shapes -gpuid -1 | tee "$OUT/train.log"
"$PY" eval.py -model "$OUT/cv/model_idshapes-best.pt" -split test -num_images -1 -beam_size 2 \
    -batch_size 50 -language_eval 1 -vis_dir "$OUT/vis" -gpuid -1 | tee "$OUT/eval.log"
cd - > /dev/null
"$PY" -m neuraltalk.shapes_score -vis_json "$OUT/vis/vis.json" -regions_json "$OUT/shapes/region_descriptions.json" \
    | tee -a "$OUT/eval.log"
"$PY" -m neuraltalk.vis_screenshot "$OUT/vis" "$OUT/vis_demo.png"
echo "neuraltalk demo: captions of the 100 held-out images in $OUT/vis (cd $OUT/vis && $PY -m http.server)"
