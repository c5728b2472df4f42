"""Shared fixtures: the real data folder and one tiny model trained on the built-in corpus."""

import pytest
import torch

from chatbot.train import TrainOpts
from chatbot.train import main as train_main
from common import datasets
from common.cli import parse

torch.set_num_threads(1)  # tiny models: one thread is faster than two fighting over 2 cores

DATA = datasets.data_root()
DGK = datasets.path("dgk_lost_conv")


def train(data_dir, *args):
    """Run train.py's main in-process with small settings; returns its final state."""
    argv = ["--dataDir", str(data_dir), "--hiddenSize", "32", "--batchSize", "32", "--printEvery", "1000",
            "--threads", "1", *map(str, args)]
    return train_main(parse(TrainOpts, argv))


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """data dir of a model trained for 6 epochs on the built-in chatterbot Chinese corpus (by character)."""
    d = tmp_path_factory.mktemp("builtin")
    state = train(d, "--tokens", "char", "--maxEpoch", "6", "--learningRate", "0.003", "--valSetSize", "0.1",
                  "--patience", "0")
    return d, state
