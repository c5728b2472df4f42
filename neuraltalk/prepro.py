"""Preprocess a caption dataset into the label h5 + vocab json training reads (neuraltalk2's prepro.py),
plus the image data: CNN features (`fc`, `att`, as the modern repos' prepro_feats.py) and/or the 256x256
image array of neuraltalk2.

    python neuraltalk/prepro.py -input_json ../shared/data/flickr8k_1k/dataset_flickr8k.json \
        -images_root ../shared/data/flickr8k_1k -output_json talk.json -output_h5 talk.h5
    python neuraltalk/train.py -input_json talk.json -input_h5 talk.h5

Images are read and written in batches (never the whole set in memory); an interrupted run picks up
where it stopped when started again with the same flags.
"""
import os
import sys

from common.cli import UserError, flag, options, parse, run
from neuraltalk.choices import CNNS


@options
class PreproOptions:
    """Preprocess a caption dataset json (Karpathy, neuraltalk2 or COCO format) for train.py."""
    input_json: str = flag("", "input json: Karpathy dataset_*.json, neuraltalk2 [{file_path, captions}] or COCO captions")
    num_val: int = flag(0, "number of images for validation (only when the json has no `split`)", min=0)
    output_json: str = flag("data.json", "output json file")
    output_h5: str = flag("data.h5", "output h5 file")
    max_length: int = flag(16, "max length of a caption, in number of words; longer ones are clipped", min=1)
    images_root: str = flag("", "root location in which images are stored, prepended to file_path")
    word_count_threshold: int = flag(5, "only words that occur more than this number of times are put in the vocab", min=0)
    num_test: int = flag(0, "number of test images (only when the json has no `split`)", min=0)
    image_data: str = flag("feats", "feats: CNN fc+att features (modern repos); images: 256x256 uint8 images "
                                    "(neuraltalk2, needed for -finetune_cnn_after); both; none",
                           choices=["feats", "images", "both", "none"])
    cnn: str = flag("resnet101", "CNN for the features (and for training on images)", choices=list(CNNS))
    cnn_weights: str = flag("", "torchvision state_dict .pth, 'imagenet' (download once), or '' = random init")
    att_size: int = flag(7, "att features are pooled to att_size x att_size regions", min=1)
    image_size: int = flag(256, "images are squashed to this square size (as neuraltalk2)", min=1)
    crop_size: int = flag(224, "centre crop fed to the CNN for features", min=1)
    batch_size: int = flag(16, "images per CNN batch", min=1)
    seed: int = flag(123, "seed for the split shuffle and a randomly initialised CNN")
    gpuid: int = flag(-1, "GPU for the CNN; -1 = CPU")


# the heavy imports come after the options: `-h` is answered before them (common.cli.options)
import h5py
import numpy as np
import torch
from tqdm import tqdm

from common import h5prep
from common.captions import build_vocab, ix_to_word_of, word_to_ix_of
from common.device import get_device
from neuraltalk.cnn import build_cnn, fingerprint, to_tensor_batch
from neuraltalk.data import assign_splits, center_crop, encode_labels, load_rgb, read_dataset_json, split_counts


def main(opt: PreproOptions):
    if not opt.input_json:
        raise UserError("give -input_json (a Karpathy dataset json, a neuraltalk2 list or a COCO captions json)")
    items = assign_splits(read_dataset_json(opt.input_json), opt.num_val, opt.num_test, opt.seed)
    counts = split_counts(items)
    print("images per split: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if not counts.get("train"):
        raise UserError(f"{opt.input_json}: no images in split 'train' (splits: {counts}); lower -num_val/-num_test")
    if opt.crop_size > opt.image_size:
        raise UserError(f"-crop_size {opt.crop_size} is larger than -image_size {opt.image_size}; give a crop that fits")
    if opt.image_data != "none":
        check_images_exist(items, opt)
    for path in (opt.output_json, opt.output_h5):  # a new folder for the outputs is made, as the trainers do
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    vocab, ix_to_word = write_labels(items, opt)
    if opt.image_data != "none":
        write_image_data(items, opt)
    print(f"wrote {opt.output_json} and {opt.output_h5}")


def check_images_exist(items, opt):
    """Missing files are not undecodable ones: none found is an error (a wrong -images_root), some missing a
    warning (they are written as black, as undecodable ones are)."""
    missing = [it["file_path"] for it in items if not os.path.isfile(os.path.join(opt.images_root, it["file_path"]))]
    root = opt.images_root or "."
    if len(missing) == len(items):
        raise UserError(f"none of the {len(items)} images of {opt.input_json} is under -images_root {root!r} (e.g. "
                        f"{os.path.join(root, missing[0])}); give the folder their file paths are relative to")
    if missing:
        print(f"warning: {len(missing)} of {len(items)} images not found under -images_root {root!r} (e.g. "
              f"{os.path.join(root, missing[0])}); they are written as black images", file=sys.stderr)


def write_labels(items, opt):
    """Vocabulary (all images, as neuraltalk2), label arrays into the h5, the json next to it."""
    lengths = np.array([len(t) for it in items for t in it["tokens"]])
    print(f"max caption length {lengths.max()} words; {np.mean(lengths > opt.max_length) * 100:.2f}% longer than "
          f"-max_length {opt.max_length}")
    vocab = build_vocab([t for it in items for t in it["tokens"]], opt.word_count_threshold)
    ix_to_word = ix_to_word_of(vocab)
    print(f"vocabulary: {len(vocab)} words (count > {opt.word_count_threshold}; rarer words become UNK)")
    labels, start, end, length, truncated = encode_labels(items, word_to_ix_of(ix_to_word), opt.max_length)
    if truncated:
        print(f"note: {truncated} caption(s) longer than {opt.max_length} words were truncated")
    source = h5prep.file_digest(opt.input_json)
    settings = dict(source_sha1=source, max_length=opt.max_length, word_count_threshold=opt.word_count_threshold,
                    image_data=opt.image_data, cnn=opt.cnn, cnn_weights=opt.cnn_weights, att_size=opt.att_size,
                    image_size=opt.image_size, crop_size=opt.crop_size, seed=opt.seed, num_val=opt.num_val,
                    num_test=opt.num_test, images_root=os.path.abspath(opt.images_root))
    keep = _same_settings(opt.output_h5, settings)
    with h5py.File(opt.output_h5, "a" if keep else "w") as f:
        for k, v in settings.items():
            f.attrs[k] = v
        for name, arr in (("labels", labels.astype(np.uint32)), ("label_start_ix", start),
                          ("label_end_ix", end), ("label_length", length)):
            if name in f:
                del f[name]
            f.create_dataset(name, data=arr)
    h5prep.write_json(opt.output_json, {
        "ix_to_word": ix_to_word, "images_root": os.path.abspath(opt.images_root),
        "images": [{"split": it["split"], "file_path": it["file_path"], "id": it["id"], "captions": it["captions"]}
                   for it in items]})
    return vocab, ix_to_word


def _same_settings(h5_path, settings):
    """True when an earlier run with these very settings left the file (so its image data can be resumed)."""
    if not os.path.exists(h5_path):
        return False
    try:
        with h5py.File(h5_path, "r") as f:
            return all(f.attrs.get(k) == v for k, v in settings.items())
    except OSError:
        return False


def write_image_data(items, opt):
    """CNN features and/or images, batch by batch; `done` marks finished rows so a rerun resumes."""
    device = get_device(opt.gpuid)
    want_feats = opt.image_data in ("feats", "both")
    want_images = opt.image_data in ("images", "both")
    cnn = build_cnn(opt.cnn, opt.cnn_weights, opt.att_size, opt.seed).to(device)
    N, S = len(items), opt.image_size
    with h5py.File(opt.output_h5, "a") as f:
        f.attrs["cnn_fingerprint"] = fingerprint(cnn)
        f.attrs["fc_dim"], f.attrs["att_dim"] = cnn.fc_dim, cnn.att_dim
        if "done" not in f:
            f.create_dataset("done", data=np.zeros(N, dtype=bool))
            if want_feats:
                f.create_dataset("fc", (N, cnn.fc_dim), np.float32, chunks=(min(N, 64), cnn.fc_dim))
            if want_images:
                f.create_dataset("images", (N, 3, S, S), np.uint8, chunks=(1, 3, S, S))
        done = f["done"][...]
        todo = np.flatnonzero(~done)
        if len(todo) < N:
            print(f"resuming: {N - len(todo)} of {N} images already done")
        bad = missing = 0
        with tqdm(total=N, initial=N - len(todo), unit="img", desc="images", dynamic_ncols=True) as bar:
            for b in range(0, len(todo), opt.batch_size):
                ixs = todo[b:b + opt.batch_size]
                imgs = []
                for k in ixs:
                    path = os.path.join(opt.images_root, items[k]["file_path"])
                    img = None
                    if not os.path.isfile(path):
                        missing += 1  # said once, before the run (check_images_exist)
                    else:
                        img = load_rgb(path, S)  # an undecodable file: one warning line naming it
                        bad += img is None
                    if img is None:
                        img = np.zeros((S, S, 3), np.uint8)
                    imgs.append(img)
                batch = to_tensor_batch(imgs)
                if want_images:
                    _write_rows(f["images"], ixs, batch.numpy())
                if want_feats:
                    with torch.no_grad():
                        fc, att = cnn(center_crop(batch, opt.crop_size).to(device))
                    att = att.cpu().numpy()
                    if "att" not in f:  # created at the first batch: its values decide the dtype
                        f.create_dataset("att", (N, *att.shape[1:]), _att_dtype(att), chunks=(1, *att.shape[1:]))
                    _write_rows(f["fc"], ixs, fc.cpu().numpy())
                    _write_rows(f["att"], ixs, _fit(att, f["att"].dtype, opt.output_h5))
                _write_rows(f["done"], ixs, np.ones(len(ixs), dtype=bool))
                f.flush()
                bar.update(len(ixs))
    if bad or missing:
        print(f"warning: {bad} image(s) could not be decoded and {missing} were missing; written as black",
              file=sys.stderr)


def _att_dtype(att):
    """float16 (half the disk) unless the features come near its range: a randomly initialised ResNet-101
    (the default -cnn without -cnn_weights) gives values ~1e5, which float16 would store as inf."""
    if np.abs(att).max() * 8 < np.finfo(np.float16).max:
        return np.float16
    print(f"note: att features reach {np.abs(att).max():.3g}, beyond float16's range; storing them as float32",
          file=sys.stderr)
    return np.float32


def _fit(att, dtype, h5_path):
    if dtype == np.float16 and np.abs(att).max() >= np.finfo(np.float16).max:
        raise UserError(f"{h5_path}: att features reach {np.abs(att).max():.3g}, beyond the float16 the first images "
                        f"chose; delete the file and run again with pretrained -cnn_weights or a smaller -cnn")
    return att.astype(dtype)


def _write_rows(dataset, ixs, values):
    if ixs[-1] - ixs[0] + 1 == len(ixs):  # contiguous: one slice write
        dataset[ixs[0]:ixs[-1] + 1] = values
    else:
        for k, v in zip(ixs, values):
            dataset[k] = v


if __name__ == "__main__":
    run(main, parse(PreproOptions))
