"""The synthetic shapes world: coloured circles, squares and triangles on a plain background.

Small enough for a tiny CNN to learn on a CPU in a minute, rich enough to need both the colour and
the shape (and, for captions, where the shapes are): a stand-in for Flickr8k (captions) and Visual
Genome (one box + phrase per shape) in tests and demos.

    scene, captions, regions = make_scene(np.random.default_rng(0))
    paths = write_dataset("data/shapes", 200)   # images/*.png + Karpathy json + VG json + splits
"""
import json
import os
import re

import numpy as np
from PIL import Image, ImageDraw

COLORS = {"red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220),
          "yellow": (235, 200, 20), "purple": (140, 40, 170)}
KINDS = ("circle", "square", "triangle")
BACKGROUND = (235, 235, 235)


def _draw(draw, kind, color, x, y, s):
    box = [x, y, x + s - 1, y + s - 1]
    if kind == "circle":
        draw.ellipse(box, fill=color)
    elif kind == "square":
        draw.rectangle(box, fill=color)
    else:
        draw.polygon([(x + (s - 1) / 2, y), (x, y + s - 1), (x + s - 1, y + s - 1)], fill=color)


def _overlaps(a, b, margin):
    ax, ay, asz = a
    bx, by, bsz = b
    return not (ax + asz + margin <= bx or bx + bsz + margin <= ax or
                ay + asz + margin <= by or by + bsz + margin <= ay)


def _place(rng, size, max_shapes):
    """1..max_shapes non-overlapping (x, y, side, kind, colour, small) placements."""
    n = int(rng.integers(1, max_shapes + 1))
    placed = []
    for _ in range(n):
        for _attempt in range(50):
            small = bool(rng.random() < 0.5)
            lo, hi = (0.16, 0.24) if small else (0.30, 0.40)
            s = int(round(size * rng.uniform(lo, hi)))
            x = int(rng.integers(0, size - s + 1))
            y = int(rng.integers(0, size - s + 1))
            if all(not _overlaps((x, y, s), (p[0], p[1], p[2]), 2) for p in placed):
                kind = KINDS[int(rng.integers(len(KINDS)))]
                color = list(COLORS)[int(rng.integers(len(COLORS)))]
                placed.append((x, y, s, kind, color, small))
                break
    return placed


def _captions(placed, size):
    """Five paraphrases of the scene, each naming every shape: what the shapes are and, for two or more, where
    (left to right, or right to left; a chain of "left of" for three). At most 16 words (neuraltalk2's
    default -max_length)."""
    names = [f"{c} {k}" for (_, _, _, k, c, _) in placed]
    if len(placed) == 1:
        x, y, s = placed[0][:3]
        cx, cy = x + s / 2, y + s / 2
        where = ("top" if cy < size / 2 else "bottom") + " " + ("left" if cx < size / 2 else "right")
        n = names[0]
        return [f"a {n}", f"a {n} on a plain background", f"there is a {n}",
                f"a {n} in the {where}", f"a picture of a single {n}"]
    order = [names[i] for i in sorted(range(len(placed)), key=lambda i: placed[i][0] + placed[i][2] / 2)]
    chain = lambda seq, link: f" {link} ".join(f"a {n}" for n in seq)  # noqa: E731
    count = {2: "two", 3: "three"}.get(len(placed), str(len(placed)))
    rightmost_first = f"a {order[-1]} to the right of " + chain(order[-2::-1], "right of")  # <= 16 words
    with_count = (f"{count} shapes with a {order[0]} on the left and {chain(order[1:], 'and')}" if len(order) == 2
                  else f"{count} shapes {chain(order, 'and')}")  # <= 16 words
    return [chain(order, "left of"), chain(order[::-1], "right of"), chain(order, "and"), with_count,
            rightmost_first]


def make_scene(rng: np.random.Generator, size=128, max_shapes=3):
    """One scene: (PIL RGB image, 5 captions, regions [{x, y, w, h, phrase}] with boxes in pixels)."""
    placed = _place(rng, size, max_shapes)
    img = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(img)
    regions = []
    for x, y, s, kind, color, small in placed:
        _draw(draw, kind, COLORS[color], x, y, s)
        regions.append({"x": x, "y": y, "w": s, "h": s,
                        "phrase": f"a {'small' if small else 'large'} {color} {kind}"})
    return img, _captions(placed, size), regions


def _tokens(text):
    return text.lower().split()


def write_dataset(out_dir, n_images, seed=0, size=128, val_frac=0.1, test_frac=0.1, max_shapes=3):
    """Write n_images scenes and their annotations in the Karpathy and Visual Genome formats.

    Returns {"images", "karpathy_json", "region_descriptions", "image_data", "splits_json"}.
    Each scene has 1..max_shapes shapes. Image ids run 1..n_images (file `images/<id>.png`); the last
    val_frac/test_frac of them are val/test.
    """
    rng = np.random.default_rng(seed)
    img_dir = os.path.join(out_dir, "images")
    os.makedirs(img_dir, exist_ok=True)
    n_val = int(round(n_images * val_frac))
    n_test = int(round(n_images * test_frac))
    n_train = n_images - n_val - n_test
    karpathy, vg_regions, vg_images = [], [], []
    splits = {"train": [], "val": [], "test": []}
    region_id = 0
    for i in range(n_images):
        image_id = i + 1
        split = "train" if i < n_train else ("val" if i < n_train + n_val else "test")
        img, captions, regions = make_scene(rng, size=size, max_shapes=max_shapes)
        filename = f"{image_id}.png"
        img.save(os.path.join(img_dir, filename))
        splits[split].append(image_id)
        karpathy.append({
            "filepath": "images", "filename": filename, "imgid": i, "split": split,
            "sentids": [i * 5 + k for k in range(5)],
            "sentences": [{"raw": c, "tokens": _tokens(c), "imgid": i, "sentid": i * 5 + k}
                          for k, c in enumerate(captions)]})
        vg_entry = []
        for r in regions:
            region_id += 1
            vg_entry.append({"region_id": region_id, "image_id": image_id, "x": r["x"], "y": r["y"],
                             "width": r["w"], "height": r["h"], "phrase": r["phrase"]})
        vg_regions.append({"id": image_id, "regions": vg_entry})
        vg_images.append({"image_id": image_id, "width": size, "height": size,
                          "url": f"images/{filename}", "coco_id": None, "flickr_id": None})
    paths = {"images": img_dir,
             "karpathy_json": os.path.join(out_dir, "dataset_shapes.json"),
             "region_descriptions": os.path.join(out_dir, "region_descriptions.json"),
             "image_data": os.path.join(out_dir, "image_data.json"),
             "splits_json": os.path.join(out_dir, "densecap_splits.json")}
    for key, obj in (("karpathy_json", {"dataset": "shapes", "images": karpathy}),
                     ("region_descriptions", vg_regions), ("image_data", vg_images),
                     ("splits_json", splits)):
        with open(paths[key], "w") as f:
            json.dump(obj, f)
    return paths


# --- scoring captions against a scene (the demos' "shapes caption accuracy") --------------------------

def named_shapes(text: str) -> list[tuple[str, str]]:
    """The (colour, kind) pairs a text names, in reading order: "a red circle left of a blue square"
    -> [("red", "circle"), ("blue", "square")]. A kind without a colour, or a colour alone, names nothing."""
    w = text.lower().replace(",", " ").split()
    return [(w[i], w[i + 1]) for i in range(len(w) - 1) if w[i] in COLORS and w[i + 1] in KINDS]


def _truth(regions):
    """[(colour, kind, size word, centre x, centre y)] from regions {x, y, w, h, phrase "a small red circle"}."""
    out = []
    for r in regions:
        size_word, colour, kind = r["phrase"].split()[-3:]
        out.append((colour, kind, size_word, r["x"] + r["w"] / 2, r["y"] + r["h"] / 2))
    return out


def _centres(truth, name):
    return [(t[3], t[4]) for t in truth if (t[0], t[1]) == name]


_RELATION = re.compile(r"(?:to the )?(left|right) of a")          # between two names: "a X left of a Y"
_EXTREME = re.compile(r"on the (left|right)(?: and a)?")           # after a name: X is the leftmost / rightmost
_QUADRANT = re.compile(r"in the (top|bottom) (left|right)")        # after the one name of a one-shape scene
POSITION_WORDS = ("left", "right", "top", "bottom")


def _positions_hold(words, truth, size) -> bool:
    """Every position word of the caption is true of the scene, read in the forms `_captions` writes, each
    about the names around it: "a X left of a Y" / "right of" / "to the right of" (a chain of them pairwise),
    "a X on the left" / "on the right" (X is the leftmost / rightmost shape), "a X in the top left" (the one
    shape's quadrant). A position word in any other form counts as wrong."""
    at = [i for i in range(len(words) - 1) if words[i] in COLORS and words[i + 1] in KINDS]
    if not at:
        return not any(w in POSITION_WORDS for w in words)
    if any(w in POSITION_WORDS for w in words[:at[0]]):
        return False
    xs = lambda i: [c[0] for c in _centres(truth, (words[i], words[i + 1]))]  # noqa: E731
    all_x = [t[3] for t in truth]
    for n, i in enumerate(at):
        nxt = at[n + 1] if n + 1 < len(at) else None
        gap = " ".join(words[i + 2:nxt])
        if not any(w in POSITION_WORDS for w in gap.split()):
            continue
        if (m := _RELATION.fullmatch(gap)) and nxt is not None:
            ok = min(xs(i)) < max(xs(nxt)) if m[1] == "left" else max(xs(i)) > min(xs(nxt))
        elif m := _EXTREME.fullmatch(gap):
            ok = min(xs(i)) == min(all_x) if m[1] == "left" else max(xs(i)) == max(all_x)
        elif (m := _QUADRANT.fullmatch(gap)) and len(truth) == 1:
            cx, cy = truth[0][3], truth[0][4]
            ok = (cy < size / 2) == (m[1] == "top") and (cx < size / 2) == (m[2] == "left")
        else:
            ok = False
        if not ok:
            return False
    return True


def caption_names_scene(caption: str, regions: list[dict], size: int) -> bool:
    """True when the caption names every shape of the scene with its colour and kind, no shape that is not
    there, a count word ("single", "two", "three") only when it is the count, and position words only when
    they hold. `regions` as make_scene/region_descriptions.json give them; `size` the image side in pixels."""
    truth = _truth(regions)
    named = named_shapes(caption)
    if sorted(named) != sorted((t[0], t[1]) for t in truth):
        return False
    words = caption.lower().replace(",", " ").split()
    counts = {"single": 1, "one": 1, "two": 2, "three": 3}
    if any(w in counts and counts[w] != len(truth) for w in words):
        return False
    return _positions_hold(words, truth, size)


def phrase_names_region(phrase: str, region: dict) -> bool:
    """True when a region caption names that region's shape: exactly one (colour, kind), the right one, and
    the size word ("small"/"large") right where the caption has one."""
    colour, kind, size_word = _truth([region])[0][:3]
    words = phrase.lower().split()
    if named_shapes(phrase) != [(colour, kind)]:
        return False
    return not any(w in ("small", "large") and w != size_word for w in words)
