"""Helpers for demo.sh: scikit-image's bundled colour photos as a training set, and the scored pictures.

    python -m colorize.demo photos demo_out/colorize/data      # train/, heldout/, heldout_gray/
    python -m colorize.demo compare demo_out/colorize           # gray | mean-ab | ours | original, scored
    python -m colorize.demo clip demo_out/colorize/gray_clip.mp4  # 3 s of gray video: a slow pan, a cut, a tone

compare scores the network's colorization of each held-out gray photo against two baselines that need no
network: the gray photo itself (ab = 0) and the training photos' mean ab on the gray's lightness. PSNR is
against the original colour photo; colourfulness is Hasler and Suesstrunk's (metrics.colourfulness).
"""
import sys
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageDraw
from skimage.color import lab2rgb, rgb2lab

from colorize import metrics
from colorize.data import Y_WEIGHTS

TRAIN = ["astronaut", "rocket", "motorcycle_left", "motorcycle_right"]  # the bundled natural photos
HELDOUT = ["chelsea", "coffee"]


def bundled(name):
    if name.startswith("motorcycle"):
        left, right, _ = skimage.data.stereo_motorcycle()
        return left if name.endswith("left") else right
    return getattr(skimage.data, name)()


def to_gray(rgb):
    """The luma Y colorize.py reduces a colour photo to, as an 8-bit gray picture."""
    return ((rgb.astype(np.float32) / 255) @ Y_WEIGHTS * 255 + 0.5).astype(np.uint8)


def write_photos(folder):
    folder = Path(folder)
    for sub in ("train", "heldout", "heldout_gray"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for name in TRAIN:
        Image.fromarray(bundled(name)).save(folder / "train" / f"{name}.png")
    for name in HELDOUT:
        rgb = bundled(name)
        Image.fromarray(rgb).save(folder / "heldout" / f"{name}.png")
        Image.fromarray(to_gray(rgb)).save(folder / "heldout_gray" / f"{name}.png")
    print(f"wrote {len(TRAIN)} training and {len(HELDOUT)} held-out photos under {folder}")


def mean_ab(photos):
    """The mean Lab (a, b) over every pixel of these RGB photos."""
    total, n = np.zeros(2), 0
    for rgb in photos:
        ab = rgb2lab(rgb)[..., 1:].reshape(-1, 2)
        total, n = total + ab.sum(0), n + len(ab)
    return total / n


def with_ab(gray, ab):
    """The gray photo's lightness with a constant (a, b) everywhere -> RGB uint8 (ab = 0: the gray itself)."""
    L = rgb2lab(np.repeat(gray[..., None], 3, 2))[..., :1]
    lab = np.concatenate([L, np.broadcast_to(np.asarray(ab, np.float64), L.shape[:2] + (2,))], -1)
    return (np.clip(lab2rgb(lab), 0, 1) * 255 + 0.5).astype(np.uint8)


def side_by_side(pictures, labels):
    h, w = pictures[0].shape[:2]
    canvas = Image.new("RGB", (len(pictures) * (w + 10) - 10, h + 24), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (img, label) in enumerate(zip(pictures, labels)):
        canvas.paste(Image.fromarray(img).convert("RGB"), (k * (w + 10), 24))
        draw.text((k * (w + 10) + 4, 6), label, fill="black")
    return canvas


def score(gray, ours, original, ab_mean):
    """-> {'ours', 'gray', 'mean-ab': (PSNR dB, colourfulness)} and the mean-ab picture, for one photo."""
    baseline = with_ab(gray, ab_mean)
    rows = {"ours": ours, "gray": np.repeat(gray[..., None], 3, 2), "mean-ab": baseline}
    return {k: (metrics.psnr(v, original), metrics.colourfulness(v)) for k, v in rows.items()}, baseline


def compare(root):
    """Score and picture every held-out photo; write side_by_side_<name>.png, side_by_side.jpg (all of them,
    the README's picture) and scores.txt; print one summary line (means over the held-out photos)."""
    root = Path(root)
    ab_mean = mean_ab(np.asarray(Image.open(f).convert("RGB")) for f in sorted((root / "data" / "train").glob("*.png")))
    lines, table, panels = [], [], []
    for f in sorted((root / "data" / "heldout").glob("*.png")):
        original = np.asarray(Image.open(f).convert("RGB"))
        gray = np.asarray(Image.open(root / "data" / "heldout_gray" / f.name).convert("L"))
        ours = np.asarray(Image.open(root / "colorized" / f.name).convert("RGB"))
        s, baseline = score(gray, ours, original, ab_mean)
        cf_orig = metrics.colourfulness(original)
        table.append([s["ours"][0], s["gray"][0], s["mean-ab"][0], s["ours"][1], cf_orig])
        labels = [f"gray input ({s['gray'][0]:.2f} dB)", f"mean-ab baseline ({s['mean-ab'][0]:.2f} dB)",
                  f"ours ({s['ours'][0]:.2f} dB)", "original"]
        panel = side_by_side([gray, baseline, ours, original], labels)
        panel.save(root / f"side_by_side_{f.stem}.png")
        panels.append(panel)
        lines.append(f"{f.stem}: PSNR ours {s['ours'][0]:.2f} dB, gray {s['gray'][0]:.2f} dB, mean-ab "
                     f"{s['mean-ab'][0]:.2f} dB; colourfulness ours {s['ours'][1]:.1f}, mean-ab "
                     f"{s['mean-ab'][1]:.1f}, original {cf_orig:.1f}")
    m = np.mean(table, 0)
    lines.append(f"colorize demo: PSNR ours {m[0]:.2f} dB, gray {m[1]:.2f} dB, mean-ab {m[2]:.2f} dB; "
                 f"colourfulness ours {m[3]:.1f}, original {m[4]:.1f} (means over {len(table)} held-out photos; "
                 f"mean ab of the training photos: a {ab_mean[0]:.2f}, b {ab_mean[1]:.2f})")
    width = max(p.width for p in panels)
    sheet = Image.new("RGB", (width, sum(p.height for p in panels) + 10 * (len(panels) - 1)), "white")
    top = 0
    for p in panels:
        sheet.paste(p, (0, top))
        top += p.height + 10
    sheet.save(root / "side_by_side.jpg", quality=90)
    (root / "scores.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return m


def write_clip(path, seconds=3, fps=12):
    """A gray clip of the held-out photos (a slow pan across one, then a cut to the other) with an audio tone."""
    from common import video
    a, b = (np.asarray(Image.fromarray(bundled(n)).resize((320, 240), Image.BILINEAR)) for n in HELDOUT)
    n = seconds * fps

    def frame(k):
        rgb = a if k < n // 2 else b
        x = min(k, 40)
        rgb = np.asarray(Image.fromarray(rgb[:, x:x + 240]).resize((320, 240), Image.BILINEAR)) if k < n // 2 else rgb
        gray = ((rgb.astype(np.float32) / 255) @ Y_WEIGHTS * 255 + 0.5).astype(np.uint8)
        return np.repeat(gray[..., None], 3, 2)

    video.make_clip(path, frame, n, fps=fps, audio=True)
    print(f"wrote {path}: {n} frames at {fps} frames/s, a cut at frame {n // 2}")


if __name__ == "__main__":
    commands = {"photos": write_photos, "compare": compare, "clip": write_clip}
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        sys.exit("usage: python -m colorize.demo photos DIR | compare DEMO_DIR | clip OUT.mp4")
    commands[sys.argv[1]](sys.argv[2])
