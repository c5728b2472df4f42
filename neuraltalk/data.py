"""Caption datasets: reading the three input formats, the label h5 + json prepro writes, and batches.

Input formats (prepro.py reads any of them):
  - Karpathy's `dataset_*.json` ({"images": [{filename, filepath?, split, sentences: [{tokens, raw}]}]});
  - neuraltalk2's own list ([{file_path, captions: [...], id?}]);
  - a COCO captions json ({"images": [{id, file_name}], "annotations": [{image_id, caption}]}).

Output (neuraltalk2's layout, plus raw captions and image data in the same files):
  h5:   labels (M, max_length) uint32, label_start_ix / label_end_ix (N,) 1-based inclusive, label_length (M,);
        then `fc` (N, D) + `att` (N, S*S, C) CNN features and/or `images` (N, 3, 256, 256) uint8.
  json: {"ix_to_word": {"1": ...}, "images": [{split, file_path, id, captions}], "images_root": ...}
"""
import json
import os
import sys

import h5py
import numpy as np
from PIL import Image

from common.captions import tokenize
from common.cli import UserError
from common.images import open_rgb

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".gif", ".webp")


def read_dataset_json(path):
    """-> list of {file_path, id, split (or None), captions: [raw], tokens: [[...]]} in file order."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file (give -input_json a dataset json)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if isinstance(data, list):  # neuraltalk2: [{file_path, captions}]
        items = [{"file_path": im["file_path"], "id": im.get("id", k + 1), "split": im.get("split"),
                  "captions": list(im["captions"])} for k, im in enumerate(data)]
    elif isinstance(data, dict) and "annotations" in data and "images" in data:  # COCO captions
        caps = {}
        for a in data["annotations"]:
            caps.setdefault(a["image_id"], []).append(a["caption"])
        items = [{"file_path": im["file_name"], "id": im["id"], "split": None, "captions": caps.get(im["id"], [])}
                 for im in data["images"]]
    elif isinstance(data, dict) and "images" in data:  # Karpathy
        items = []
        for k, im in enumerate(data["images"]):
            fp = os.path.join(im.get("filepath", ""), im["filename"])
            split = im.get("split")
            items.append({"file_path": fp, "id": im.get("cocoid", im.get("imgid", k)),
                          "split": "train" if split == "restval" else split,
                          "captions": [s.get("raw") or " ".join(s["tokens"]) for s in im["sentences"]],
                          "tokens": [s["tokens"] if "tokens" in s else tokenize(s["raw"]) for s in im["sentences"]]})
    else:
        raise UserError(f"{path}: not a Karpathy dataset json, a neuraltalk2 [{{file_path, captions}}] list "
                        f"or a COCO captions json")
    for it in items:
        if "tokens" not in it:
            it["tokens"] = [tokenize(c) for c in it["captions"]]
    no_caps = [it["file_path"] for it in items if not it["captions"]]
    if no_caps:
        print(f"warning: {len(no_caps)} image(s) without captions skipped (e.g. {no_caps[0]})", file=sys.stderr)
        items = [it for it in items if it["captions"]]
    if not items:
        raise UserError(f"{path}: no images with captions")
    return items


def assign_splits(items, num_val, num_test, seed=123):
    """Honour the json's `split`; without one, neuraltalk2's rule: shuffle (seed 123), first num_val val,
    next num_test test, the rest train."""
    if all(it["split"] for it in items):
        return items
    order = np.random.RandomState(seed).permutation(len(items))
    for rank, k in enumerate(order):
        items[k]["split"] = "val" if rank < num_val else "test" if rank < num_val + num_test else "train"
    return items


def split_counts(items):
    counts = {}
    for it in items:
        counts[it["split"]] = counts.get(it["split"], 0) + 1
    return counts


def encode_labels(items, word_to_ix, max_length):
    """-> (labels (M, L) uint32, start_ix, end_ix (1-based inclusive), lengths, n_truncated)."""
    unk = word_to_ix.get("UNK", 0)
    rows, start, end, lengths, truncated = [], [], [], [], 0
    for it in items:
        start.append(len(rows) + 1)
        for toks in it["tokens"]:
            truncated += len(toks) > max_length
            row = np.zeros(max_length, dtype=np.uint32)
            ids = [word_to_ix.get(w, unk) for w in toks[:max_length]]
            row[:len(ids)] = ids
            rows.append(row)
            lengths.append(max(1, len(ids)))
        end.append(len(rows))
    return (np.stack(rows), np.array(start, np.int64), np.array(end, np.int64), np.array(lengths, np.int64),
            truncated)


# ---------------------------------------------------------------- images
def read_rgb(path, size=None):
    """An image file as an (H, W, 3) uint8 array the way a user means it (common.images.open_rgb: EXIF
    orientation, 16-bit grayscale, alpha, palettes, CMYK), optionally squashed to size x size (bicubic).
    A missing or undecodable file is a UserError naming it."""
    im = open_rgb(path)
    if size:
        im = im.resize((size, size), Image.BICUBIC)
    return np.asarray(im, dtype=np.uint8)


def load_rgb(path, size=None):
    """read_rgb, or None after one warning line on stderr when the file cannot be read (folders of photos)."""
    try:
        return read_rgb(path, size)
    except UserError as e:
        print(f"warning: skipped {e}", file=sys.stderr)
        return None


def list_image_folder(folder):
    """Image files of a folder (sorted; names starting with '.' skipped, e.g. macOS '._x.jpg')."""
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: no such folder (give -image_folder a folder of images)")
    files = sorted(f for f in os.listdir(folder)
                   if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise UserError(f"{folder}: found 0 images (.jpg/.jpeg/.png/.ppm/.bmp/.gif/.webp)")
    return [os.path.join(folder, f) for f in files]


def center_crop(batch, crop):
    """(B, 3, S, S) -> centre crop x crop (eval); see random_crop for training."""
    s = batch.shape[-1]
    o = (s - crop) // 2
    return batch[..., o:o + crop, o:o + crop]


def random_crop(batch, crop, rng):
    s = batch.shape[-1]
    x, y = rng.integers(0, s - crop + 1, size=2)
    return batch[..., y:y + crop, x:x + crop]


# ---------------------------------------------------------------- training data
class CaptionData:
    """The prepro outputs, read for training/eval. Labels are held in memory; image data is read per batch."""

    def __init__(self, json_path, h5_path):
        for p, flag in ((json_path, "-input_json"), (h5_path, "-input_h5")):
            if not os.path.isfile(p):
                raise UserError(f"{p}: no such file (run prepro.py first, or fix {flag})")
        with open(json_path, encoding="utf-8") as f:
            info = json.load(f)
        if "ix_to_word" not in info:
            raise UserError(f"{json_path}: no ix_to_word; this is not a prepro.py output json")
        self.ix_to_word = info["ix_to_word"]
        self.vocab_size = len(self.ix_to_word)
        self.images = info["images"]
        self.images_root = info.get("images_root", "")
        try:
            self.h5 = h5py.File(h5_path, "r")
        except OSError as e:
            raise UserError(f"{h5_path}: not a readable HDF5 file ({e})") from None
        if "labels" not in self.h5:
            raise UserError(f"{h5_path}: no `labels`; this is not a prepro.py output h5")
        self.labels = self.h5["labels"][...].astype(np.int64)
        self.start_ix = self.h5["label_start_ix"][...] - 1
        self.end_ix = self.h5["label_end_ix"][...]  # exclusive after the -1 shift of start
        self.seq_length = self.labels.shape[1]
        if len(self.images) != len(self.start_ix):
            raise UserError(f"{json_path} lists {len(self.images)} images but {h5_path} has {len(self.start_ix)}; "
                            f"they come from different prepro runs")
        self.has_feats = "fc" in self.h5
        self.has_att = "att" in self.h5
        self.has_images = "images" in self.h5
        if not (self.has_feats or self.has_images):
            raise UserError(f"{h5_path}: no image data (`fc`/`att` features or `images`); run prepro.py "
                            f"with -images_root")
        if self.has_feats and "done" in self.h5 and not self.h5["done"][...].all():
            raise UserError(f"{h5_path}: feature extraction did not finish; run the same prepro.py command again "
                            f"to complete it")
        self.cnn_info = dict(self.h5.attrs.items())
        self.split_ix = {}
        for k, im in enumerate(self.images):
            self.split_ix.setdefault(im["split"], []).append(k)

    def require_split(self, split, what):
        if not self.split_ix.get(split):
            have = ", ".join(f"{s}: {len(v)}" for s, v in sorted(self.split_ix.items()))
            raise UserError(f"the dataset has no images in split '{split}' ({have}), needed for {what}; "
                            f"re-run prepro.py with -num_val/-num_test or pick another -split")
        return self.split_ix[split]

    def captions_for(self, ix, seq_per_img, rng):
        """seq_per_img label rows for image ix: a random contiguous block, with replacement if too few
        (as neuraltalk2's DataLoader)."""
        a, b = int(self.start_ix[ix]), int(self.end_ix[ix])
        n = b - a
        if n < seq_per_img:
            rows = a + rng.integers(0, n, size=seq_per_img)
        else:
            first = a + int(rng.integers(0, n - seq_per_img + 1))
            rows = np.arange(first, first + seq_per_img)
        return self.labels[rows]

    def read(self, name, ixs):
        """Rows `ixs` of an h5 dataset, in the given order (h5py wants increasing unique indices)."""
        ixs = np.asarray(ixs)
        uniq, inverse = np.unique(ixs, return_inverse=True)
        return self.h5[name][uniq][inverse]

    def refs(self, ix):
        return self.images[ix].get("captions") or []

    def close(self):
        self.h5.close()
