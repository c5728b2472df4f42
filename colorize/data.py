"""Training photos: a flat folder (colour loss only) or Places-style class subfolders (+ classification).

Each sample is a random crop (the paper: 256 -> 224 crops, horizontal flips) turned into the network's
input (luma Y minus the mean, as colorize.lua feeds it) and its target (Lab ab scaled to [0, 1] at half
resolution, the sigmoid's range). Augmentation randomness comes from (seed, epoch, index), so a resumed
run draws exactly the crops the uninterrupted one would have.
"""
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from skimage.color import rgb2lab

from common.cli import UserError

EXTS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".ppm", ".webp"}
Y_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)


def scan(data_dir):
    """-> (files, labels or None, class names). Subfolders with images make it a classification set."""
    root = Path(data_dir)
    if not root.is_dir():
        raise UserError(f"{data_dir}: no such folder (give -data_dir a folder of photos)")
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    pick = lambda d: sorted(p for p in d.iterdir() if p.suffix.lower() in EXTS and not p.name.startswith("."))  # noqa
    per_class = [(d.name, pick(d)) for d in subdirs]
    per_class = [(n, fs) for n, fs in per_class if fs]
    if len(per_class) >= 2:
        names = [n for n, _ in per_class]
        files = [(f, k) for k, (_, fs) in enumerate(per_class) for f in fs]
        return [f for f, _ in files], [k for _, k in files], names
    files = pick(root)
    if not files:
        raise UserError(f"{data_dir}: no images found (.jpg/.png/...; a flat folder or one subfolder per class)")
    return files, None, []


def load_rgb(path):
    """RGB uint8 array, or None (with a warning) for a corrupt or grayscale photo."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = ImageOps.exif_transpose(Image.open(path))
            img.load()
    except Exception as e:  # noqa: BLE001 - any decoder error means: skip this file
        print(f"warning: skipping {path}: cannot read it ({type(e).__name__})", file=sys.stderr)
        return None
    if img.mode in ("L", "LA", "1", "I", "I;16", "F") or (img.mode == "P" and not _colourful(img.convert("RGB"))):
        print(f"warning: skipping {path}: grayscale", file=sys.stderr)
        return None
    rgb = np.asarray(img.convert("RGB"))
    if not _colourful(rgb):
        print(f"warning: skipping {path}: grayscale (all channels equal)", file=sys.stderr)
        return None
    return rgb


def _colourful(rgb):
    a = np.asarray(rgb)[::4, ::4].astype(np.int16)
    return np.abs(a[..., 0] - a[..., 1]).max() > 2 or np.abs(a[..., 1] - a[..., 2]).max() > 2


def resize_short(rgb, side):
    h, w = rgb.shape[:2]
    s = side / min(h, w)
    size = (max(side, round(w * s)), max(side, round(h * s)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR, reducing_gap=3.0))


def to_sample(rgb, mean):
    """RGB crop (S x S x 3 uint8) -> (input 1 x S x S: Y - mean, target 2 x S/2 x S/2: ab/200 + 0.5)."""
    x = rgb.astype(np.float32) / 255
    y = x @ Y_WEIGHTS - np.float32(mean)
    ab = rgb2lab(x)[..., 1:].astype(np.float32)
    h, w = ab.shape[:2]
    ab = ab[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2, 2).mean((1, 3))
    return torch.from_numpy(y[None].copy()), torch.from_numpy((ab / 200 + 0.5).transpose(2, 0, 1).copy())


class PhotoCrops(torch.utils.data.Dataset):
    """Random crops + flips (train) or centre crops (eval) of image_size; photos cached as resized uint8."""

    def __init__(self, files, labels, image_size, mean, seed=0, train=True, cache=True):
        self.files, self.labels, self.size, self.mean = list(files), labels, image_size, mean
        self.seed, self.train, self.epoch = seed, train, 0
        self.cache = {} if cache else None
        self.bad = set()

    def photo(self, i):
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        rgb = load_rgb(self.files[i])
        if rgb is not None:
            rgb = resize_short(rgb, round(self.size * 256 / 224))  # the paper: 256 -> 224 crops
        if self.cache is not None:
            self.cache[i] = rgb
        return rgb

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, self.epoch, i])
        rgb = self.photo(i)
        while rgb is None:  # a bad file: another photo in its place (chosen reproducibly)
            self.bad.add(i)
            if len(self.bad) == len(self.files):
                raise UserError("no usable colour photos in the training data")
            i = int(rng.integers(len(self.files)))
            rgb = self.photo(i)
        h, w = rgb.shape[:2]
        S = self.size
        if self.train:
            top, left = int(rng.integers(h - S + 1)), int(rng.integers(w - S + 1))
        else:
            top, left = (h - S) // 2, (w - S) // 2
        crop = rgb[top:top + S, left:left + S]
        if self.train and rng.random() < 0.5:
            crop = crop[:, ::-1]
        x, target = to_sample(np.ascontiguousarray(crop), self.mean)
        label = self.labels[i] if self.labels is not None else -1
        return x, target, label
