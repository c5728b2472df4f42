"""A screenshot of the vis page (eval.py's vis/ folder) in headless Chromium: the demo's picture.

    python -m neuraltalk.vis_screenshot demo_out/neuraltalk/vis demo_out/neuraltalk/vis_demo.png

Without Chromium it says so in one line and writes nothing (the demo goes on).
"""
import sys
import time

from common.browser import headless_chromium, missing_reason, serve_folder
from common.cli import UserError, flag, options, parse, run


@options
class ScreenshotOptions:
    """Save a PNG of the vis page showing eval.py's captions."""
    vis_dir: str = flag("vis", "the folder with index.html, vis.json and imgs/", positional=True)
    png: str = flag("vis_demo.png", "the PNG to write", positional=True)
    width: int = flag(1100, "window width in pixels (the page shows 300-pixel cards)", min=320)
    height: int = flag(1120, "window height in pixels", min=240)


def main(opt: ScreenshotOptions):
    if missing_reason():
        print(f"(no screenshot of the vis page: {missing_reason()})")
        return None
    with serve_folder(opt.vis_dir) as url, headless_chromium() as driver:
        driver.set_window_size(opt.width, opt.height)
        driver.get(f"{url}/index.html")
        deadline = time.monotonic() + 20
        while not driver.find_element("id", "status").text.endswith(" images"):
            if time.monotonic() > deadline:
                raise UserError(f"{opt.vis_dir}: the page did not show its captions "
                                f"({driver.find_element('id', 'status').text!r})")
            time.sleep(0.1)
        driver.execute_script("return Promise.all([...document.images].map(i => { i.loading = 'eager'; "
                              "return i.decode().catch(() => 0); }))")
        driver.save_screenshot(opt.png)
    print(f"screenshot of the vis page: {opt.png}", file=sys.stderr)
    return opt.png


if __name__ == "__main__":
    run(main, parse(ScreenshotOptions))
