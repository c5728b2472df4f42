"""Shared fixtures: a small random model checkpoint and a few shapes images (written once per session)."""
import numpy as np
import pytest
import torch
from PIL import Image

from common import datasets
from common.testing.shapes import make_scene
from densecap.checkpoints import save_model
from densecap.model import DenseCapModel, ModelConfig


def vg_sample():
    return datasets.require("visual_genome_sample")


def coco_mini():
    return datasets.require("coco_mini_train")


def splits_json():
    return datasets.require("densecap_demo") / "densecap_splits.json"


VOCAB = {"1": "a", "2": "small", "3": "large", "4": "red", "5": "circle", "6": "square"}


def tiny_config(**kw):
    base = dict(vocab_size=len(VOCAB), cnn="tiny", tiny_channels=32, fc_dim=64, rpn_num_filters=32,
                input_encoding_size=32, rnn_size=32, anchor_scale=0.5, seq_length=15)
    base.update(kw)
    return ModelConfig(**base)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_model(path, DenseCapModel(tiny_config()), VOCAB)
    return path


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    for i in range(3):
        make_scene(rng, size=128)[0].save(d / f"scene{i}.png")
    return d


def _two_scene_data(d):
    """Two 64-px scenes of one shape each, with different phrases in every word but the article: the VG
    files preprocess.py reads. -> [(scene RGB array, phrase)]."""
    import json

    (d / "images").mkdir(parents=True)
    rng, scenes = np.random.default_rng(0), []
    while len(scenes) < 2:
        img, _, regions = make_scene(rng, size=64, max_shapes=1)
        words = set(regions[0]["phrase"].split()[1:])
        if all(not words & set(p.split()[1:]) for _, p, _ in scenes):
            scenes.append((np.asarray(img), regions[0]["phrase"], regions[0]))
    vg = []
    for i, (rgb, phrase, r) in enumerate(scenes, 1):
        Image.fromarray(rgb).save(d / "images" / f"{i}.png")
        vg.append({"id": i, "regions": [{"region_id": i, "image_id": i, "x": r["x"], "y": r["y"], "width": r["w"],
                                         "height": r["h"], "phrase": phrase}]})
    (d / "regions.json").write_text(json.dumps(vg))
    (d / "splits.json").write_text(json.dumps({"train": [1, 2], "val": [], "test": []}))
    return [(rgb, phrase) for rgb, phrase, _ in scenes]


@pytest.fixture(scope="session")
def two_scene_model(tmp_path_factory):
    """A tiny model trained (500 iterations, ~8 CPU s) on two one-shape scenes until it tells them apart: its
    top box and caption on each scene are that scene's shape and phrase. -> (checkpoint, [(rgb, phrase)] x 2)."""
    from common.cli import parse
    from densecap import preprocess, train

    d = tmp_path_factory.mktemp("two_scenes")
    scenes = _two_scene_data(d)
    preprocess.main(parse(preprocess.PreprocessOptions, [
        "--region_data", str(d / "regions.json"), "--image_dir", str(d / "images"), "--split_json",
        str(d / "splits.json"), "--h5_output", str(d / "s.h5"), "--json_output", str(d / "s.json"),
        "--image_size", "64", "--min_token_instances", "1"]))
    train.main(parse(train.TrainOptions, [
        "-data_h5", str(d / "s.h5"), "-data_json", str(d / "s.json"), "-checkpoint_path", str(d / "ck.pt"),
        "-cnn", "tiny", "-tiny_channels", "16", "-fc_dim", "32", "-rpn_num_filters", "16", "-rnn_size", "32",
        "-input_encoding_size", "32", "-anchor_scale", "0.5", "-sampler_batch_size", "32", "-learning_rate", "2e-3",
        "-finetune_cnn_after", "0", "-drop_prob", "0", "-region_code_norm", "1", "-mid_box_reg_weight", "1",
        "-mid_objectness_weight", "1", "-end_box_reg_weight", "1", "-end_objectness_weight", "1", "-gpu", "-1",
        "-max_iters", "500", "-save_checkpoint_every", "500", "-val_metric", "detmap", "-val_images_use", "0",
        "-losses_log_every", "500"]))
    return d / "ck_last.pt", scenes
