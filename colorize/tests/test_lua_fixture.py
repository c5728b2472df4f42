"""colornet.t7 files written by Torch7 itself (tests/lua/make_fixture.lua) against colorize.lua's own outputs.

The fixtures: a colornet-topology gModule (1/32 width, X1 224x224 as colorize.lua makes it) saved after
`clearState` and saved after a forward without it; two inputs (a one-channel and an RGB png); what
colorize.lua, run unmodified, wrote for each (out_*.png) and the network's output as its steps compute it
(ab_*.t7). Nothing here runs Lua.
"""
import lzma
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from colorize import lua_checkpoint, pipeline
from colorize.tests.conftest import LUA
from colorize.tests.test_colorize import cli
from common import t7

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{'cleared': path, 'forward': path}: the forward-state file is committed xz-compressed (4.6 MB raw)."""
    folder = tmp_path_factory.mktemp("lua_models")
    with lzma.open(LUA / "colornet_forward.t7.xz") as src, open(folder / "colornet_forward.t7", "wb") as dst:
        shutil.copyfileobj(src, dst)
    return {"cleared": LUA / "colornet_cleared.t7", "forward": folder / "colornet_forward.t7"}


@pytest.mark.parametrize("which", ["cleared", "forward"])
@pytest.mark.parametrize("name", ["gray", "rgb"])
def test_colorize_py_writes_what_colorize_lua_wrote(models, tmp_path, which, name):
    out = tmp_path / "out.png"
    # the real command, defaults but the precision: fp32 is the reference path (-precision auto is bf16 on a
    # native-bf16 CPU, checked against fp32 in test_colorize)
    assert cli(LUA / f"{name}.png", out, "-model", models[which], "-precision", "fp32") == 0
    ours = np.asarray(Image.open(out)).astype(int)
    lua = np.asarray(Image.open(LUA / f"out_{name}_{which}.png")).astype(int)
    assert ours.shape == lua.shape == ((45, 61, 3) if name == "gray" else (42, 70, 3))
    assert lua.std((0, 1)).min() > 20 and np.abs(lua[..., 0] - lua[..., 2]).mean() > 5   # colour, not gray
    diff = np.abs(ours - lua)
    assert diff.max() <= 1 and diff.mean() < 0.01, (diff.max(), diff.mean())   # measured: 0 and 0 (identical)


@pytest.mark.parametrize("which", ["cleared", "forward"])
@pytest.mark.parametrize("name", ["gray", "rgb"])
def test_network_input_and_output_equal_the_lua_tensors(models, which, name):
    net, mean = lua_checkpoint.load_t7(models[which])
    assert mean == pytest.approx(0.4512) and net.config.width == 32 and net.config.global_size == 224
    saved = t7.load(LUA / f"ab_{name}.t7")
    y, _, _ = pipeline.read_image(LUA / f"{name}.png")
    x2 = pipeline.prepare(y, mean)
    np.testing.assert_allclose(x2, np.asarray(t7.get(saved, "X2"))[0, 0], rtol=0, atol=1e-6)
    ab = pipeline.predict_ab(net, x2, CPU)
    lua_ab = np.asarray(t7.get(saved, "ab"))[0]
    assert ab.shape == lua_ab.shape and lua_ab.std() > 0.1
    np.testing.assert_allclose(ab, lua_ab, rtol=0, atol=1e-5)


def test_the_two_files_are_the_two_states_the_issue_names(models):
    """Cleared: no node keeps its input; not cleared: nodes hold data.input lists of tensors."""
    def inputs(path):
        gm = t7.get(t7.load(path), "model")
        nodes = t7.get(gm, "forwardnodes")
        tile = t7.get(t7.get(nodes[8], "data"), "module")     # colorize.lua's forwardnodes[9]
        kinds = [t7.typename(m) for m in t7.get(tile, "modules")]
        assert kinds[2:4] == ["nn.Replicate", "nn.Replicate"]
        return [t7.get(t7.get(n, "data"), "input") for n in nodes]
    assert not any(isinstance(i, list) and i for i in inputs(models["cleared"]))
    held = [i for i in inputs(models["forward"]) if isinstance(i, list) and i]
    first = lambda x: first(x[0]) if isinstance(x, list) else x   # noqa: E731 - the graph input holds {X1, X2}
    assert len(held) >= 10 and all(isinstance(first(i), np.ndarray) for i in held)
