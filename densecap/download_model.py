"""Fetch a zip with a progress bar into DEST, check its sha256 (when one is given) and that it is a
whole zip, unzip it, and keep <zip>.sha256 beside it. Used by download_model.sh.

    python -m densecap.download_model URL DEST [SHA256]
"""
import hashlib
import os
import sys
import urllib.request
import zipfile

from tqdm import tqdm

from common.cli import UserError, run


def download(url, dest_dir, sha256=""):
    os.makedirs(dest_dir, exist_ok=True)
    path = os.path.join(dest_dir, os.path.basename(url.split("?")[0]))
    part = path + ".part"
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(part, "wb") as f:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(path),
                      disable=not sys.stderr.isatty()) as bar:
                while chunk := resp.read(1 << 20):
                    f.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except OSError as e:
        if os.path.exists(part):
            os.unlink(part)
        raise UserError(f"{url}: download failed ({e}); check the address or your connection") from None
    got = digest.hexdigest()
    if sha256 and got != sha256.lower():
        os.unlink(part)
        raise UserError(f"{url}: sha256 {got} does not match the expected {sha256}; the download was removed")
    if not zipfile.is_zipfile(part):
        os.unlink(part)
        raise UserError(f"{url}: not a zip file (a proxy or error page?); the download was removed")
    os.replace(part, path)
    with open(path + ".sha256", "w") as f:
        f.write(f"{got}  {os.path.basename(path)}\n")
    with zipfile.ZipFile(path) as z:
        bad = z.testzip()
        if bad:
            raise UserError(f"{path}: corrupt member {bad}; delete it and download again")
        z.extractall(dest_dir)
        names = z.namelist()
    print(f"downloaded {path} (sha256 {got}); unpacked {', '.join(names)}", file=sys.stderr)
    return [os.path.join(dest_dir, n) for n in names]


def main(argv):
    if len(argv) not in (2, 3):
        raise UserError("usage: python -m densecap.download_model URL DEST [SHA256]")
    return download(*argv)


if __name__ == "__main__":
    run(main, sys.argv[1:])
