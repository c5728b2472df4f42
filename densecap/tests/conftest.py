"""Shared fixtures: a small random model checkpoint and a few shapes images (written once per session)."""
import numpy as np
import pytest
import torch

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
