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
    "$PY" - "$URL/$name" "$DIR/$name" "$sum" <<'PYEOF'
import hashlib, os, sys, tempfile, urllib.request
url, dest, want = sys.argv[1:]
def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
if os.path.exists(dest) and sha(dest) == want:
    print(f"{dest}: present, checksum ok"); sys.exit(0)
fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(dest)), prefix=".part-")
try:
    with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as r:
        while chunk := r.read(1 << 20):
            f.write(chunk)
    got = sha(tmp)
    if got != want:
        sys.exit(f"error: {url}: sha256 {got[:16]}... does not match the expected {want[:16]}...; "
                 f"nothing was written (an LFS pointer instead of the file? try again or set DCGAN_MODEL_URL)")
    os.replace(tmp, dest)
    print(f"{dest}: downloaded, checksum ok")
except OSError as e:
    sys.exit(f"error: cannot download {url}: {e}")
finally:
    if os.path.exists(tmp):
        os.unlink(tmp)
PYEOF
    "$PY" "$HERE/convert.py" "$DIR/$name" "$DIR/${name%.t7}.pt"
done
