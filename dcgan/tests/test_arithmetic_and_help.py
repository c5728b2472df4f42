"""arithmetic.py's grid, a discriminator given as net=, and -h documenting every option of every script."""
import re

import pytest
import torch
from PIL import Image

from common import checkpoint
from common.cli import UserError
from dcgan import arithmetic
from dcgan.checkpoints import load_generator
from dcgan.options import ALL, ArithmeticOptions, GenerateOptions, TrainOptions, parse_env
from dcgan.sampling import generate


def test_arithmetic_batch_then_grid(net, tmp_path):
    name = str(tmp_path / "ar")
    arithmetic.main(ArithmeticOptions(net=net, gpu=0, batchSize=30, name=name))
    assert Image.open(f"{name}_batch.png").size == (8 * 32, 4 * 32)
    arithmetic.main(ArithmeticOptions(net=net, gpu=0, batchSize=30, name=name, A="1,2,3", B="4,5,6", C="7,8,30"))
    assert Image.open(f"{name}.png").size == (7 * 32, 4 * 32)
    # the last cell is the generator applied to mean(A) - mean(B) + mean(C) of the seed-1 batch
    torch.manual_seed(1)
    noise = torch.randn(30, 10, 1, 1)
    G, _ = load_generator(net)
    z = noise[[0, 1, 2]].mean(0) - noise[[3, 4, 5]].mean(0) + noise[[6, 7, 29]].mean(0)
    grid = arithmetic.arithmetic_grid(G, noise, [0, 1, 2], [3, 4, 5], [6, 7, 29], torch.device("cpu"))
    assert torch.allclose(grid[27], (generate(G, z[None], torch.device("cpu"))[0] + 1) / 2, atol=1e-6)
    assert grid[1].abs().sum() == 0 and grid[22].max() > 0  # empty cell; the "-" sign
    with pytest.raises(UserError, match="give three sample numbers between 1 and 30"):
        arithmetic.main(ArithmeticOptions(net=net, gpu=0, batchSize=30, name=name, A="1,2", B="4,5,6", C="7,8,9"))


def test_a_discriminator_checkpoint_is_not_a_generator(tmp_path):
    checkpoint.save(tmp_path / "x_1_net_D.pt", "dcgan_D", {"model": {}})
    with pytest.raises(UserError, match="this is a dcgan_D checkpoint, expected a dcgan_G one"):
        load_generator(str(tmp_path / "x_1_net_D.pt"))


# the options of the Lua originals with their defaults, as dcgan.torch declares them (main.lua's and
# generate.lua's `opt` tables, transcribed in ../shared/reference/dcgan.md section 1); math.huge prints as inf
MAIN_LUA = {"dataset": "lsun", "batchSize": "64", "loadSize": "96", "fineSize": "64", "nz": "100", "ngf": "64",
            "ndf": "64", "nThreads": "4", "niter": "25", "lr": "0.0002", "beta1": "0.5", "ntrain": "inf",
            "display": "1", "display_id": "10", "gpu": "1", "name": "experiment1", "noise": "normal",
            "epoch_save_modulo": "1"}
GENERATE_LUA = {"batchSize": "32", "noisetype": "normal", "net": "", "imsize": "1", "noisemode": "random",
                "name": "generation1", "gpu": "1", "display": "1", "nz": "100"}


def help_entries(cls, capsys):
    """-h as printed -> {flag name: (its help text, its default as printed)}."""
    with pytest.raises(SystemExit):
        parse_env(cls, ["-h"], environ={})
    out = capsys.readouterr().out
    head, options = out.split("\noptions:\n")
    found = re.findall(r"-(\w+)(?: \S+)?, --\1(?: \S+)? (.*?)\(default: ([^)]*)\)", " ".join(options.split()))
    entries = {name: (text.strip(), default.strip("'")) for name, text, default in found}
    if "positional arguments:" in head:  # "  path1    its help" lines, the help wrapped onto indented lines
        block = head.split("positional arguments:\n")[1]
        entries.update({name: (" ".join(text.split()), None)
                        for name, text in re.findall(r"^  (\w+)\s+(.*(?:\n {6,}\S.*)*)", block, re.M)})
    usage = re.findall(r"\[-?(\w+)[ \]]", head.split("\n\n")[0])
    return entries, usage


@pytest.mark.parametrize("cls, lua", [(TrainOptions, MAIN_LUA), (GenerateOptions, GENERATE_LUA)],
                         ids=["main.lua", "generate.lua"])
def test_help_lists_the_lua_options_with_their_defaults(cls, lua, capsys):
    entries, _ = help_entries(cls, capsys)
    assert {name: entries[name][1] for name in lua if name in entries} == lua
    for name in lua:
        assert len(entries[name][0].split()) >= 3, f"-{name} has no real help text"


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_help_describes_every_flag_of_the_usage_line(cls, capsys):
    entries, usage = help_entries(cls, capsys)
    flags = [u for u in usage if u != "h"]
    assert flags and set(flags) <= set(entries), set(flags) - set(entries)
    for name in flags:
        assert len(entries[name][0].split()) >= 3, f"-{name} has no real help text"
