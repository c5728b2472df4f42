"""Opening a photo the way a user means it: one function for every experiment that reads images.

`open_rgb` returns an RGB PIL image whatever the file holds: EXIF orientation applied (phones store
portrait photos sideways plus a tag), 16-bit and 32-bit grayscale scaled to 8 bits (a plain
`convert("RGB")` clips them to white), transparency composited over white, palettes and CMYK
converted. A missing, empty or undecodable file is one UserError line naming the file.
"""
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from common.cli import UserError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def is_image_name(path) -> bool:
    return os.fspath(path).lower().endswith(IMAGE_EXTS)


def open_image(path) -> Image.Image:
    """The decoded image with EXIF orientation applied, in its own mode."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise UserError(f"{path}: is a folder, not an image")
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise UserError(f"{path}: empty file, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(path)
            img = ImageOps.exif_transpose(img)
            img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:80]
        raise UserError(f"{path}: not an image this program can read ({why})") from None
    return img


def to_rgb(img: Image.Image, background=(255, 255, 255)) -> Image.Image:
    """Any PIL mode -> RGB: high bit depths scaled, alpha composited over `background`."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img).astype(np.float32)
        top = 65535.0 if img.mode.startswith("I;16") else (255.0 if a.max() <= 255 else
                                                            65535.0 if a.max() <= 65535 else float(a.max()))
        if img.mode == "F" and a.max() <= 1.0:
            top = 1.0
        img = Image.fromarray(np.clip(a / top * 255 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode in ("LA", "La", "PA", "RGBA", "RGBa"):
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        img = Image.alpha_composite(base, rgba)
    return img if img.mode == "RGB" else img.convert("RGB")


def open_rgb(path, background=(255, 255, 255)) -> Image.Image:
    """open_image + to_rgb: what neuraltalk, densecap and dcgan feed their networks."""
    return to_rgb(open_image(path), background)
