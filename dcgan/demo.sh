#!/usr/bin/env bash
# make demo: train a DCGAN (half-width nets, ngf=ndf=32, main.lua's lr 0.0002) on scikit-image's 200 bundled
# faces (lfw_subset, 25x25 grayscale, scaled to 32x32) for a fixed amount of work, niter=150 epochs of 7
# batches of 32 (1,050 iterations, seed 1: two runs give the same pictures on one machine and thread count;
# the whole demo took 85-92 s wall on this 2-core AMD EPYC AVX2-only machine with its two threads, training at
# about 0.05 s per iteration), then draw a sample grid, an interpolation strip and the vector-arithmetic
# batch with the real commands in the original's environment-variable style.
# Run from the repo root as
#   PY=.venv/bin/python DEMO=$PWD/demo_out bash dcgan/demo.sh
set -euo pipefail
PY=${PY:-python}
case $PY in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" ;; esac  # still valid after cd
DEMO=${DEMO:-$(pwd)/demo_out}
OUT="$DEMO/dcgan"
rm -rf "$OUT/checkpoints"  # a fresh run each time (train.py refuses to overwrite an earlier run's checkpoints)
mkdir -p "$OUT/faces/lfw"
"$PY" -c "
import sys, numpy as np
from PIL import Image
from skimage import data
for i, face in enumerate(data.lfw_subset()):
    Image.fromarray((face * 255).round().astype(np.uint8)).save(f'{sys.argv[1]}/{i:03d}.png')
" "$OUT/faces/lfw"
cd "$(dirname "$0")"   # run the scripts from inside dcgan/, as the originals ran `th main.lua`

dataset=folder DATA_ROOT="$OUT/faces" nc=1 loadSize=32 fineSize=32 batchSize=32 nThreads=0 gpu=0 niter=150 \
    ngf=32 ndf=32 lr=0.0002 seed=1 name=faces checkpoints_dir="$OUT/checkpoints" print_every=100 \
    display_every=100 epoch_save_modulo=150 "$PY" train.py | tee "$OUT/train.log"
NET="$OUT/checkpoints/faces_150_net_G.pt"
gpu=0 batchSize=36 net="$NET" seed=2 name="$OUT/samples" "$PY" generate.py
gpu=0 batchSize=6 net="$NET" seed=3 noisemode=line name="$OUT/interpolation" "$PY" generate.py
gpu=0 batchSize=36 net="$NET" name="$OUT/arithmetic" "$PY" arithmetic.py
gpu=0 batchSize=36 net="$NET" name="$OUT/arithmetic" A=1,2,3 B=4,5,6 C=7,8,9 "$PY" arithmetic.py
echo "dcgan demo: $OUT/samples.png (36 samples), $OUT/interpolation.png (a walk between two noise vectors),"
echo "  $OUT/arithmetic.png, training grid $OUT/checkpoints/faces_samples.png, generator $NET"
