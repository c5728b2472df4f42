"""One download-and-checksum helper for every `download_model.sh` and `make download-data`.

    python -m common.download URL DEST [--sha256 HEX] [--md5 HEX]

Fetches to a temporary file beside DEST, checks the checksum, then renames: an interrupted or wrong
download never leaves a file under the final name. An existing DEST with the right checksum is kept.
Offline or a dead host is one line naming the URL and what to do instead.
"""
import argparse
import hashlib
import os
import tempfile
import urllib.error
import urllib.request

from common.cli import UserError, run


def digest(path, algo="sha256") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(url, dest, sha256=None, md5=None, timeout=60, quiet=False) -> str:
    """Download `url` to `dest` (atomically, checksum-checked); -> dest."""
    dest = os.fspath(dest)
    want = [(a, v.lower()) for a, v in (("sha256", sha256), ("md5", md5)) if v]
    if os.path.isfile(dest) and all(digest(dest, a) == v for a, v in want):
        if not quiet:
            print(f"{dest}: already there" + (", checksum ok" if want else ""))
        return dest
    folder = os.path.dirname(os.path.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".part-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as r:
            total = int(r.headers.get("Content-Length") or 0)
            bar = None
            if not quiet and total > (8 << 20):
                from tqdm import tqdm
                bar = tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(dest))
            while block := r.read(1 << 20):
                f.write(block)
                if bar:
                    bar.update(len(block))
            if bar:
                bar.close()
        for algo, value in want:
            got = digest(tmp, algo)
            if got != value:
                raise UserError(f"{url}: {algo} {got[:16]}... does not match the expected {value[:16]}...; nothing "
                                f"was kept (a changed or partial file, or an error page? try again, or use a mirror)")
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise UserError(f"download failed: could not download {url} ({reason}); offline? fetch it on a connected machine and "
                        f"put it at {dest}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if not quiet:
        print(f"{dest}: downloaded" + (", checksum ok" if want else ""))
    return dest


def main(argv=None):
    ap = argparse.ArgumentParser(description="download a file atomically and check its checksum")
    ap.add_argument("url")
    ap.add_argument("dest")
    ap.add_argument("--sha256", default=None)
    ap.add_argument("--md5", default=None)
    a = ap.parse_args(argv)
    fetch(a.url, a.dest, sha256=a.sha256 or None, md5=a.md5 or None)


if __name__ == "__main__":
    run(main)
