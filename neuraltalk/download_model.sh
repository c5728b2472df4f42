#!/usr/bin/env bash
# Fetch neuraltalk2's pretrained COCO checkpoint (VGG-16 + LSTM, ~0.9 CIDEr) and convert it to .pt.
#   cd neuraltalk && PY=python bash download_model.sh             # the CPU variant (checkpoint_v1_cpu.zip)
#   NEURALTALK_VARIANT=gpu bash download_model.sh                  # the CUDA one (checkpoint_v1.zip); both convert
# Environment: NEURALTALK_MODEL_URL (folder URL, default Karpathy's), NEURALTALK_MODEL_DIR (default model/),
# NEURALTALK_MODEL_SHA256 (expected sha256 of the zip). The published page gives no checksum and the files
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

mkdir -p "$DIR"
if [ ! -f "$DIR/$ZIP" ]; then
  echo "downloading $URL/$ZIP ..."
  if command -v curl > /dev/null; then
    curl -fL --retry 3 -o "$DIR/$ZIP.part" "$URL/$ZIP"
  else
    "$PY" -c "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])" "$URL/$ZIP" "$DIR/$ZIP.part"
  fi
  mv "$DIR/$ZIP.part" "$DIR/$ZIP"
fi
ACTUAL=$("$PY" -c "import hashlib, sys; h = hashlib.sha256(); f = open(sys.argv[1], 'rb')
for b in iter(lambda: f.read(1 << 20), b''): h.update(b)
print(h.hexdigest())" "$DIR/$ZIP")
if [ -n "$EXPECTED" ] && [ "$ACTUAL" != "$EXPECTED" ]; then
  echo "error: $DIR/$ZIP has sha256 $ACTUAL, expected $EXPECTED; deleted it, run again to re-download" >&2
  rm -f "$DIR/$ZIP"
  exit 1
elif [ -z "$EXPECTED" ]; then
  echo "warning: no known checksum for $ZIP; its sha256 is $ACTUAL (pin it with NEURALTALK_MODEL_SHA256)" >&2
fi
"$PY" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$DIR/$ZIP" "$DIR"
T7=$(find "$DIR" -name '*.t7' | sort | head -1)
if [ -z "$T7" ]; then
  echo "error: $ZIP holds no .t7 checkpoint" >&2
  exit 1
fi
"$PY" "$HERE/convert.py" "$T7" "$DIR/neuraltalk2_coco_$VARIANT.pt"
echo "caption your images: $PY eval.py -model $DIR/neuraltalk2_coco_$VARIANT.pt -image_folder <folder> -gpuid -1"
