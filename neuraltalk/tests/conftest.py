import os
from pathlib import Path

import pytest
import torch

from common import datasets

# tiny models: one thread is faster than two, and keeps tests steady on a loaded 2-core machine
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

DATA = datasets.data_root()
NEURALTALK = Path(__file__).resolve().parents[1]

# the small CNN settings every test uses (ResNet-18 on 64x64 squashes, 56x56 crops)
CNN_FLAGS = ["-cnn", "resnet18", "-image_size", "64", "-crop_size", "56", "-att_size", "2", "-batch_size", "32"]
TINY_MODEL = ["-rnn_size", "48", "-input_encoding_size", "48", "-att_hid_size", "32", "-gpuid", "-1"]


@pytest.fixture(scope="session")
def shapes(tmp_path_factory):
    from common.testing.shapes import write_dataset

    out = tmp_path_factory.mktemp("shapes")
    paths = write_dataset(out, 80, seed=0, size=64, val_frac=0.1, test_frac=0.1)
    return out, paths


@pytest.fixture(scope="session")
def prepped(shapes, tmp_path_factory):
    """prepro.py on the shapes world: labels + fc/att features + images, as the demo does (but smaller)."""
    from common.cli import parse
    from neuraltalk import prepro

    root, paths = shapes
    out = tmp_path_factory.mktemp("prepped")
    opt = parse(prepro.PreproOptions, ["-input_json", paths["karpathy_json"], "-images_root", str(root),
                                       "-output_json", str(out / "talk.json"), "-output_h5", str(out / "talk.h5"),
                                       "-word_count_threshold", "0", "-image_data", "both", *CNN_FLAGS])
    prepro.main(opt)
    return out / "talk.json", out / "talk.h5"


@pytest.fixture(scope="session")
def trained_captioner(prepped, tmp_path_factory):
    """A small captioner trained 120 iterations on the shapes world (the webcam and video tests)."""
    from common.cli import parse
    from neuraltalk import train

    cv = tmp_path_factory.mktemp("cv")
    json_path, h5_path = prepped
    train.main(parse(train.TrainOptions, [
        "-input_json", str(json_path), "-input_h5", str(h5_path), "-checkpoint_path", str(cv), *TINY_MODEL,
        "-batch_size", "16", "-learning_rate", "3e-3", "-drop_prob_lm", "0.1", "-max_iters", "120",
        "-save_checkpoint_every", "120", "-val_images_use", "0", "-id", "w"]))
    return cv / "model_idw.pt"
