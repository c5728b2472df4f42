import json
import os

import numpy as np
from PIL import Image

from common.testing.shapes import BACKGROUND, COLORS, make_scene, write_dataset


def test_make_scene_regions_match_pixels():
    rng = np.random.default_rng(0)
    for _ in range(20):
        img, captions, regions = make_scene(rng, size=128, max_shapes=3)
        assert img.mode == "RGB" and img.size == (128, 128)
        assert len(captions) == 5 and len(set(captions)) == 5
        assert 1 <= len(regions) <= 3
        a = np.asarray(img)
        for r in regions:
            size, color, kind = r["phrase"].split()[1:]
            assert size in ("small", "large") and kind in ("circle", "square", "triangle")
            x, y, w, h = r["x"], r["y"], r["w"], r["h"]
            assert 0 <= x and 0 <= y and x + w <= 128 and y + h <= 128
            crop = a[y:y + h, x:x + w]
            hit = np.all(crop == COLORS[color], axis=-1)
            # a square fills its box, a circle pi/4 of it, a triangle about half
            want = {"square": 1.0, "circle": np.pi / 4, "triangle": 0.5}[kind]
            assert abs(hit.mean() - want) < 0.12, (kind, hit.mean())
            # the shape touches all four sides of its box (the box is tight)
            assert hit[0].any() and hit[-1].any() and hit[:, 0].any() and hit[:, -1].any()
        # nothing outside the boxes is painted
        outside = np.ones(a.shape[:2], bool)
        for r in regions:
            outside[r["y"]:r["y"] + r["h"], r["x"]:r["x"] + r["w"]] = False
        assert np.all(a[outside] == BACKGROUND)


def test_captions_name_every_shape_and_the_relation():
    rng = np.random.default_rng(3)
    for _ in range(30):
        _, captions, regions = make_scene(rng)
        names = sorted(" ".join(r["phrase"].split()[2:]) for r in regions)  # "red circle"
        for c in captions:  # every paraphrase names every shape, once each, in at most 16 words
            words = c.split()
            assert len(words) <= 16, c
            assert sorted(f"{w} {k}" for w, k in zip(words, words[1:]) if w in COLORS) == names, c
        left_to_right = [" ".join(r["phrase"].split()[2:]) for r in sorted(regions, key=lambda r: r["x"] + r["w"] / 2)]
        if len(regions) == 2:
            ln, rn = left_to_right
            assert captions[0] == f"a {ln} left of a {rn}"
            assert captions[1] == f"a {rn} right of a {ln}"
        if len(regions) == 3:
            assert captions[0] == "a {} left of a {} left of a {}".format(*left_to_right)
            assert captions[4] == "a {2} to the right of a {1} right of a {0}".format(*left_to_right)


def test_write_dataset_formats(tmp_path):
    paths = write_dataset(tmp_path, 20, seed=1, size=96)
    assert sorted(os.listdir(paths["images"])) == sorted(f"{i}.png" for i in range(1, 21))
    kp = json.load(open(paths["karpathy_json"]))
    assert [im["split"] for im in kp["images"]].count("val") == 2
    im0 = kp["images"][0]
    assert im0["filepath"] == "images" and len(im0["sentences"]) == 5
    assert im0["sentences"][0]["tokens"] == im0["sentences"][0]["raw"].split()
    vg = json.load(open(paths["region_descriptions"]))
    meta = json.load(open(paths["image_data"]))
    splits = json.load(open(paths["splits_json"]))
    assert sorted(splits["train"] + splits["val"] + splits["test"]) == list(range(1, 21))
    assert len(splits["test"]) == 2
    assert meta[0] == {"image_id": 1, "width": 96, "height": 96, "url": "images/1.png",
                       "coco_id": None, "flickr_id": None}
    r = vg[0]["regions"][0]
    assert set(r) == {"region_id", "image_id", "x", "y", "width", "height", "phrase"}
    assert vg[0]["id"] == r["image_id"] == 1
    assert Image.open(os.path.join(paths["images"], "1.png")).size == (96, 96)
    # deterministic for a seed
    again = write_dataset(tmp_path / "b", 20, seed=1, size=96)
    assert json.load(open(again["region_descriptions"])) == vg


def test_the_world_s_own_captions_score_right_and_wrong_on_the_mirrored_scene_where_they_say_where():
    # the generator's captions are the independent truth for colours, counts and positions: each one is scored
    # right on its scene; on the scene mirrored left-right (same shapes, sides swapped) exactly those with
    # position words are wrong (scenes with two equal shapes, or a shape on the middle line, left out)
    from common.testing.shapes import POSITION_WORDS, caption_names_scene
    rng = np.random.default_rng(5)
    seen = set()
    for _ in range(80):
        _, captions, regions = make_scene(rng)
        mirrored = [dict(r, x=128 - r["x"] - r["w"]) for r in regions]
        names = [r["phrase"].split()[2:] for r in regions]
        centres = sorted(r["x"] + r["w"] / 2 for r in regions)
        clear = (len(set(map(tuple, names))) == len(names) and 64 not in centres
                 and len(set(centres)) == len(centres))
        for c in captions:
            assert caption_names_scene(c, regions, 128), (c, regions)
            if clear:
                says_where = any(w in POSITION_WORDS for w in c.split())
                assert caption_names_scene(c, mirrored, 128) == (not says_where), (c, mirrored)
                seen.add(says_where)
    assert seen == {True, False}


def test_caption_scoring_rejects_wrong_colour_shape_count_and_side():
    from common.testing.shapes import caption_names_scene, phrase_names_region
    red_left = {"x": 5, "y": 80, "w": 30, "h": 30, "phrase": "a large red circle"}
    blue_right = {"x": 80, "y": 10, "w": 20, "h": 20, "phrase": "a small blue square"}
    two = [red_left, blue_right]
    assert caption_names_scene("a red circle left of a blue square", two, 128)
    assert caption_names_scene("a blue square to the right of a red circle", two, 128)
    assert caption_names_scene("two shapes with a red circle on the left", two, 128) is False  # names one of two
    assert caption_names_scene("two shapes with a red circle on the left and a blue square", two, 128)
    assert not caption_names_scene("two shapes with a blue square on the left and a red circle", two, 128)
    assert not caption_names_scene("a red circle and a blue square on the left", two, 128)  # the square is not
    assert not caption_names_scene("a red circle left of a blue square in the top right", two, 128)  # 2 shapes
    assert not caption_names_scene("a blue square left of a red circle", two, 128)   # sides swapped
    assert not caption_names_scene("a red square left of a blue square", two, 128)   # wrong kind
    assert not caption_names_scene("a red circle and a blue square and a red circle", two, 128)  # invented
    assert not caption_names_scene("three shapes a red circle and a blue square", two, 128)  # wrong count
    one = [red_left]
    assert caption_names_scene("a red circle in the bottom left", one, 128)
    assert not caption_names_scene("a red circle in the top left", one, 128)
    assert not caption_names_scene("a yellow circle to the right of a yellow circle", one, 128)
    assert not caption_names_scene("a red circle on the left side", one, 128)  # a form the world never writes
    green_mid = {"x": 50, "y": 50, "w": 20, "h": 20, "phrase": "a small green triangle"}
    three = [red_left, green_mid, blue_right]  # left to right: red circle, green triangle, blue square
    assert caption_names_scene("a red circle left of a green triangle left of a blue square", three, 128)
    assert caption_names_scene("a blue square to the right of a green triangle to the right of a red circle",
                               three, 128)
    assert not caption_names_scene("a red circle left of a blue square left of a green triangle", three, 128)
    assert not caption_names_scene("a green triangle left of a red circle left of a blue square", three, 128)
    assert caption_names_scene("three shapes with a red circle on the left and a green triangle and a blue "
                               "square", three, 128)
    assert not caption_names_scene("three shapes with a green triangle on the left and a red circle and a "
                                   "blue square", three, 128)
    assert phrase_names_region("a large red circle", red_left)
    assert phrase_names_region("a red circle", red_left)
    assert not phrase_names_region("a small red circle", red_left)
    assert not phrase_names_region("a small yellow circle", red_left)
