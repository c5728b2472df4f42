"""arithmetic.py's grid, a discriminator given as net=, and -h documenting every option of every script."""
import dataclasses

import pytest
import torch
from PIL import Image

from common import checkpoint
from common.cli import UserError
from dcgan import arithmetic
from dcgan.checkpoints import load_generator
from dcgan.options import ALL, ArithmeticOptions, parse_env
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


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_help_documents_every_option(cls, capsys):
    with pytest.raises(SystemExit):
        parse_env(cls, ["-h"], environ={})
    out = " ".join(capsys.readouterr().out.split())
    for f in dataclasses.fields(cls):
        assert f.name in out
        assert " ".join(f.metadata["help"].split())[:40] in out, f.name
