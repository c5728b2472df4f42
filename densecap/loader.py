"""Images in, model input out; and the training data (preprocess.py's HDF5 + JSON) one image at a time.

Model input is the original's: longest side scaled to -image_size, RGB -> BGR, 0..255, minus the VGG
mean, shape (1, 3, H, W).
"""
import json
import os

import h5py
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from common.cli import UserError
from densecap.model import VGG_MEAN_BGR


def resize_longest(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    return img if (nw, nh) == (w, h) else img.resize((nw, nh), Image.BILINEAR)


def to_input(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float BGR minus the VGG mean."""
    x = torch.from_numpy(np.ascontiguousarray(rgb[:, :, ::-1])).float().permute(2, 0, 1)
    return (x - torch.tensor(VGG_MEAN_BGR).view(3, 1, 1)).unsqueeze(0)


def load_image(path, image_size):
    """-> (resized PIL RGB image, model input). An unreadable file is a UserError naming it."""
    try:
        with Image.open(path) as im:
            img = im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable image ({type(e).__name__})") from None
    img = resize_longest(img, image_size)
    return img, to_input(np.asarray(img))


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
        self.h5 = h5py.File(data_h5, "r")
        self.vocab_size = len(self.idx_to_token)
        self.seq_length = self.h5["labels"].shape[1]
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
