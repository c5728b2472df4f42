"""demo_out/index.html: every experiment's outputs on one page, checked in headless Chromium."""
import numpy as np
from PIL import Image

from common import browser, demo_index


def fake_demo(root):
    (root / "charrnn").mkdir(parents=True)
    (root / "charrnn" / "sample.txt").write_text("The king said <hello> & left\n")
    (root / "dcgan").mkdir()
    Image.fromarray(np.full((32, 48, 3), 200, np.uint8)).save(root / "dcgan" / "samples.png")
    (root / "neuraltalk" / "vis").mkdir(parents=True)
    (root / "neuraltalk" / "vis" / "index.html").write_text("<html></html>")
    (root / "neuraltalk" / "eval.log").write_text("loading\nshapes caption accuracy: 0.93\nstep 3\n")
    return root


def test_page_lists_every_experiment_and_escapes_text(tmp_path):
    page = demo_index.build(fake_demo(tmp_path / "demo_out")).read_text()
    for key, _, _ in demo_index.EXPERIMENTS:
        assert f'id="{key}"' in page
    assert "The king said &lt;hello&gt; &amp; left" in page  # text is escaped, not HTML
    assert 'src="dcgan/samples.png"' in page and 'href="neuraltalk/vis/index.html"' in page
    assert "shapes caption accuracy: 0.93" in page and "step 3" not in page  # only summary lines of logs
    assert "make demo-colorize" in page  # a demo that did not run says how to run it


def test_page_renders_with_its_pictures_in_chromium(tmp_path):
    browser.require_chromium()
    from selenium.webdriver.common.by import By
    index = demo_index.build(fake_demo(tmp_path / "demo_out"))
    with browser.serve_folder(index.parent) as url, browser.headless_chromium() as driver:
        driver.get(f"{url}/index.html")
        img = driver.find_element(By.CSS_SELECTOR, "#dcgan img")
        assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) == 48
        assert "The king said <hello> & left" in driver.find_element(By.ID, "charrnn").text
        assert "not run" in driver.find_element(By.ID, "densecap").text
    png = demo_index.screenshot(index, tmp_path / "index.png")
    assert Image.open(png).size[0] == 1200
