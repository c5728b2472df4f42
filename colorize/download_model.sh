#!/usr/bin/env bash
# Fetch the published colorization models and convert them to .pt (run from colorize/, as `make download-models`).
#
#   bash download_model.sh              # both: colornet (Places, the default model) and colornet_imagenet
#   bash download_model.sh colornet     # only one
#
# LICENCE: the models are by Satoshi Iizuka, Edgar Simo-Serra and Hiroshi Ishikawa and are licensed
# CC BY-NC-SA 4.0 (https://creativecommons.org/licenses/by-nc-sa/4.0/): non-commercial use only, with
# attribution; the converted .pt files are adapted material under the same licence. Never commit them.
#
# Environment: PY (python), COLORIZE_MODEL_URL (base URL; default the authors' current host),
# COLORIZE_MODEL_DIR (default models/), COLORNET_MD5 / COLORNET_IMAGENET_MD5 (override the checksums).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-python}
BASE=${COLORIZE_MODEL_URL:-http://iizuka.cs.tsukuba.ac.jp/data}
DIR=${COLORIZE_MODEL_DIR:-models}
declare -A MD5=([colornet]=${COLORNET_MD5:-c88fa2bb6dc9f942a492a7dc7009b966}
                [colornet_imagenet]=${COLORNET_IMAGENET_MD5:-09eddf45cd1b085fcb4cc880ba448072})
NAMES=("${@:-colornet colornet_imagenet}")
NAMES=(${NAMES[*]})

echo "note: these models are CC BY-NC-SA 4.0 (Iizuka, Simo-Serra, Ishikawa): non-commercial use, attribution," \
     "share-alike; see colorize/README.md"
mkdir -p "$DIR"
for name in "${NAMES[@]}"; do
    [ -n "${MD5[$name]:-}" ] || { echo "error: unknown model '$name' (colornet or colornet_imagenet)" >&2; exit 1; }
    t7="$DIR/$name.t7"; pt="$DIR/$name.pt"
    if [ -f "$pt" ]; then echo "$pt already there"; continue; fi
    # common.download: to a temporary file, md5-checked, then renamed; a t7 already there with the right md5
    # (one put there by hand) is kept; offline or a dead host is one line saying where to put the file
    [ -f "$t7" ] || echo "downloading $BASE/$name.t7 (about 660 MB)"
    PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m common.download "$BASE/$name.t7" "$t7" --md5 "${MD5[$name]}"
    "$PY" "$(dirname "$0")/convert.py" "$t7" "$pt"
done
