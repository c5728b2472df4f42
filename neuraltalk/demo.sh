#!/usr/bin/env bash
# make demo: the synthetic shapes world (common/testing/shapes.py) end to end: prepro -> train show-tell ->
# caption the held-out test images with metrics -> the vis page. Run from the repo root as
#   PY=.venv/bin/python DEMO=$PWD/demo_out bash neuraltalk/demo.sh
# A fixed 300 iterations (not a time budget), so a busy machine gives the same model, only later.
set -euo pipefail
PY=${PY:-python}
DEMO=${DEMO:-$(pwd)/demo_out}
OUT="$DEMO/neuraltalk"
mkdir -p "$OUT"
"$PY" -c "from common.testing.shapes import write_dataset; write_dataset('$OUT/shapes', 300, seed=0, size=128)"
cd "$(dirname "$0")"   # run the scripts from inside neuraltalk/, as the originals ran `th train.lua`

# a random-weight ResNet-18 on 128x128 scenes (112 crops) sees colours, shapes and places well enough
"$PY" prepro.py -input_json "$OUT/shapes/dataset_shapes.json" -images_root "$OUT/shapes" \
    -output_json "$OUT/talk.json" -output_h5 "$OUT/talk.h5" -word_count_threshold 0 \
    -cnn resnet18 -image_size 128 -crop_size 112 -att_size 4 -batch_size 50
"$PY" train.py -input_json "$OUT/talk.json" -input_h5 "$OUT/talk.h5" -caption_model show_tell \
    -rnn_size 96 -input_encoding_size 96 -batch_size 16 -learning_rate 2e-3 -drop_prob_lm 0.2 \
    -max_iters 300 -save_checkpoint_every 100 -val_images_use -1 -losses_log_every 25 \
    -checkpoint_path "$OUT/cv" -id shapes -gpuid -1 -threads 1 | tee "$OUT/train.log"
"$PY" eval.py -model "$OUT/cv/model_idshapes-best.pt" -split test -num_images -1 -beam_size 2 \
    -batch_size 30 -language_eval 1 -vis_dir "$OUT/vis" -gpuid -1 | tee "$OUT/eval.log"
echo "neuraltalk demo: captions of the 30 held-out images in $OUT/vis (cd $OUT/vis && $PY -m http.server)"
