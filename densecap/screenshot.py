"""Save a screenshot of vis/view_results.html (served on 127.0.0.1, headless chromium), captions drawn.

    python -m densecap.screenshot demo_out/densecap/vis viewer.png [KEYS]
"""
import sys

from common.browser import headless_chromium, missing_reason, serve_folder


def screenshot(vis_dir, out_png, keys="t", width=384):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with serve_folder(vis_dir) as url, headless_chromium() as driver:
        driver.set_window_size(700, 600)
        driver.get(url + "/view_results.html")
        WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#stage .box"))
        body = driver.find_element(By.TAG_NAME, "body")
        for k in keys:
            body.send_keys(k)
        driver.execute_script(f"document.getElementById('image').style.width = '{width}px'; window.scrollTo(0, 0);")
        body.send_keys("w")  # re-render the boxes at the new size
        body.send_keys("s")
        driver.save_screenshot(out_png)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[1].startswith("-"):
        sys.exit("usage: python -m densecap.screenshot VIS_DIR OUT.png [KEYS]")
    if missing_reason():
        sys.exit(f"no screenshot: {missing_reason()}")
    # optional third argument: viewer keys to press first (e.g. "ddtsss": two images on, captions drawn)
    screenshot(sys.argv[1], sys.argv[2], *(sys.argv[3:4] or ["t"]))
