#!/usr/bin/env bash
# Download the original pretrained DenseCap model (as scripts/download_pretrained_model.sh did) into
# data/models/densecap/, check it, unzip it. run_model.py reads the .t7 directly.
#   cd densecap && PY=../.venv/bin/python bash download_model.sh
# DENSECAP_MODEL_URL overrides the address (tests point it at a server on 127.0.0.1);
# DENSECAP_MODEL_SHA256, when set, must match the zip's sha256 (the published page gives none).
set -euo pipefail
PY=${PY:-python}
URL=${DENSECAP_MODEL_URL:-http://cs.stanford.edu/people/jcjohnson/densecap/densecap-pretrained-vgg16.t7.zip}
DEST=${DENSECAP_MODEL_DIR:-data/models/densecap}
"$PY" -m densecap.download_model "$URL" "$DEST" "${DENSECAP_MODEL_SHA256:-}"
