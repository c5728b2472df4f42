"""neuraltalk.shapes_score: the demo's `shapes caption accuracy` line from eval.py's vis.json."""
import json
import subprocess
import sys

import pytest

from common.cli import UserError, parse
from common.testing.shapes import write_dataset
from neuraltalk import shapes_score


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    paths = write_dataset(out, 6, seed=2, size=64, val_frac=0, test_frac=0)
    regions = {r["id"]: r["regions"] for r in json.load(open(paths["region_descriptions"]))}
    return paths, regions


def _name(r):
    return " ".join(r["phrase"].split()[2:])  # "a small red circle" -> "red circle"


def hand_made(regions):
    """For each scene a right caption (every shape, left to right, joined by "and": no position words) and a
    wrong one (the first shape's colour changed)."""
    right, wrong = {}, {}
    for image_id, rs in regions.items():
        names = [_name(r) for r in sorted(rs, key=lambda r: r["x"] + r["width"] / 2)]
        right[image_id] = " and ".join(f"a {n}" for n in names)
        colour, kind = names[0].split()
        other = "blue" if colour != "blue" else "red"
        wrong[image_id] = " and ".join(f"a {n}" for n in [f"{other} {kind}", *names[1:]])
    return right, wrong


def test_accuracy_is_the_share_of_images_whose_caption_names_the_scene(world, tmp_path, capsys):
    paths, regions = world
    right, wrong = hand_made(regions)
    # images 1, 3, 4 and 6 captioned right, 2 and 5 wrong
    captions = {1: right[1], 2: wrong[2], 3: right[3], 4: right[4], 5: wrong[5], 6: right[6]}
    vis = [{"image_id": str(k), "caption": c, "file_name": f"images/{k}.png"} for k, c in captions.items()]
    json.dump(vis, open(tmp_path / "vis.json", "w"))
    acc = shapes_score.main(parse(shapes_score.ScoreOptions, ["-vis_json", str(tmp_path / "vis.json"),
                                                              "-regions_json", paths["region_descriptions"],
                                                              "-show_wrong", "1"]))
    assert acc == pytest.approx(4 / 6)
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "shapes caption accuracy: 0.667 (4 of 6 images)"
    assert sorted(s.split(":")[1].strip() for s in out if s.startswith("wrong:")) == ["images/2.png", "images/5.png"]


def test_position_words_count_and_a_left_right_swap_is_wrong(world):
    paths, regions = world
    scenes = shapes_score.scenes_by_file(paths["region_descriptions"])
    two = next(k for k, rs in regions.items() if len(rs) == 2 and _name(rs[0]) != _name(rs[1]))
    left, right = (_name(r) for r in sorted(regions[two], key=lambda r: r["x"] + r["width"] / 2))
    f = f"images/{two}.png"
    preds = [{"caption": f"a {left} left of a {right}", "file_name": f},
             {"caption": f"a {right} left of a {left}", "file_name": f},
             {"caption": f"a {left}", "file_name": f}]
    acc, bad = shapes_score.shapes_accuracy(preds, scenes)
    assert acc == pytest.approx(1 / 3) and [p["caption"] for p in bad] == [preds[1]["caption"], preds[2]["caption"]]


def test_bad_input_is_one_line(world, tmp_path):
    paths, _ = world
    scenes = shapes_score.scenes_by_file(paths["region_descriptions"])
    with pytest.raises(UserError, match="not an image of this shapes dataset"):
        shapes_score.shapes_accuracy([{"caption": "a red circle", "file_name": "images/99.png"}], scenes)
    (tmp_path / "vis.json").write_text("[{]")
    r = subprocess.run([sys.executable, "-m", "neuraltalk.shapes_score", "-vis_json", str(tmp_path / "vis.json"),
                        "-regions_json", paths["region_descriptions"]], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.startswith("error:") and len(r.stderr.splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_vis_screenshot_shows_the_captioned_images(world, tmp_path):
    import shutil

    import numpy as np
    from PIL import Image

    from common import browser
    from neuraltalk import vis_screenshot
    from neuraltalk.eval import VIS_DIR
    browser.require_chromium()
    paths, regions = world
    vis = tmp_path / "vis"
    (vis / "imgs").mkdir(parents=True)
    shutil.copy(f"{VIS_DIR}/index.html", vis / "index.html")
    for k in (1, 2):
        Image.open(f"{paths['images']}/{k}.png").convert("RGB").save(vis / "imgs" / f"img{k}.jpg")
    json.dump([{"image_id": str(k), "caption": f"caption {k}", "file_name": f"images/{k}.png"} for k in (1, 2)],
              open(vis / "vis.json", "w"))
    png = tmp_path / "shot.png"
    vis_screenshot.main(parse(vis_screenshot.ScreenshotOptions, [str(vis), str(png)]))
    shot = np.asarray(Image.open(png).convert("RGB"))
    assert shot.shape[1] >= 900
    # the scenes' shape colours are on the page (the cards show the images, not only the page's grey)
    from common.testing.shapes import COLORS
    colour = COLORS[regions[1][0]["phrase"].split()[-2]]
    assert (np.abs(shot.astype(int) - colour).sum(-1) < 40).sum() > 500
