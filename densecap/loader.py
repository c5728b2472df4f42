"""Images in, model input out; and the training data (preprocess.py's HDF5 + JSON) one image at a time.

Model input is the original's: longest side scaled to -image_size, RGB -> BGR, 0..255, minus the VGG
mean, shape (1, 3, H, W).
"""
import json
import os

import h5py
import numpy as np
import scipy.sparse
import torch
from PIL import Image

from common.cli import UserError
from common.images import open_rgb
from densecap.model import VGG_MEAN_BGR


def to_input(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) RGB 0..255 (uint8 or float) -> (1, 3, H, W) float BGR minus the VGG mean."""
    x = torch.from_numpy(np.ascontiguousarray(rgb[:, :, ::-1], dtype=np.float32)).permute(2, 0, 1)
    return (x - torch.tensor(VGG_MEAN_BGR).view(3, 1, 1)).unsqueeze(0)


def _scale_weights(src_len, dst_len):
    """torch/image's image.scale 'bilinear' along one axis (scaleLinear_rowcol in image.c) as a sparse
    (dst_len, src_len) matrix: shrinking averages the source pixels each output pixel covers (partial
    pixels weighted), growing interpolates linearly with both ends pinned. Float32 steps as in the C."""
    f32 = np.float32
    rows, cols, vals = [], [], []
    if dst_len > src_len:
        scale = f32(src_len - 1) / f32(dst_len - 1)
        for di in range(dst_len - 1):
            if src_len == 1:
                rows.append(di)
                cols.append(0)
                vals.append(1.0)
                continue
            si = f32(f32(di) * scale)
            i = int(si)
            frac = float(si - f32(i))
            rows += [di, di]
            cols += [i, min(i + 1, src_len - 1)]
            vals += [1 - frac, frac]
        rows.append(dst_len - 1)
        cols.append(src_len - 1)
        vals.append(1.0)
    elif dst_len < src_len:
        scale = f32(src_len) / f32(dst_len)
        i0, f0 = 0, 0.0
        for di in range(dst_len):
            s1 = f32(f32(di + 1) * scale)
            i1 = int(s1)
            f1 = float(s1 - f32(i1))
            r = [(i0, 1 - f0)] + [(j, 1.0) for j in range(i0 + 1, i1)] + ([(i1, f1)] if i1 < src_len else [])
            n = sum(w for _, w in r)
            rows += [di] * len(r)
            cols += [j for j, _ in r]
            vals += [w / n for _, w in r]
            i0, f0 = i1, f1
    else:
        rows, cols, vals = list(range(src_len)), list(range(src_len)), [1.0] * src_len
    return scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(dst_len, src_len))


def lua_scale(rgb: np.ndarray, size: int) -> np.ndarray:
    """image.scale(img, size) as run_model.lua calls it: the longest side becomes `size`, the other
    floor(side * size / longest) (Torch truncates the fractional size), bilinear as torch/image computes
    it. (H, W, C) array -> float32 (h, w, C), not rounded (run_model.lua keeps the floats)."""
    h, w, c = rgb.shape
    longest = max(h, w)
    nh, nw = max(1, h * size // longest), max(1, w * size // longest)
    x = rgb.astype(np.float32)
    x = (_scale_weights(w, nw) @ x.transpose(1, 0, 2).reshape(w, h * c)).reshape(nw, h, c).transpose(1, 0, 2)
    x = (_scale_weights(h, nh) @ x.reshape(h, nw * c)).reshape(nh, nw, c)
    return x.astype(np.float32)


def load_image(path, image_size):
    """-> (resized PIL RGB image, model input), as run_model.lua: image.load, image.scale to the longest
    side, 0..255 BGR minus the VGG mean. EXIF orientation, 16-bit, alpha and palettes via open_rgb; an
    unreadable file is a UserError naming it."""
    rgb = lua_scale(np.asarray(open_rgb(path)), image_size)
    img = Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))
    return img, to_input(rgb)


class DataLoader:
    """preprocess.py's output, one image per call as DataLoader.lua: images in order, no shuffling.

    Returns (image (1,3,H,W) model input, boxes (B,4) xcycwh float, labels (B,L) long, info dict).
    """

    def __init__(self, data_h5, data_json, debug_max_train_images=-1):
        for p in (data_h5, data_json):
            if not os.path.isfile(p):
                raise UserError(f"{p}: not found; run preprocess.py first (see densecap/README.md)")
        with open(data_json) as f:
            info = json.load(f)
        self.idx_to_token = {str(k): v for k, v in info["idx_to_token"].items()}
        self.token_to_idx = info["token_to_idx"]
        self.idx_to_filename = {int(k): v for k, v in info["idx_to_filename"].items()}
        try:
            self.h5 = h5py.File(data_h5, "r")
            labels = self.h5["labels"]
        except (OSError, KeyError) as e:
            why = (str(e).strip().splitlines() or [type(e).__name__])[0][:80]
            raise UserError(f"{data_h5}: not an HDF5 file from preprocess.py ({why}); run preprocess.py "
                            f"(see densecap/README.md)") from None
        self.vocab_size = len(self.idx_to_token)
        self.seq_length = labels.shape[1]
        split = self.h5["split"][:]
        self.split_ix = {name: np.nonzero(split == k)[0] for k, name in enumerate(("train", "val", "test"))}
        if debug_max_train_images > 0:
            self.split_ix["train"] = self.split_ix["train"][:debug_max_train_images]
        self.first = self.h5["img_to_first_box"][:]
        self.last = self.h5["img_to_last_box"][:]
        self.heights = self.h5["image_heights"][:]
        self.widths = self.h5["image_widths"][:]
        self.iterators = {k: 0 for k in self.split_ix}
        if len(self.split_ix["train"]) == 0:
            raise UserError(f"{data_h5}: no training images (check the split file given to preprocess.py)")

    def get_image(self, ix):
        h, w = int(self.heights[ix]), int(self.widths[ix])
        rgb = self.h5["images"][ix, :, :h, :w].transpose(1, 2, 0)
        a, b = int(self.first[ix]) - 1, int(self.last[ix])  # 1-based inclusive
        boxes = torch.from_numpy(self.h5["boxes"][a:b].astype(np.float32))
        labels = torch.from_numpy(self.h5["labels"][a:b].astype(np.int64))
        info = {"index": int(ix), "filename": self.idx_to_filename.get(int(ix), str(ix)), "height": h, "width": w}
        return to_input(rgb), boxes, labels, info

    def next(self, split="train"):
        """The next image of `split`, wrapping around; also returns whether it wrapped."""
        ixs = self.split_ix[split]
        if len(ixs) == 0:
            raise UserError(f"the data has no {split} images")
        k = self.iterators[split]
        self.iterators[split] = (k + 1) % len(ixs)
        return self.get_image(ixs[k]), k + 1 == len(ixs)

    def state(self):
        return dict(self.iterators)

    def set_state(self, s):
        self.iterators.update(s or {})
