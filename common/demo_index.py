"""`make demo`'s last step: demo_out/index.html, one page showing what every experiment's demo made.

    python -m common.demo_index demo_out [--screenshot demo_out/index.png]

The page is static HTML with relative links (it opens from the file system or any web server). For each
experiment folder under demo_out/ it shows the pictures at its top level, its text outputs (samples,
answers, transcripts, evaluation lines), and links to the viewers (neuraltalk/vis, densecap/vis), so a
newcomer looks instead of reading logs. A missing experiment gets a line saying how to make it.
"""
import argparse
import html
import os
import re
from pathlib import Path

EXPERIMENTS = [
    ("charrnn", "char-rnn", "a character-level LSTM trained on prose, then sampled"),
    ("chatbot", "chatbot", "a seq2seq chatbot trained on the built-in Chinese corpus, answering fixed questions"),
    ("colorize", "colorize", "gray photos colorized by a small network trained on scikit-image's photos"),
    ("dcgan", "dcgan", "a DCGAN's samples, an interpolation and vector arithmetic"),
    ("neuraltalk", "neuraltalk", "captions of held-out shapes-world images"),
    ("densecap", "densecap", "regions found and captioned in held-out shapes-world images"),
]
PICTURES = (".png", ".jpg", ".jpeg", ".gif")
TEXTS = (".txt",)
LOGS = (".log",)
# lines of a log worth showing: the accuracy / metric summaries the demos print
SUMMARY = re.compile(r"accuracy|CIDEr|BLEU|METEOR|mAP|detmap|PSNR|colourful|perplexity|FID", re.I)
VIEWERS = ("vis/index.html", "vis/view_results.html")
MAX_LINES = 30


def _text_block(path: Path, only_summary=False) -> str:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if only_summary:
        lines = [s for s in lines if SUMMARY.search(s)][-8:]
    if not lines:
        return ""
    more = len(lines) - MAX_LINES
    body = "\n".join(lines[:MAX_LINES]) + (f"\n… {more} more lines" if more > 0 else "")
    return (f'<div class="text"><a href="{html.escape(_rel(path))}">{html.escape(path.name)}</a>'
            f"<pre>{html.escape(body)}</pre></div>")


ROOT = Path(".")


def _rel(p: Path) -> str:
    return os.path.relpath(p, ROOT).replace(os.sep, "/")


def section(folder: Path, key: str, title: str, what: str) -> str:
    out = [f'<section id="{key}"><h2>{html.escape(title)}</h2><p class="what">{html.escape(what)}</p>']
    if not folder.is_dir():
        out.append(f'<p class="missing">not run: <code>make demo-{key}</code></p></section>')
        return "\n".join(out)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    pics = [p for p in files if p.suffix.lower() in PICTURES]
    if pics:
        out.append('<div class="pictures">')
        for p in pics:
            out.append(f'<figure><a href="{html.escape(_rel(p))}"><img src="{html.escape(_rel(p))}" '
                       f'alt="{html.escape(p.name)}"></a><figcaption>{html.escape(p.name)}</figcaption></figure>')
        out.append("</div>")
    for p in files:
        if p.suffix.lower() in TEXTS:
            out.append(_text_block(p))
        elif p.suffix.lower() in LOGS:
            out.append(_text_block(p, only_summary=True))
    links = [folder / v for v in VIEWERS if (folder / v).is_file()]
    for v in links:
        out.append(f'<p class="viewer">viewer: <a href="{html.escape(_rel(v))}">{html.escape(_rel(v))}</a> '
                   f"(its data loads over HTTP: <code>cd {html.escape(_rel(v.parent))} &amp;&amp; python -m "
                   f"http.server</code>)</p>")
    if len(out) == 1:
        out.append('<p class="missing">the demo wrote nothing to show</p>')
    out.append("</section>")
    return "\n".join(out)


STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{margin-bottom:.2em} section{border-top:1px solid #ccc;padding:.5em 0 1em}
.what{color:#555;margin-top:0} .pictures{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0} figure img{max-height:260px;max-width:520px;border:1px solid #ddd;image-rendering:pixelated}
figcaption{font-size:12px;color:#666} pre{background:#f6f6f6;padding:.6em;max-height:22em;overflow:auto;
white-space:pre-wrap;font-size:13px} .missing{color:#a33} nav a{margin-right:1em}"""


def build(demo_dir) -> Path:
    global ROOT
    ROOT = Path(demo_dir)
    nav = " ".join(f'<a href="#{k}">{html.escape(t)}</a>' for k, t, _ in EXPERIMENTS)
    body = "\n".join(section(ROOT / k, k, t, w) for k, t, w in EXPERIMENTS)
    page = (f'<!doctype html><html><head><meta charset="utf-8"><title>torch-classics demo</title>'
            f"<style>{STYLE}</style></head><body><h1>torch-classics: what <code>make demo</code> made</h1>"
            f"<p>Every experiment end to end on offline data, on this machine, for a fixed amount of work.</p>"
            f"<nav>{nav}</nav>{body}</body></html>")
    out = ROOT / "index.html"
    tmp = ROOT / ".index.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)
    return out


def screenshot(index: Path, png: Path, width=1200):
    """A full-page screenshot of the page in headless Chromium (served from its folder on 127.0.0.1)."""
    from common.browser import headless_chromium, serve_folder
    with serve_folder(index.parent) as url, headless_chromium() as driver:
        driver.set_window_size(width, 900)
        driver.get(f"{url}/{index.name}")
        driver.execute_script("return Promise.all([...document.images].map(i => i.decode().catch(() => 0)))")
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(width, min(int(height) + 40, 6000))
        driver.save_screenshot(str(png))
    return png


def main(argv=None):
    ap = argparse.ArgumentParser(description="write demo_out/index.html from the demos' outputs")
    ap.add_argument("demo_dir", nargs="?", default="demo_out")
    ap.add_argument("--screenshot", default=None, help="also save a PNG of the page (needs headless Chromium)")
    a = ap.parse_args(argv)
    out = build(a.demo_dir)
    print(f"demo page: {out}")
    if a.screenshot:
        from common.browser import missing_reason
        if missing_reason():
            print(f"(no screenshot: {missing_reason()})")
        else:
            print(f"screenshot: {screenshot(out, Path(a.screenshot))}")


if __name__ == "__main__":
    main()
