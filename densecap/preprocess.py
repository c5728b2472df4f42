"""Visual Genome regions (or COCO instances) -> the original's HDF5 + JSON training files, streaming.

    python preprocess.py --region_data region_descriptions.json --image_dir VG_100K \
        --split_json info/densecap_splits.json --json_output data/VG-regions-dicts.json --h5_output data/VG-regions.h5
    python preprocess.py --coco_instances instances_train2017.json --coco_images train2017 \
        [--coco_captions captions_train2017.json] --h5_output data/coco.h5 --json_output data/coco.json

HDF5 (as preprocess.py wrote it): images uint8 (N, 3, S, S) RGB, longest side S, top-left, zero-padded
(the loader flips to BGR); image_heights/widths, original_heights/widths; boxes int32 (M, 4) xc, yc, w, h
in 1-indexed pixels of the resized image; labels int32 (M, L) 0-padded; lengths; img_to_first_box /
img_to_last_box / box_to_img (1-based); split (0 train, 1 val, 2 test). JSON: token_to_idx,
idx_to_token, filename_to_idx, idx_to_filename. Images are read and written one chunk at a time, so
memory does not grow with their number (the annotation JSON itself is read whole).
"""
import json
import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from common.captions import tokenize
from common.cli import UserError, flag, options, parse, run

UNK = "<UNK>"
SPLITS = ("train", "val", "test")


@options
class PreprocessOptions:
    """Turn Visual Genome region descriptions (or COCO instances) into densecap's HDF5 + JSON."""
    region_data: str = flag("data/visual-genome/region_descriptions.json", "Visual Genome region_descriptions.json")
    image_dir: str = flag("data/visual-genome/images", "folder of the VG images <image_id>.jpg")
    split_json: str = flag("info/densecap_splits.json", "{train,val,test: [image ids]}; '' = 80/10/10 in order")
    json_output: str = flag("data/VG-regions-dicts.json", "output JSON (vocabulary, file names)")
    h5_output: str = flag("data/VG-regions.h5", "output HDF5")
    image_size: int = flag(720, "longest side of the stored images")
    max_token_length: int = flag(15, "regions with longer phrases are dropped")
    min_token_instances: int = flag(15, "words seen fewer times become <UNK>")
    tokens_type: str = flag("words", "only 'words' (as the original)", choices=["words"])
    num_workers: int = flag(5, "threads decoding and resizing images")
    max_images: int = flag(-1, "use at most this many images (-1 = all)")
    coco_instances: str = flag("", "new: a COCO instances json instead of VG (phrase = category name)")
    coco_images: str = flag("", "new: the folder of the COCO images")
    coco_captions: str = flag("", "new: a COCO captions json; each caption becomes a whole-image region")


def _read_json(path, what):
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file ({what})")
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e.msg if hasattr(e, 'msg') else e})") from None


def read_vg(opt):
    """-> list of (image_id, path, [ {x, y, w, h, phrase} ])."""
    data = _read_json(opt.region_data, "--region_data")
    if not isinstance(data, list) or not data:
        raise UserError(f"{opt.region_data}: no images in it (expected a Visual Genome region_descriptions list)")
    out = []
    for entry in data:
        regions = entry.get("regions", [])
        image_id = entry.get("id", regions[0]["image_id"] if regions else None)
        if image_id is None:
            continue
        path = os.path.join(opt.image_dir, f"{image_id}.jpg")
        if not os.path.exists(path) and os.path.exists(path[:-4] + ".png"):
            path = path[:-4] + ".png"  # the shapes world writes PNGs
        out.append((int(image_id), path,
                    [{"x": r["x"], "y": r["y"], "w": r["width"], "h": r["height"], "phrase": r["phrase"]}
                     for r in regions]))
    return out


def read_coco(opt):
    inst = _read_json(opt.coco_instances, "--coco_instances")
    if not inst.get("images"):
        raise UserError(f"{opt.coco_instances}: no images in it (expected a COCO instances json)")
    names = {c["id"]: c["name"] for c in inst.get("categories", [])}
    regions = {im["id"]: [] for im in inst["images"]}
    for a in inst.get("annotations", []):
        x, y, w, h = a["bbox"]
        if a["image_id"] in regions and w >= 1 and h >= 1:
            regions[a["image_id"]].append({"x": x, "y": y, "w": w, "h": h, "phrase": names.get(a["category_id"], "")})
    if opt.coco_captions:
        sizes = {im["id"]: (im["width"], im["height"]) for im in inst["images"]}
        for a in _read_json(opt.coco_captions, "--coco_captions").get("annotations", []):
            if a["image_id"] in regions:
                W, H = sizes[a["image_id"]]
                regions[a["image_id"]].append({"x": 0, "y": 0, "w": W, "h": H, "phrase": a["caption"]})
    return [(im["id"], os.path.join(opt.coco_images, im["file_name"]), regions[im["id"]]) for im in inst["images"]]


def assign_splits(images, split_json):
    """image_id -> 0/1/2 from the split file, or 80/10/10 in order without one; images in no split are dropped."""
    if split_json:
        splits = _read_json(split_json, "--split_json")
        which = {int(i): k for k, name in enumerate(SPLITS) for i in splits.get(name, [])}
    else:
        n = len(images)
        n_val = n_test = max(1, n // 10) if n >= 3 else 0
        which = {img[0]: (0 if k < n - n_val - n_test else 1 if k < n - n_test else 2)
                 for k, img in enumerate(images)}
    return [(img, which[img[0]]) for img in images if img[0] in which]


def encode_box(r, scale, W, H):
    """VG box (0-indexed x, y, w, h, original pixels) -> int (xc, yc, w, h), 1-indexed, resized, clamped."""
    x1 = min(max(int(round(r["x"] * scale)) + 1, 1), W)
    y1 = min(max(int(round(r["y"] * scale)) + 1, 1), H)
    w = min(max(int(round(r["w"] * scale)), 1), W - x1 + 1)
    h = min(max(int(round(r["h"] * scale)), 1), H - y1 + 1)
    return [x1 + w // 2, y1 + h // 2, w, h]


def _open_size(path):
    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        return None
    except (UnidentifiedImageError, OSError):
        return False


def _load_resized(path, size):
    with Image.open(path) as im:
        img = im.convert("RGB")
    w, h = img.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    return np.asarray(img.resize((nw, nh), Image.BILINEAR) if (nw, nh) != (w, h) else img)


def main(opt: PreprocessOptions, err=None):
    err = err or sys.stderr
    images = read_coco(opt) if opt.coco_instances else read_vg(opt)
    if opt.max_images > 0:
        images = images[:opt.max_images]
    split_json = opt.split_json
    if opt.coco_instances and split_json == PreprocessOptions.split_json:
        split_json = ""  # VG's split file means nothing for COCO ids: split 80/10/10 unless given one
    images = assign_splits(images, split_json)
    # tokenize; drop long and empty phrases; keep images with at least one region
    kept = []
    for (image_id, path, regions), split in images:
        toks = [(r, tokenize(r["phrase"])) for r in regions]
        toks = [(r, t) for r, t in toks if 0 < len(t) <= opt.max_token_length]
        if toks:
            kept.append((image_id, path, toks, split))
    # image headers: skip missing or unreadable images with a warning
    usable = []
    for item in tqdm(kept, desc="checking images", disable=not err.isatty(), file=err):
        size = _open_size(item[1])
        if not size:
            print(f"warning: skipping {item[1]}: {'missing' if size is None else 'not a readable image'}", file=err)
            continue
        usable.append(item + (size,))
    if not usable:
        raise UserError(f"no usable images with regions (looked in {opt.coco_images or opt.image_dir})")
    counts = Counter(w for item in usable for _, toks in item[2] for w in toks)
    vocab = sorted(w for w, c in counts.items() if c >= opt.min_token_instances)
    if any(c < opt.min_token_instances for c in counts.values()):
        vocab.append(UNK)
    token_to_idx = {w: i + 1 for i, w in enumerate(vocab)}
    unk = token_to_idx.get(UNK)

    N, M, S, L = len(usable), sum(len(item[2]) for item in usable), opt.image_size, opt.max_token_length
    os.makedirs(os.path.dirname(os.path.abspath(opt.h5_output)), exist_ok=True)
    tmp = opt.h5_output + ".tmp"
    with h5py.File(tmp, "w") as f:
        images_ds = f.create_dataset("images", (N, 3, S, S), dtype=np.uint8, chunks=(1, 3, S, S))
        meta = {k: np.zeros(N, np.int32) for k in ("image_heights", "image_widths", "original_heights",
                                                   "original_widths", "img_to_first_box", "img_to_last_box",
                                                   "split")}
        boxes = f.create_dataset("boxes", (M, 4), dtype=np.int32)
        labels = f.create_dataset("labels", (M, L), dtype=np.int32)
        lengths = f.create_dataset("lengths", (M,), dtype=np.int32)
        box_to_img = f.create_dataset("box_to_img", (M,), dtype=np.int32)
        b = 0
        chunk = max(1, 4 * opt.num_workers)
        with ThreadPoolExecutor(max(1, opt.num_workers)) as pool, \
                tqdm(total=N, desc="images", disable=not err.isatty(), file=err) as bar:
            for start in range(0, N, chunk):  # one chunk of images (and their regions) in memory at a time
                batch = usable[start:start + chunk]
                c_boxes, c_labels, c_lengths, c_img = [], [], [], []
                for k, ((image_id, path, toks, split, (ow, oh)), rgb) in enumerate(
                        zip(batch, pool.map(lambda it: _load_resized(it[1], S), batch))):
                    i = start + k
                    h, w = rgb.shape[:2]
                    images_ds[i] = np.pad(rgb.transpose(2, 0, 1), ((0, 0), (0, S - h), (0, S - w)))
                    scale = S / max(ow, oh)
                    meta["image_heights"][i], meta["image_widths"][i] = h, w
                    meta["original_heights"][i], meta["original_widths"][i] = oh, ow
                    meta["split"][i] = split
                    meta["img_to_first_box"][i] = b + len(c_boxes) + 1
                    for r, t in toks:
                        ids = [token_to_idx.get(x, unk) for x in t]
                        c_boxes.append(encode_box(r, scale, w, h))
                        c_labels.append(ids + [0] * (L - len(ids)))
                        c_lengths.append(len(ids))
                        c_img.append(i + 1)
                    meta["img_to_last_box"][i] = b + len(c_boxes)
                    bar.update()
                n = len(c_boxes)
                boxes[b:b + n], labels[b:b + n] = np.array(c_boxes), np.array(c_labels)
                lengths[b:b + n], box_to_img[b:b + n] = c_lengths, c_img
                b += n
        for k, v in meta.items():
            f.create_dataset(k, data=v)
    os.replace(tmp, opt.h5_output)
    info = {"token_to_idx": token_to_idx, "idx_to_token": {str(i): w for w, i in token_to_idx.items()},
            "filename_to_idx": {os.path.basename(item[1]): i for i, item in enumerate(usable)},
            "idx_to_filename": {str(i): os.path.basename(item[1]) for i, item in enumerate(usable)}}
    with open(opt.json_output, "w") as f:
        json.dump(info, f)
    per_split = Counter(SPLITS[item[3]] for item in usable)
    print(f"wrote {opt.h5_output}: {N} images ({dict(per_split)}), {M} regions, vocabulary {len(vocab)} "
          f"(words seen < {opt.min_token_instances} times -> {UNK})", file=err)
    return info


if __name__ == "__main__":
    run(main, parse(PreprocessOptions))
