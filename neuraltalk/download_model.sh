#!/usr/bin/env bash
# Fetch neuraltalk2's pretrained COCO checkpoint (VGG-16 + LSTM, ~0.9 CIDEr) and convert it to .pt.
#   cd neuraltalk && PY=python bash download_model.sh             # the CPU variant (checkpoint_v1_cpu.zip)
#   NEURALTALK_VARIANT=gpu bash download_model.sh                  # the CUDA one (checkpoint_v1.zip); both convert
# Environment: NEURALTALK_MODEL_URL (folder URL, default Karpathy's), NEURALTALK_MODEL_DIR (default model/),
# NEURALTALK_MODEL_SHA256 (expected sha256 of the zip). Downloads go through `python -m common.download`. The published page gives no checksum and the files
# cannot be fetched from this build machine, so CHECKSUMS below starts empty: the first download prints
# its sha256 (pin it with NEURALTALK_MODEL_SHA256, or add it below); a mismatch always stops the script.
set -euo pipefail
PY=${PY:-python}
URL=${NEURALTALK_MODEL_URL:-http://cs.stanford.edu/people/karpathy/neuraltalk2}
DIR=${NEURALTALK_MODEL_DIR:-model}
VARIANT=${NEURALTALK_VARIANT:-cpu}
case "$VARIANT" in
  cpu) ZIP=checkpoint_v1_cpu.zip ;;
  gpu) ZIP=checkpoint_v1.zip ;;
  *) echo "error: NEURALTALK_VARIANT must be cpu or gpu, not '$VARIANT'" >&2; exit 1 ;;
esac
declare -A CHECKSUMS=( [checkpoint_v1_cpu.zip]="" [checkpoint_v1.zip]="" )
EXPECTED=${NEURALTALK_MODEL_SHA256:-${CHECKSUMS[$ZIP]}}
HERE=$(cd "$(dirname "$0")" && pwd)

export PYTHONPATH="$HERE/..${PYTHONPATH:+:$PYTHONPATH}"  # common/ and neuraltalk/, from any folder

# the one download helper: atomic (a partial or wrong file never takes the name), checksum-checked
"$PY" -m common.download "$URL/$ZIP" "$DIR/$ZIP" --sha256 "$EXPECTED"
if [ -z "$EXPECTED" ]; then
  ACTUAL=$("$PY" -c "import sys; from common.download import digest; print(digest(sys.argv[1]))" "$DIR/$ZIP")
  echo "warning: no known checksum for $ZIP; its sha256 is $ACTUAL (pin it with NEURALTALK_MODEL_SHA256)" >&2
fi
# the .t7 this zip holds (not any .t7 of the folder: both variants may sit there side by side)
T7=$("$PY" -c "import os, sys, zipfile
z = zipfile.ZipFile(sys.argv[1]); names = sorted(n for n in z.namelist() if n.endswith('.t7'))
if names:
    out = os.path.join(sys.argv[2], names[0])
    if not (os.path.isfile(out) and os.path.getsize(out) == z.getinfo(names[0]).file_size):
        z.extract(names[0], sys.argv[2])
    print(out)" "$DIR/$ZIP" "$DIR")
if [ -z "$T7" ]; then
  echo "error: $ZIP holds no .t7 checkpoint" >&2
  exit 1
fi
PT="$DIR/neuraltalk2_coco_$VARIANT.pt"
if [ "$PT" -nt "$T7" ]; then echo "$PT: already converted"; else "$PY" "$HERE/convert.py" "$T7" "$PT"; fi
echo "caption your images: $PY eval.py -model $DIR/neuraltalk2_coco_$VARIANT.pt -image_folder <folder> -gpuid -1"
