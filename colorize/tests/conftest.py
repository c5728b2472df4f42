import os
from pathlib import Path

import pytest
import torch

from common import datasets
from common.testing import t7_writer

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

COLORIZE = Path(__file__).resolve().parents[1]
REPO = COLORIZE.parent
BSDS = datasets.path("bsds500")
NOT_A_COLORNET = REPO / "common" / "tests" / "fixtures" / "t7" / "custom_classes.t7"  # a real Torch7 file
LUA = COLORIZE / "tests" / "fixtures" / "lua"  # written by Torch7 and colorize.lua (tests/lua/make_fixture.lua)


@pytest.fixture(scope="session")
def tiny_t7(tmp_path_factory):
    """A small colornet.t7-shaped file (the published graph at 1/16 width, 32x32 global input) + its spec."""
    from colorize.tests.t7_colornet import make_colornet
    table, spec = make_colornet(width=16, global_size=32, seed=3)
    path = tmp_path_factory.mktemp("t7") / "colornet.t7"
    t7_writer.save(path, table, tensor_type="torch.FloatTensor")
    return path, spec


@pytest.fixture(scope="session")
def tiny_pt(tiny_t7, tmp_path_factory):
    from colorize import convert
    from common.cli import parse
    out = tmp_path_factory.mktemp("pt") / "colornet.pt"
    convert.main(parse(convert.ConvertOptions, [str(tiny_t7[0]), str(out)]))
    return out
