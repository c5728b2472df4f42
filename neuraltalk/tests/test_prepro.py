"""prepro.py: the three input formats, neuraltalk2's label layout, splits, features, resume, bad input."""
import json

import h5py
import numpy as np
import pytest
import torch

from common import datasets
from common.captions import tokenize
from common.cli import UserError, parse
from neuraltalk import prepro
from neuraltalk.cnn import build_cnn
from neuraltalk.data import center_crop, load_rgb
from neuraltalk.tests.conftest import CNN_FLAGS


def run_prepro(*args):
    return prepro.main(parse(prepro.PreproOptions, list(args)))


def test_labels_match_the_karpathy_json(prepped, shapes):
    json_path, h5_path = prepped
    src = json.load(open(shapes[1]["karpathy_json"]))["images"]
    info = json.load(open(json_path))
    w2i = {w: int(i) for i, w in info["ix_to_word"].items()}
    assert "UNK" not in w2i  # threshold 0 keeps every word
    with h5py.File(h5_path, "r") as f:
        labels, start, end = f["labels"][...], f["label_start_ix"][...], f["label_end_ix"][...]
        lengths = f["label_length"][...]
        assert labels.dtype == np.uint32 and labels.shape == (5 * len(src), 16)
        assert f["fc"].shape == (80, 512) and f["att"].shape == (80, 4, 512) and f["images"].shape == (80, 3, 64, 64)
    for k, im in enumerate(src):
        assert info["images"][k]["split"] == im["split"] and info["images"][k]["captions"] == [s["raw"] for s in im["sentences"]]
        rows = labels[start[k] - 1:end[k]]  # 1-based inclusive ranges, as neuraltalk2
        assert len(rows) == 5
        for row, sent, n in zip(rows, im["sentences"], lengths[start[k] - 1:end[k]]):
            assert [info["ix_to_word"][str(i)] for i in row if i] == sent["tokens"] and n == len(sent["tokens"])


def test_features_are_the_cnn_of_the_cropped_image(prepped, shapes):
    json_path, h5_path = prepped
    info = json.load(open(json_path))
    cnn = build_cnn("resnet18", "", att_size=2, seed=123)
    with h5py.File(h5_path, "r") as f:
        for k in (0, 41):
            img = load_rgb(f"{info['images_root']}/{info['images'][k]['file_path']}", 64)
            x = center_crop(torch.from_numpy(img.copy()).permute(2, 0, 1)[None], 56)
            with torch.no_grad():
                fc, att = cnn(x)
            assert np.allclose(f["fc"][k], fc[0].numpy(), rtol=1e-4, atol=1e-5)
            assert np.allclose(f["att"][k], att[0].numpy(), rtol=2e-3, atol=2e-3)  # stored as float16
            assert np.array_equal(f["images"][k], np.asarray(img).transpose(2, 0, 1))
            # fc is the mean of the whole layer4 map, att its 2x2 average pooling: their means agree
            assert np.allclose(att[0].mean(0).numpy(), fc[0].numpy(), atol=1e-4)


def test_neuraltalk2_list_with_num_val_truncation_and_unk(tmp_path, shapes, capsys):
    root, paths = shapes
    src = json.load(open(paths["karpathy_json"]))["images"]
    items = [{"file_path": f"{im['filepath']}/{im['filename']}", "captions": [s["raw"] for s in im["sentences"]]}
             for im in src[:30]]
    items[0]["captions"][0] = "A very, very long caption that goes on and on and on well past the limit!"
    (tmp_path / "in.json").write_text(json.dumps(items))
    run_prepro("-input_json", str(tmp_path / "in.json"), "-images_root", str(root), "-num_val", "5", "-num_test", "3",
               "-output_json", str(tmp_path / "o.json"), "-output_h5", str(tmp_path / "o.h5"), "-max_length", "12",
               "-word_count_threshold", "1", "-image_data", "none")
    out = capsys.readouterr().out
    too_long = sum(len(tokenize(c)) > 12 for it in items for c in it["captions"])  # the shapes' own long ones too
    assert too_long >= 1 and f"{too_long} caption(s) longer than 12 words were truncated" in out
    info = json.load(open(tmp_path / "o.json"))
    splits = [im["split"] for im in info["images"]]
    assert (splits.count("val"), splits.count("test"), splits.count("train")) == (5, 3, 22)
    # neuraltalk2's rule: shuffle with seed 123, first num_val are val
    order = np.random.RandomState(123).permutation(30)
    assert all(info["images"][k]["split"] == "val" for k in order[:5])
    vocab = list(info["ix_to_word"].values())
    assert vocab[-1] == "UNK" and "limit" not in vocab  # seen once: not > 1
    with h5py.File(tmp_path / "o.h5", "r") as f:
        row = f["labels"][0]
        expect = [w if w in vocab else "UNK" for w in tokenize(items[0]["captions"][0])[:12]]
        assert [info["ix_to_word"][str(i)] for i in row] == expect and "UNK" in expect
        assert "fc" not in f


def test_coco_captions_json(tmp_path):
    coco = datasets.require("coco_mini_train")
    run_prepro("-input_json", str(coco / "annotations" / "captions_train2017.json"), "-num_val", "10",
               "-output_json", str(tmp_path / "c.json"), "-output_h5", str(tmp_path / "c.h5"), "-image_data", "none")
    info = json.load(open(tmp_path / "c.json"))
    assert len(info["images"]) == 80 and all(len(im["captions"]) == 5 for im in info["images"])
    assert sum(im["split"] == "val" for im in info["images"]) == 10


def test_resume_finishes_an_interrupted_run(tmp_path, shapes, capsys):
    root, paths = shapes
    args = ["-input_json", paths["karpathy_json"], "-images_root", str(root), "-output_json", str(tmp_path / "t.json"),
            "-output_h5", str(tmp_path / "t.h5"), *CNN_FLAGS, "-batch_size", "16"]
    run_prepro(*args)
    with h5py.File(tmp_path / "t.h5", "r") as f:
        full = f["fc"][...]
    with h5py.File(tmp_path / "t.h5", "a") as f:  # as if killed after the first 30 images
        f["done"][30:] = False
        f["fc"][30:] = 0
    run_prepro(*args)
    assert "resuming: 30 of 80 images already done" in capsys.readouterr().out
    with h5py.File(tmp_path / "t.h5", "r") as f:
        assert np.allclose(f["fc"][...], full) and f["done"][...].all()


def test_bad_inputs_are_one_line(tmp_path, shapes):
    root, paths = shapes
    (tmp_path / "v.json").write_text(json.dumps([{"file_path": "x.png", "captions": ["a b"]}] * 3))
    with pytest.raises(UserError, match="no images in split 'train'"):
        run_prepro("-input_json", str(tmp_path / "v.json"), "-num_val", "3", "-output_json", str(tmp_path / "o.json"),
                   "-output_h5", str(tmp_path / "o.h5"))
    with pytest.raises(UserError, match="no such file"):
        run_prepro("-input_json", str(tmp_path / "missing.json"))
    (tmp_path / "odd.json").write_text('{"hello": 1}')
    with pytest.raises(UserError, match="not a Karpathy dataset json"):
        run_prepro("-input_json", str(tmp_path / "odd.json"))


def test_karpathy_restval_is_train(tmp_path):
    from neuraltalk.data import read_dataset_json

    sent = [{"tokens": ["a", "dog"], "raw": "A dog."}]
    images = [{"filepath": "val2014", "filename": f"{k}.jpg", "cocoid": k, "split": s, "sentences": sent}
              for k, s in enumerate(["train", "restval", "val", "test"])]
    (tmp_path / "d.json").write_text(json.dumps({"images": images}))
    items = read_dataset_json(str(tmp_path / "d.json"))
    assert [it["split"] for it in items] == ["train", "train", "val", "test"]
    assert items[1]["file_path"] == "val2014/1.jpg" and items[1]["id"] == 1 and items[1]["captions"] == ["A dog."]
