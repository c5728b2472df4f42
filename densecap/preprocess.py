"""Visual Genome regions (or COCO instances) -> the original's HDF5 + JSON training files, streaming.

    python preprocess.py --region_data region_descriptions.json --image_dir VG_100K \
        --split_json info/densecap_splits.json --json_output data/VG-regions-dicts.json --h5_output data/VG-regions.h5
    python preprocess.py --coco_instances instances_train2017.json --coco_images train2017 \
        [--coco_captions captions_train2017.json] --h5_output data/coco.h5 --json_output data/coco.json

HDF5 (as preprocess.py wrote it): images uint8 (N, 3, S, S) RGB, longest side S, top-left, zero-padded
(the loader flips to BGR); image_heights/widths, original_heights/widths; boxes int32 (M, 4) xc, yc, w, h
in 1-indexed pixels of the resized image; labels int32 (M, L) 0-padded; lengths; img_to_first_box /
img_to_last_box / box_to_img (1-based); split (0 train, 1 val, 2 test). JSON: token_to_idx,
idx_to_token, filename_to_idx, idx_to_filename.

Streaming: region_descriptions.json is parsed with ijson twice (first to pick the usable images and
count the words, then to write them), and images are written one chunk at a time, so peak memory does
not grow with the number of images (tests/test_preprocess.py measures it).
"""
import itertools
import json
import os
import sys
from array import array
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import h5py
import ijson
import numpy as np
from PIL import Image
from tqdm import tqdm

from common.captions import tokenize
from common.cli import UserError, flag, options, parse, run
from common.images import open_rgb

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
    image_size: int = flag(720, "longest side of the stored images", min=1)
    max_token_length: int = flag(15, "regions with longer phrases are dropped")
    min_token_instances: int = flag(15, "words seen fewer times become <UNK>")
    tokens_type: str = flag("words", "only 'words' (as the original)", choices=["words"])
    num_workers: int = flag(5, "threads decoding and resizing images")
    max_images: int = flag(-1, "use at most this many images (-1 = all)")
    coco_instances: str = flag("", "new: a COCO instances json instead of VG (phrase = category name)")
    coco_images: str = flag("", "new: the folder of the COCO images")
    coco_captions: str = flag("", "new: a COCO captions json; each caption becomes a whole-image region")


def _check_file(path, what):
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file ({what})")
    if os.path.getsize(path) == 0:
        raise UserError(f"{path}: the file is empty ({what})")


def _read_json(path, what):
    """A small JSON file (split file, COCO annotations) read whole."""
    _check_file(path, what)
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e.msg if hasattr(e, 'msg') else e})") from None


def _image_path(image_dir, image_id):
    path = os.path.join(image_dir, f"{image_id}.jpg")
    if not os.path.exists(path) and os.path.exists(path[:-4] + ".png"):
        path = path[:-4] + ".png"  # the shapes world writes PNGs
    return path


def read_vg(opt):
    """Yield (image_id, path, [ {x, y, w, h, phrase} ]) one image at a time: region_descriptions.json is
    parsed as a stream (ijson), so only the current image's regions are ever in memory."""
    path = opt.region_data
    _check_file(path, "--region_data")
    with open(path, "rb") as f:
        try:
            for k, entry in enumerate(ijson.items(f, "item", use_float=True)):
                if not isinstance(entry, dict):
                    raise UserError(f"{path}: item {k} is not an image record (expected a Visual Genome "
                                    "region_descriptions list of {{id, regions}})")
                regions = entry.get("regions") or []
                image_id = entry.get("id", regions[0].get("image_id") if regions else None)
                if image_id is None:
                    continue
                try:
                    regions = [{"x": r["x"], "y": r["y"], "w": r["width"], "h": r["height"], "phrase": r["phrase"]}
                               for r in regions]
                except (KeyError, TypeError) as e:
                    raise UserError(f"{path}: image {image_id}: a region lacks {e} (need x, y, width, height, "
                                    "phrase)") from None
                yield int(image_id), _image_path(opt.image_dir, image_id), regions
        except ijson.JSONError as e:
            raise UserError(f"{path}: not valid JSON ({str(e).splitlines()[0]})") from None


def read_coco(opt):
    """-> list of (image_id, path, regions). COCO keeps boxes and images in separate lists, so the
    instances file is read whole (COCO's largest, train2017, is 450 MB; VG's regions file is streamed)."""
    inst = _read_json(opt.coco_instances, "--coco_instances")
    if not isinstance(inst, dict) or not inst.get("images"):
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


def read_split_file(split_json):
    """image_id -> 0/1/2 from densecap_splits.json ({train, val, test: [ids]})."""
    splits = _read_json(split_json, "--split_json")
    return {int(i): k for k, name in enumerate(SPLITS) for i in splits.get(name, [])}


def split_in_order(k, n):
    """Without a split file: the k-th of n images goes to train, val, test as 80/10/10 in order."""
    n_val = n_test = max(1, n // 10) if n >= 3 else 0
    return 0 if k < n - n_val - n_test else 1 if k < n - n_test else 2


def encode_box(r, scale, W, H):
    """VG box (0-indexed x, y, w, h, original pixels) -> int (xc, yc, w, h), 1-indexed, resized, clamped."""
    x1 = min(max(int(round(r["x"] * scale)) + 1, 1), W)
    y1 = min(max(int(round(r["y"] * scale)) + 1, 1), H)
    w = min(max(int(round(r["w"] * scale)), 1), W - x1 + 1)
    h = min(max(int(round(r["h"] * scale)), 1), H - y1 + 1)
    return [x1 + w // 2, y1 + h // 2, w, h]


def _open_size(path):
    """(w, h) of a decodable image (decoded whole, so a truncated file is caught here, in pass 1, and
    skipped), None if missing, False if unreadable."""
    if not os.path.exists(path):
        return None
    try:
        return open_rgb(path).size
    except UserError:
        return False


def _load_resized(path, size):
    img = open_rgb(path)  # EXIF orientation, 16-bit, alpha, palettes
    w, h = img.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    return np.asarray(img.resize((nw, nh), Image.BILINEAR) if (nw, nh) != (w, h) else img)


def _kept_regions(regions, max_len):
    """[(region, tokens)] of the regions whose phrase has 1..max_len tokens."""
    toks = ((r, tokenize(r["phrase"])) for r in regions)
    return [(r, t) for r, t in toks if 0 < len(t) <= max_len]


class UsableImages:
    """Pass 1's result, a few integers per usable image: its position in the input, id, original size,
    number of kept regions and split; plus how many images the input held."""

    def __init__(self):
        self.pos, self.ids, self.widths, self.heights, self.nboxes, self.splits = (array("q") for _ in range(6))
        self.n_seen = 0

    def add(self, *values):
        for col, v in zip((self.pos, self.ids, self.widths, self.heights, self.nboxes, self.splits), values):
            col.append(v)


def main(opt: PreprocessOptions, err=None):
    err = err or sys.stderr
    entries, source, split_json = input_regions(opt)
    usable, counts = find_usable_images(opt, entries, source, split_json, err)
    token_to_idx = build_vocab(counts, opt.min_token_instances)
    filenames = write_h5(opt, entries, source, usable, token_to_idx, err)
    info = write_json(opt.json_output, token_to_idx, filenames)
    per_split = Counter(SPLITS[s] for s in usable.splits)
    print(f"wrote {opt.h5_output}: {len(usable.pos)} images ({dict(per_split)}), {sum(usable.nboxes)} regions, "
          f"vocabulary {len(token_to_idx)} (words seen < {opt.min_token_instances} times -> {UNK})", file=err)
    return info


def input_regions(opt):
    """-> (entries: a function giving a fresh stream of (image_id, path, regions), at most -max_images;
    the input's name for messages; the split file to use, '' = 80/10/10 in order)."""
    limit = opt.max_images if opt.max_images > 0 else None
    if opt.coco_instances:
        coco = read_coco(opt)
        source, stream = opt.coco_instances, lambda: iter(coco)
    else:
        source, stream = opt.region_data, lambda: read_vg(opt)
    split_json = opt.split_json
    if opt.coco_instances and split_json == PreprocessOptions.split_json:
        split_json = ""  # VG's split file means nothing for COCO ids: split 80/10/10 unless given one
    return (lambda: itertools.islice(stream(), limit)), source, split_json


def find_usable_images(opt, entries, source, split_json, err):
    """Pass 1: which images are usable (in a split, a readable image, a region of 1..15 tokens), their
    sizes and region counts, and the word counts. Per image only a few integers stay in memory."""
    usable, counts = UsableImages(), Counter()
    stream = entries()
    first = next(stream, None)
    if first is None:
        raise UserError(f"{source}: no images in it (expected a Visual Genome region_descriptions list "
                        "[{id, regions}, ...] or a COCO instances json)")
    which = read_split_file(split_json) if split_json else None
    skipped = 0
    with tqdm(desc="reading regions", unit=" images", disable=not err.isatty(), file=err) as bar:
        for k, (image_id, path, regions) in enumerate(itertools.chain([first], stream)):
            usable.n_seen = k + 1
            bar.update()
            if which is not None and image_id not in which:
                continue
            kept = _kept_regions(regions, opt.max_token_length)
            if not kept:
                continue
            size = _open_size(path)
            if not size:
                print(f"warning: skipping {path}: {'missing' if size is None else 'not a readable image'}",
                      file=err)
                skipped += 1
                continue
            counts.update(w for _, t in kept for w in t)
            usable.add(k, image_id, size[0], size[1], len(kept), which[image_id] if which else -1)
    if skipped:
        print(f"warning: {skipped} image(s) skipped (missing or not readable)", file=err)
    if not usable.pos:
        raise UserError(f"no usable images with regions (looked in {opt.coco_images or opt.image_dir})")
    if which is None:
        usable.splits = array("q", (split_in_order(k, usable.n_seen) for k in usable.pos))
    return usable, counts


def build_vocab(counts, min_token_instances):
    """word -> 1-based index; words seen fewer than min_token_instances times share <UNK> (the last)."""
    vocab = sorted(w for w, c in counts.items() if c >= min_token_instances)
    if any(c < min_token_instances for c in counts.values()):
        vocab.append(UNK)
    return {w: i + 1 for i, w in enumerate(vocab)}


def write_h5(opt, entries, source, usable, token_to_idx, err):
    """Pass 2: read the regions again and write images, boxes and labels one chunk of images at a time
    (to a temporary file, renamed when complete) -> the image file names in order."""
    N, M, S, L = len(usable.pos), sum(usable.nboxes), opt.image_size, opt.max_token_length
    os.makedirs(os.path.dirname(os.path.abspath(opt.h5_output)), exist_ok=True)
    tmp = opt.h5_output + ".tmp"
    filenames = []
    with h5py.File(tmp, "w") as f:
        out = {"images": f.create_dataset("images", (N, 3, S, S), dtype=np.uint8, chunks=(1, 3, S, S)),
               "boxes": f.create_dataset("boxes", (M, 4), dtype=np.int32),
               "labels": f.create_dataset("labels", (M, L), dtype=np.int32),
               "lengths": f.create_dataset("lengths", (M,), dtype=np.int32),
               "box_to_img": f.create_dataset("box_to_img", (M,), dtype=np.int32)}
        meta = {k: np.zeros(N, np.int32) for k in ("image_heights", "image_widths", "img_to_first_box",
                                                   "img_to_last_box")}
        chunk, batch, i, b = max(1, 4 * opt.num_workers), [], 0, 0
        with ThreadPoolExecutor(max(1, opt.num_workers)) as pool, \
                tqdm(total=N, desc="images", disable=not err.isatty(), file=err) as bar:
            def flush():
                rgbs = pool.map(lambda item: _load_resized(item[0], S), batch)
                n = _write_chunk(out, meta, batch, rgbs, i, b, usable, token_to_idx, S, L)
                bar.update(len(batch))
                return i + len(batch), b + n, []

            for k, (image_id, path, regions) in enumerate(entries()):
                if i + len(batch) == N:
                    break
                if k != usable.pos[i + len(batch)]:
                    continue
                kept = _kept_regions(regions, opt.max_token_length)
                if image_id != usable.ids[i + len(batch)] or len(kept) != usable.nboxes[i + len(batch)]:
                    raise UserError(f"{source}: changed while being read (image {image_id})")
                batch.append((path, kept))
                filenames.append(os.path.basename(path))
                if len(batch) == chunk:  # one chunk of images (and their regions) in memory at a time
                    i, b, batch = flush()
            if batch:
                i, b, batch = flush()
        if i != N or b != M:
            raise UserError(f"{source}: changed while being read ({i} of {N} images found again)")
        for k, v in meta.items():
            f.create_dataset(k, data=v)
        for k, v in (("original_widths", usable.widths), ("original_heights", usable.heights),
                     ("split", usable.splits)):
            f.create_dataset(k, data=np.asarray(v, dtype=np.int32))
    os.replace(tmp, opt.h5_output)
    return filenames


def _write_chunk(out, meta, batch, rgbs, start, b, usable, token_to_idx, S, L):
    """Images start, start + 1, ... of `batch` (path, kept regions) and their regions from box b on
    -> the number of boxes written."""
    unk = token_to_idx.get(UNK)
    c_boxes, c_labels, c_lengths, c_img = [], [], [], []
    for k, ((path, kept), rgb) in enumerate(zip(batch, rgbs)):
        i = start + k
        h, w = rgb.shape[:2]
        out["images"][i] = np.pad(rgb.transpose(2, 0, 1), ((0, 0), (0, S - h), (0, S - w)))
        scale = S / max(usable.widths[i], usable.heights[i])
        meta["image_heights"][i], meta["image_widths"][i] = h, w
        meta["img_to_first_box"][i] = b + len(c_boxes) + 1
        for r, t in kept:
            ids = [token_to_idx.get(x, unk) for x in t]
            c_boxes.append(encode_box(r, scale, w, h))
            c_labels.append(ids + [0] * (L - len(ids)))
            c_lengths.append(len(ids))
            c_img.append(i + 1)
        meta["img_to_last_box"][i] = b + len(c_boxes)
    n = len(c_boxes)
    out["boxes"][b:b + n], out["labels"][b:b + n] = np.array(c_boxes), np.array(c_labels)
    out["lengths"][b:b + n], out["box_to_img"][b:b + n] = c_lengths, c_img
    return n


def write_json(path, token_to_idx, filenames):
    info = {"token_to_idx": token_to_idx, "idx_to_token": {str(i): w for w, i in token_to_idx.items()},
            "filename_to_idx": {name: i for i, name in enumerate(filenames)},
            "idx_to_filename": {str(i): name for i, name in enumerate(filenames)}}
    with open(path, "w") as f:
        json.dump(info, f)
    return info


if __name__ == "__main__":
    run(main, parse(PreprocessOptions))
