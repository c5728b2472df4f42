#!/usr/bin/env bash
# Writes dcgan/tests/fixtures/dec2015/ with the original code of December 2015 (see README.md here):
#   soumith/dcgan.torch @5013be2 (2015-12-10, the commit that linked the published generators): main.lua
#   trains a small generator one epoch and saves it with its util.save; generate.lua renders it;
#   torch/nn @e7fdd21 (2015-12-10), whose SpatialBatchNormalization stores running_std.
# Needs a Torch7 prefix (LuaJIT, torch7; image and optim) and the two mirrors. Usage:
#   bash dcgan/tests/lua/make_fixture.sh [OUT_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mkdir -p "${1:-$HERE/../fixtures/dec2015}" && cd "${1:-$HERE/../fixtures/dec2015}" && pwd)
T7=${T7:-/work/t7build/prefix}                # today's Torch7 build (torch7, image, optim)
OLD=${OLD:-/tmp/t7old}                        # a copy of it with the December-2015 nn installed
MIRROR=${MIRROR:-/work/.mirror}
NN_COMMIT=e7fdd21f02e5672f8cb73e8b5a0244db604947d2
DCGAN_COMMIT=5013be2
export PATH=$T7/bin:$PATH OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ ! -f "$OLD/share/lua/5.1/nn/init.lua" ] || ! grep -q running_std "$OLD/share/lua/5.1/nn/SpatialBatchNormalization.lua"; then
    rm -rf "$OLD" && cp -a "$T7" "$OLD"
    git clone -q "$MIRROR/torch+nn/repo" "$WORK/nn" && git -C "$WORK/nn" checkout -q $NN_COMMIT
    # Two TH calls changed signature after 2015 (THTensor_sum gained keepdim, THVector_add became cadd).
    # They sit in SparseLinear, TemporalSubSampling and the *ConvolutionMM backward helpers, none of
    # which the generator uses; without this the 2015 nn does not compile against today's TH.
    sed -i -E 's/THVector_\(add\)\(([^,]+),/THVector_(cadd)(\1, \1,/' "$WORK"/nn/generic/{Spatial,Volumetric}ConvolutionMM.c
    sed -i -E 's/THTensor_\(sum\)\(([^;]*), ([01])\);/THTensor_(sum)(\1, \2, 1);/' "$WORK"/nn/generic/{SparseLinear,TemporalSubSampling}.c
    (cd "$WORK/nn" && luarocks make --tree="$OLD" --deps-mode=none rocks/nn-scm-1.rockspec > "$WORK/nn-build.log" 2>&1) \
        || { tail -20 "$WORK/nn-build.log"; exit 1; }
fi
# the 2015 nn first, everything else (torch, image, optim) from the prefix
export LUA_PATH="$OLD/share/lua/5.1/?.lua;$OLD/share/lua/5.1/?/init.lua;;" LUA_CPATH="$OLD/lib/lua/5.1/?.so;;"
luajit -e "require 'nn'; assert(nn.SpatialBatchNormalization(2).running_std, 'not the 2015 nn')"

git clone -q "$MIRROR/soumith+dcgan.torch/repo" "$WORK/dcgan" && git -C "$WORK/dcgan" checkout -q $DCGAN_COMMIT
cp "$HERE/stub_data.lua" "$WORK/dcgan/data/data.lua"   # main.lua's loader needs `threads` and a dataset
cd "$WORK/dcgan"
# main.lua as users ran it: options in the environment; it picks its seed with torch.random, seeded here
dataset=folder batchSize=8 ntrain=32 niter=1 ngf=8 ndf=8 nz=100 gpu=0 display=0 nThreads=0 name=dec2015 \
    luajit -e "require 'torch'; torch.manualSeed(1)" main.lua | tee "$WORK/train.log" | grep -E "Epoch|Seed"
cp checkpoints/dec2015_1_net_G.t7 "$OUT/dec2015_1_net_G.t7"
net="$OUT/dec2015_1_net_G.t7" batchSize=8 gpu=0 display=0 name="$OUT/generation_train" \
    luajit -e "require 'torch'; torch.manualSeed(2)" "$HERE/generate_fixture.lua" "$WORK/dcgan" "$OUT"
{ echo "dcgan.torch $DCGAN_COMMIT, torch/nn $NN_COMMIT, torch7 $(git -C "$MIRROR/torch+torch7/repo" rev-parse --short HEAD) (prefix $T7)"
  (cd "$OUT" && sha256sum dec2015_1_net_G.t7 noise.t7 images_train.t7 output_eval.t7 generation_train.png); } > "$OUT/PROVENANCE.txt"
cat "$OUT/PROVENANCE.txt"
