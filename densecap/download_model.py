"""Fetch a zip into DEST with common.download (atomic, progress bar, its sha256 checked when one is
given), check that it is a whole zip, unzip it, and keep <zip>.sha256 beside it. Used by download_model.sh.

    python -m densecap.download_model URL DEST [SHA256]
"""
import os
import sys
import zipfile

from common.cli import UserError, run
from common.download import digest, fetch


def download(url, dest_dir, sha256=""):
    os.makedirs(dest_dir, exist_ok=True)
    path = os.path.join(dest_dir, os.path.basename(url.split("?")[0]))
    fetch(url, path, sha256=sha256 or None, quiet=True)  # the one download helper: atomic, checksum-checked
    got = digest(path)
    if not zipfile.is_zipfile(path):
        os.unlink(path)
        raise UserError(f"{url}: not a zip file (a proxy or error page?); the download was removed")
    record = f"{got}  {os.path.basename(path)}\n"
    if not os.path.isfile(path + ".sha256") or open(path + ".sha256").read() != record:
        with open(path + ".sha256", "w") as f:
            f.write(record)
    with zipfile.ZipFile(path) as z:
        bad = z.testzip()
        if bad:
            raise UserError(f"{path}: corrupt member {bad}; delete it and download again")
        names = z.namelist()
        for info in z.infolist():  # a member already unpacked whole is kept as it is
            target = os.path.join(dest_dir, info.filename)
            if not (os.path.isfile(target) and os.path.getsize(target) == info.file_size):
                z.extract(info, dest_dir)
    print(f"downloaded {path} (sha256 {got}); unpacked {', '.join(names)}", file=sys.stderr)
    return [os.path.join(dest_dir, n) for n in names]


def main(argv):
    if len(argv) not in (2, 3):
        raise UserError("usage: python -m densecap.download_model URL DEST [SHA256]")
    return download(*argv)


if __name__ == "__main__":
    run(main, sys.argv[1:])
