"""Helpers for demo.sh: scikit-image's bundled colour photos as a training set, and side-by-side pictures.

    python -m colorize.demo photos demo_out/colorize/data      # train/, heldout/, heldout_gray/
    python -m colorize.demo compare demo_out/colorize           # gray | ours | original, with PSNRs
    python -m colorize.demo clip demo_out/colorize/gray_clip.mp4  # 3 s of gray video: a slow pan, a cut, a tone
"""
import sys
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageDraw

from colorize import metrics
from colorize.data import Y_WEIGHTS

TRAIN = ["astronaut", "rocket", "hubble_deep_field", "colorwheel"]  # + the stereo motorcycle pair
HELDOUT = ["chelsea", "coffee"]


def bundled(name):
    if name.startswith("motorcycle"):
        left, right, _ = skimage.data.stereo_motorcycle()
        return left if name.endswith("left") else right
    return getattr(skimage.data, name)()


def write_photos(folder):
    folder = Path(folder)
    for sub in ("train", "heldout", "heldout_gray"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for name in TRAIN + ["motorcycle_left", "motorcycle_right"]:
        Image.fromarray(bundled(name)).save(folder / "train" / f"{name}.png")
    for name in HELDOUT:
        rgb = bundled(name)
        Image.fromarray(rgb).save(folder / "heldout" / f"{name}.png")
        gray = ((rgb.astype(np.float32) / 255) @ Y_WEIGHTS * 255 + 0.5).astype(np.uint8)
        Image.fromarray(gray).save(folder / "heldout_gray" / f"{name}.png")
    print(f"wrote {len(TRAIN) + 2} training and {len(HELDOUT)} held-out photos under {folder}")


def side_by_side(gray, ours, original, labels=("gray input", "ours", "original")):
    h, w = original.shape[:2]
    canvas = Image.new("RGB", (3 * w + 20, h + 24), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (img, label) in enumerate(zip((gray, ours, original), labels)):
        canvas.paste(Image.fromarray(img).convert("RGB"), (k * (w + 10), 24))
        draw.text((k * (w + 10) + 4, 6), label, fill="black")
    return canvas


def compare(root):
    root = Path(root)
    for f in sorted((root / "data" / "heldout").glob("*.png")):
        original = np.asarray(Image.open(f).convert("RGB"))
        gray = np.asarray(Image.open(root / "data" / "heldout_gray" / f.name).convert("RGB"))
        ours = np.asarray(Image.open(root / "colorized" / f.name).convert("RGB"))
        out = root / f"side_by_side_{f.stem}.png"
        side_by_side(gray, ours, original).save(out)
        print(f"{out}: PSNR ours {metrics.psnr(ours, original):.2f} dB vs gray {metrics.psnr(gray, original):.2f} dB;"
              f" colourfulness ours {metrics.colourfulness(ours):.1f}, original {metrics.colourfulness(original):.1f}")


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
