"""Image grids as torch/image's `toDisplayTensor` lays them out, and PNG writing with Pillow."""
import math
import os

import numpy as np
import torch
from PIL import Image


def _minmax(x):
    """image.minmax with inferred bounds: shift by the min, divide by the (shifted) max."""
    x = x - x.min()
    m = x.max()
    return x / m if m != 0 else x


def display_tensor(images, nrow=6, padding=0, scaleeach=False):
    """B x C x H x W -> C x rows*H x nrow*W, as image.toDisplayTensor: empty cells take the batch's
    maximum, then the whole grid (or each image, with scaleeach) is min-max scaled to [0, 1]."""
    x = images.detach().float().cpu().clone()
    if scaleeach:
        x = torch.stack([_minmax(im) for im in x])
    n, c, h, w = x.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    H, W = h + padding, w + padding
    grid = torch.full((c, H * rows, W * cols), float(x.max()))
    for k in range(n):
        y, xx = divmod(k, cols)
        top, left = y * H + padding // 2, xx * W + padding // 2
        grid[:, top:top + h, left:left + w] = x[k]
    return grid if scaleeach else _minmax(grid)


def save_png(path, img):
    """C x H x W in [0, 1] (C = 1 or 3) -> an 8-bit PNG (or any format Pillow knows from the name)."""
    a = (img.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    a = a[:, :, 0] if a.shape[2] == 1 else a
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(a)).save(path)
    return path
