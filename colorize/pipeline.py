"""Photo in, colour photo out: reading any image as luminance, the original inference pipeline, writing.

colorize.lua's steps, kept on purpose (each one named where it happens):
  Y = rgb2y(image) (gamma-encoded luma; one-channel images pass through), minus the model's stored mean;
  the network's input is Y scaled to the nearest multiple of 8 and, for the global path, to 224x224;
  the sigmoid output (ab in [0, 1], half resolution) is scaled back to full size as (2 out - 1) x 100;
  recombination 'yuv' is pred2rgb's quirk (see imageops.recombine), 'lab' the corrected one;
  image.save writes floor(255 x value) (generic/png.c casts), so 'yuv' quantizes that way too: the
  output is then colorize.lua's to the byte; 'lab' rounds.
Beyond the original: alpha and 16-bit input, EXIF rotation, `max_side` (huge images are colorized at a
working resolution and only the chroma is upsampled onto the full-resolution luminance, row strip by row
strip, so memory stays bounded), global features from another photo (the stylize pull request), and
bf16 weights in channels-last layout on CPUs that run bf16 natively (`to_precision`; fp32 stays the
reference: the .t7 fidelity tests run it).
Speed (profiled with cProfile in CPU seconds): weights are memory-mapped, not copied (torch.load mmap);
the colour conversions are float32 numpy over whole strips; `colorize_luminance` is `predict` (the network)
then `compose` (chroma upsampling, recombination), so a folder run can compose and write one photo while
the network works on the next.
"""
import os
import struct
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from colorize import imageops
from colorize.model import ColorNet, ColorNetConfig
from common import checkpoint
from common.cli import UserError
from common.device import autocast
from common.device import get_device as _get_device

Image.MAX_IMAGE_PIXELS = 400_000_000  # scans of 100+ megapixels are what users bring; the default warns at 89M
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".ppm", ".pgm", ".pnm", ".webp", ".gif"}
ALPHA_EXTS = {".png", ".tif", ".tiff", ".webp"}
# Pillow format per extension: Image.registered_extensions() would import every plugin (0.14 CPU s) to say this
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
           ".ppm": "PPM", ".pgm": "PPM", ".pnm": "PPM", ".webp": "WEBP", ".gif": "GIF"}
# PNG zlib level 3: 2.5x faster than Pillow's 6 (4000x3000: 1.0 vs 2.4 CPU s), files 0-13% larger
SAVE_ARGS = {"JPEG": {"quality": 95}, "PNG": {"compress_level": 3}}
STRIP = 256  # rows recombined at a time


def lua_round(x):
    return int(np.floor(x + 0.5))


def read_image(path):
    """-> (luminance H x W float32 in [0, 1], alpha H x W uint8 or None, colour RGB uint8 or None)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise UserError(f"{path}: is a folder; give an output folder too (colorize.py in_dir/ out_dir/)")
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
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise UserError(f"{path}: not an image this program can read ({str(e).splitlines()[0][:80]})") from None
    alpha = None
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "PA", "RGBA", "La", "RGBa"):
        alpha = np.asarray(img.getchannel("A"))
        img = img.convert("L" if img.mode in ("LA", "La") else "RGB")
    if img.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    if img.mode == "RGB":
        rgb = np.asarray(img)
        y = np.empty(rgb.shape[:2], np.float32)
        w = np.array([0.299, 0.587, 0.114], np.float32) / 255
        for r in range(0, rgb.shape[0], 1024):  # image.rgb2y, in strips to keep a big scan's memory low
            y[r:r + 1024] = rgb[r:r + 1024].astype(np.float32) @ w
        return y, alpha, rgb
    if img.mode == "1":
        img = img.convert("L")
    a = np.asarray(img)
    if img.mode == "L":
        y = a.astype(np.float32) / 255
    elif img.mode.startswith("I;16") or img.mode == "I":
        y = a.astype(np.float32) / (65535 if img.mode.startswith("I;16") or a.max() > 255 else 255)
    elif img.mode == "F":
        y = a.astype(np.float32) / (255 if a.max() > 1 else 1)
    else:
        raise UserError(f"{path}: unsupported image mode {img.mode}")
    return np.clip(y, 0, 1), alpha, None


def check_writable(path):
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTS:
        raise UserError(f"{path}: unknown output format {ext or '(no extension)'}; use .png, .jpg or .tif")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"{path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{path}: cannot write there (permission denied)")


def write_image(path, rgb, alpha=None):
    """Write H x W x 3 uint8 (+ alpha when the format keeps it) atomically, so a failure leaves nothing."""
    path = Path(path)
    img = Image.fromarray(rgb)
    if alpha is not None and path.suffix.lower() in ALPHA_EXTS:
        img.putalpha(Image.fromarray(alpha))
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    fmt = FORMATS[path.suffix.lower()]
    try:
        img.save(tmp, format=fmt, **SAVE_ARGS.get(fmt, {}))
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{path}: cannot write ({e.strerror or e})") from None


# ---------------------------------------------------------------- models

def get_device(gpu):
    """-gpu N -> a device; -gpu 0 without a GPU runs on the CPU with a note, as every experiment does."""
    return _get_device(gpu, "-gpu -1")


DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "colornet.pt"  # = colorize.DEFAULT_MODEL


def load_model(path, device):
    """-> (net in eval mode on device, checkpoint dict). Accepts our .pt files and original .t7 models."""
    path = os.fspath(path)
    if not os.path.exists(path):
        if Path(path).resolve() == DEFAULT_MODEL:
            raise UserError(f"no model at {path}: run `make download-models` (fetches and converts colornet.t7) "
                            f"or train one with colorize/train.py and pass -model PATH")
        raise UserError(f"{path}: no such model file")
    if path.endswith(".t7"):
        from colorize.lua_checkpoint import load_t7
        net, mean = load_t7(path)
        ck = {"config": net.config.__dict__, "mean": mean, "recombine": "yuv", "source": path}
    else:
        try:
            ck = checkpoint.load(path, "colorize", mmap=True)  # weights paged in from the file, not copied
        except struct.error:  # torch.load of a few-byte file that is no checkpoint; common.checkpoint misses it
            raise UserError(f"{path}: not a torch-classics checkpoint (not a file written by torch.save)") from None
        with torch.device("meta"):  # no random initialisation of weights about to be replaced (0.3 s at full size)
            net = ColorNet(ColorNetConfig(**ck["config"]))
        net.load_state_dict(ck.pop("model"), assign=True)
    return net.to(device).eval(), ck


def to_precision(net, device, precision):
    """The net as it runs at `precision` ('fp32' | 'bf16' | 'fp16', from common.device.resolve_precision).

    On a CPU, bf16 means bf16 weights in channels-last layout (oneDNN's fast path on AVX512-BF16/AMX):
    measured 0.70 CPU s for the paper-size network on 768x512 against 0.91 under autocast and 1.74 in fp32.
    On a GPU the weights stay float32 and predict_ab runs under autocast."""
    if precision == "bf16" and torch.device(device).type == "cpu":
        return net.to(dtype=torch.bfloat16, memory_format=torch.channels_last)
    return net


# ---------------------------------------------------------------- the pipeline

def prepare(y, mean, max_side=0):
    """-> X2 (h8 x w8 float32): Y at the working size rounded to multiples of 8, minus the mean."""
    h, w = y.shape
    if max_side and max(h, w) > max_side:
        s = max_side / max(h, w)
        w, h = max(1, round(w * s)), max(1, round(h * s))
    w8, h8 = max(8, lua_round(w / 8) * 8), max(8, lua_round(h / 8) * 8)
    return imageops.scale(y, w8, h8) - np.float32(mean)


def _as_input(a, net, device):
    """H x W float32 array -> 1 x 1 x H x W tensor in the net's dtype (and channels-last for a bf16 net)."""
    t = torch.from_numpy(np.ascontiguousarray(a, np.float32))[None, None].to(device)
    dtype = next(net.parameters()).dtype
    return t if dtype == torch.float32 else t.to(dtype).contiguous(memory_format=torch.channels_last)


@torch.inference_mode()
def predict_ab(net, x2, device, x1=None, global_feats=None, precision="fp32"):
    """Network forward: X2 (h8 x w8) and X1 (S x S, default X2 scaled) -> ab in [0, 1], 2 x h8/2 x w8/2.

    A net from to_precision runs in its own dtype; a float32 net with precision 'bf16'/'fp16' runs under
    autocast (common.device.autocast). The output is float32 either way."""
    S = net.config.global_size
    if x1 is None and global_feats is None:
        x1 = imageops.scale(x2, S, S)  # colorize.lua: X1 = image.scale(X2, 224, 224)
    with autocast(torch.device(device), precision if next(net.parameters()).dtype == torch.float32 else "fp32"):
        out, _ = net(_as_input(x2, net, device), None if x1 is None else _as_input(x1, net, device), global_feats)
        out = net.decode(out)  # a classifying net's ab bins -> their annealed mean (a regressing net: unchanged)
    return out[0].float().cpu().numpy()


@torch.inference_mode()
def style_features(net, y_style, mean, device):
    """Global features of another photo (-style_image): its X1 through the low-level and global networks."""
    S = net.config.global_size
    x1 = imageops.scale(prepare(y_style, mean), S, S)
    feats, _ = net.global_features(_as_input(x1, net, device))
    return feats


def colorize_luminance(net, mean, y, device, recombine="yuv", max_side=0, keep_size=True, global_feats=None,
                       want_ab=False, precision="fp32"):
    """Luminance H x W in [0, 1] -> (RGB uint8 H x W x 3, ab float32 2 x H x W in Lab units or None).

    keep_size=False gives the original's output size (rounded to multiples of 8, working resolution).
    """
    out, lum = predict(net, mean, y, device, max_side, keep_size, global_feats, precision)
    return compose(out, lum, recombine, want_ab)


def predict(net, mean, y, device, max_side=0, keep_size=True, global_feats=None, precision="fp32"):
    """The network's part: -> (ab in [0, 1] at half the working size, the luminance to recombine with)."""
    x2 = prepare(y, mean, max_side)
    out = predict_ab(net, x2, device, global_feats=global_feats, precision=precision)
    return out, (y if keep_size else x2 + np.float32(mean))


def compose(out, lum, recombine="yuv", want_ab=False):
    """ab in [0, 1] (2 x h x w) + luminance (H x W) -> (RGB uint8 H x W x 3, ab 2 x H x W in Lab units or None)."""
    oh, ow = lum.shape
    # image.scale(out, W, H): rows first for the whole map, then columns one strip of output rows at a time
    tmp = imageops.apply_band(out, imageops.taps(out.shape[2], ow), -1)
    idx, w, n = imageops.taps(out.shape[1], oh)   # the chroma is upsampled: n (a box divisor) is None
    rgb = np.empty((oh, ow, 3), np.uint8)
    offset = 0.0 if recombine == "yuv" else 0.5  # image.save truncates x 255 (its C cast); ours rounds
    ab_full = np.empty((2, oh, ow), np.float32) if want_ab else None
    for r in range(0, oh, STRIP):
        rows = (idx[r:r + STRIP], w[r:r + STRIP], None if n is None else n[r:r + STRIP])
        ab = (2 * imageops.apply_band(tmp, rows, -2) - 1) * 100
        if want_ab:
            ab_full[:, r:r + STRIP] = ab
        strip = imageops.recombine(lum[r:r + STRIP], ab, recombine)
        rgb[r:r + STRIP] = (strip.transpose(1, 2, 0) * 255 + offset).astype(np.uint8)
    return rgb, ab_full
