#!/usr/bin/env bash
# Fetch dcgan.torch's published generators (celebA_25_net_G.t7, bedrooms_4_net_G.t7: git-LFS objects of
# soumith/lfs), check their sha256, and convert each to .pt next to it. Run from dcgan/ (make
# download-models does): files go to models/. Already-present files with the right checksum are kept.
#   DCGAN_MODEL_URL   base URL to fetch from (default: the soumith/lfs raw files on GitHub)
#   DCGAN_MODEL_SUMS  a sha256sum-style list ("<sha256>  <file>") to use instead of the built-in one
#   DCGAN_MODEL_DIR   where to put them (default: models)
set -euo pipefail
PY=${PY:-python}
URL=${DCGAN_MODEL_URL:-https://github.com/soumith/lfs/raw/master/dcgan.torch}
DIR=${DCGAN_MODEL_DIR:-models}
SUMS_DEFAULT="1f7c9f7bc0845cfc0cef37eb687b2b819e55543f86c4253c2335ae68a8789a40  celebA_25_net_G.t7
b1950fd39a6a9f311e25072a742e8e04a3fe3ad478e510d749afdcc23db23419  bedrooms_4_net_G.t7"
if [ -n "${DCGAN_MODEL_SUMS:-}" ]; then SUMS=$(cat "$DCGAN_MODEL_SUMS"); else SUMS=$SUMS_DEFAULT; fi
mkdir -p "$DIR"
HERE=$(cd "$(dirname "$0")" && pwd)
echo "$SUMS" | while read -r sum name; do
    [ -n "$name" ] || continue
    "$PY" -m common.download "$URL/$name" "$DIR/$name" --sha256 "$sum"
    pt="$DIR/${name%.t7}.pt"
    if [ "$pt" -nt "$DIR/$name" ]; then echo "$pt: already converted"; else "$PY" "$HERE/convert.py" "$DIR/$name" "$pt"; fi
done
