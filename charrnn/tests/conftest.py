import os
import shutil
from pathlib import Path

import pytest
import torch

from common import datasets

# tiny models: one thread is faster than two, and keeps tests steady on a loaded 2-core machine
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

DATA = datasets.data_root()
T7_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "t7"  # written by the Lua char-rnn (README there)
CHARRNN = Path(__file__).resolve().parents[1]


@pytest.fixture
def shakespeare_dir(tmp_path):
    """A data dir holding the first 12,000 characters of tinyshakespeare (small enough to train in seconds)."""
    d = tmp_path / "shakespeare"
    d.mkdir()
    text = (datasets.require("tinyshakespeare") / "input.txt").read_text(encoding="utf-8")[:12000]
    (d / "input.txt").write_text(text, encoding="utf-8")
    return d


@pytest.fixture
def wangfeng_dir(tmp_path):
    d = tmp_path / "wangfeng"
    d.mkdir()
    shutil.copy(datasets.require("wangfeng") / "input.txt", d / "input.txt")
    return d
