"""`make download-data`: fetch tinyshakespeare and the Wang Feng lyrics into charrnn/data/<name>/input.txt.

    python -m charrnn.download_data charrnn/data
"""
import os
import sys
import urllib.error
import urllib.request

from common.cli import UserError, run

CORPORA = {
    "tinyshakespeare": "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    "wangfeng": "https://raw.githubusercontent.com/phunterlau/wangfeng-rnn/master/input.txt",
}


def download(url, dest, timeout=30):
    """Fetch `url` to `dest` atomically; an unreachable URL is one clear UserError."""
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    tmp = dest + ".part"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
            while block := r.read(1 << 16):
                f.write(block)
    except (urllib.error.URLError, OSError) as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        reason = getattr(e, "reason", e)
        raise UserError(f"could not download {url} ({reason}); are you offline? Put the text in {dest} "
                        f"yourself") from None
    os.replace(tmp, dest)
    return dest


def main(root="data"):
    for name, url in CORPORA.items():
        dest = os.path.join(root, name, "input.txt")
        if os.path.exists(dest):
            print(f"{dest} already there")
            continue
        download(url, dest)
        print(f"downloaded {url} -> {dest} ({os.path.getsize(dest):,} bytes)")


if __name__ == "__main__":
    if sys.argv[1:2] and sys.argv[1].startswith("-"):
        sys.exit(f"usage: python -m charrnn.download_data [FOLDER]  (default: data; fetches {', '.join(CORPORA)})")
    run(main, *sys.argv[1:2])
