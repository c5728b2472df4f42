"""generate.py: noise modes, imsize, the toDisplayTensor layout, bad input, and the env-var command line."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common.cli import UserError
from common.testing import t7_writer
from dcgan import generate as gen
from dcgan import sampling
from dcgan.images import display_tensor
from dcgan.options import GenerateOptions

REPO = Path(__file__).parents[2]


def test_line_interpolates_between_two_endpoints_across_the_batch():
    torch.manual_seed(0)
    z = sampling.draw_noise(GenerateOptions(batchSize=5, noisemode="line"), 10)
    assert z.shape == (5, 10, 1, 1)
    mid = (z[0] + z[4]) / 2
    assert torch.allclose(z[2], mid, atol=1e-6)  # evenly spaced on one line
    assert torch.allclose(z[1] - z[0], z[4] - z[3], atol=1e-6)
    assert z.abs().max() <= 1


def test_linefull_overwrites_the_diagonal_and_linefull1d_the_row():
    torch.manual_seed(0)
    z = sampling.draw_noise(GenerateOptions(batchSize=1, imsize=4, noisemode="linefull"), 10)
    assert z.shape == (1, 10, 4, 4)
    d = torch.stack([z[0, :, i, i] for i in range(4)])
    assert torch.allclose(d[1] - d[0], d[3] - d[2], atol=1e-6)
    z1 = sampling.draw_noise(GenerateOptions(batchSize=1, imsize=4, noisemode="linefull1d"), 10)
    assert z1.shape == (1, 10, 1, 4)
    with pytest.raises(UserError, match="needs batchSize=1"):
        sampling.draw_noise(GenerateOptions(batchSize=2, imsize=4, noisemode="linefull"), 10)


def test_display_tensor_is_image_toDisplayTensor():
    x = torch.arange(8, dtype=torch.float32).view(8, 1, 1, 1).expand(8, 3, 2, 2) / 10 + 0.2
    g = display_tensor(x)  # 6 per row, no padding, empty cells = the max, then min-max to [0, 1]
    assert g.shape == (3, 4, 12)
    assert g.min() == 0 and g.max() == 1
    assert torch.allclose(g[0, 0, ::2], torch.arange(6) / 7)
    assert torch.allclose(g[0, 2, 4:], torch.ones(8))  # last row: images 7, 8 then four empty (max) cells
    each = display_tensor(x + torch.rand(8, 3, 2, 2), nrow=7, scaleeach=True)
    assert each.shape == (3, 4, 14) and each[:, :2, :2].min() == 0 and each[:, :2, :2].max() == 1


def test_generate_writes_grid_and_imsize_grows_the_image(net, tmp_path):
    images = gen.main(GenerateOptions(net=net, batchSize=7, imsize=2, gpu=0, name=str(tmp_path / "big"), seed=3))
    assert images.shape == (7, 3, 40, 40) and 0 <= images.min() and images.max() <= 1
    assert Image.open(tmp_path / "big.png").size == (6 * 40, 2 * 40)
    again = gen.main(GenerateOptions(net=net, batchSize=7, imsize=2, gpu=0, name=str(tmp_path / "b2"), seed=3))
    assert torch.equal(images, again)  # a seed makes it repeatable


def test_bad_input(net, tmp_path):
    with pytest.raises(UserError, match="no such file"):
        gen.main(GenerateOptions(net=str(tmp_path / "nope.t7"), gpu=0))
    with pytest.raises(UserError, match="no generator given"):
        gen.main(GenerateOptions(gpu=0))
    with pytest.raises(UserError, match=r"need about .* GiB.*lower imsize or batchSize"):
        gen.main(GenerateOptions(net=net, imsize=100000, batchSize=64, gpu=0, name=str(tmp_path / "x")))
    assert not (tmp_path / "x.png").exists()
    with pytest.raises(UserError, match="needs batchSize=1"):
        gen.main(GenerateOptions(net=net, noisemode="linefull", batchSize=4, imsize=3, gpu=0))
    np.save(tmp_path / "z.npy", np.zeros((2, 7, 1, 1), np.float32))
    with pytest.raises(UserError, match=r"expected B x 10 x h x w"):
        gen.main(GenerateOptions(net=net, noise_file=str(tmp_path / "z.npy"), gpu=0))


def test_noise_file_formats_agree(net, tmp_path):
    z = np.random.default_rng(0).normal(size=(3, 10, 1, 1)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    torch.save(torch.from_numpy(z), tmp_path / "z.pt")
    t7_writer.save(str(tmp_path / "z.t7"), z, tensor_type="torch.FloatTensor")
    outs = [gen.main(GenerateOptions(net=net, noise_file=str(tmp_path / f"z.{ext}"), gpu=0,
                                     name=str(tmp_path / ext))) for ext in ("npy", "pt", "t7")]
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


def test_the_original_command_line_works(net, tmp_path):
    """`gpu=0 batchSize=4 net=... python generate.py`, run from inside dcgan/ as generate.lua was."""
    env = dict(os.environ, gpu="0", batchSize="4", net=net, name=str(tmp_path / "env"), noisemode="line",
               OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "generate.py"], cwd=REPO / "dcgan", env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "env.png").size == (4 * 32, 32)


def test_unknown_environment_option_exits_with_one_line(net, capsys):
    from dcgan.options import cli
    with pytest.raises(SystemExit) as e:
        cli(gen.main, GenerateOptions, [], {"net": net, "gpu": "0", "noisemod": "line", "PATH": "/bin"})
    err = capsys.readouterr().err
    assert e.value.code == 1 and err.count("\n") == 1 and "did you mean noisemode?" in err
