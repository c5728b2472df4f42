"""The .t7 importer: generators written by the original main.lua (today's and December 2015's), through
generate.py's command line, and look-alike files of every layout checked against numpy."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common import t7
from common.cli import UserError
from common.testing import t7_writer
from dcgan import generate as gen
from dcgan.checkpoints import load_generator
from dcgan.lua_checkpoint import load_t7
from dcgan.model import batch_statistics
from dcgan.options import ConvertOptions, GenerateOptions, cli
from dcgan.tests.t7_generators import make_generator, reference_forward

FIX = Path(__file__).parent / "fixtures" / "today"      # main.lua of today (see fixtures/README.md)
DEC = Path(__file__).parent / "fixtures" / "dec2015"    # main.lua + nn of 2015-12-10 (tests/lua/make_fixture.sh)


def _load(name, where=FIX):
    return torch.from_numpy(np.array(t7.load(str(where / name))))


def test_real_main_lua_generator_reproduces_both_batchnorm_modes():
    G, cfg = load_t7(str(FIX / "netG_init.t7"))
    assert (cfg.nz, cfg.ngf, cfg.nc, cfg.fineSize, cfg.bias) == (100, 16, 3, 64, False)
    z = _load("noise.t7")
    with torch.no_grad():
        out_eval = G(z)
        with batch_statistics(G):
            out_train = G(z)
    assert torch.allclose(out_eval, _load("output_eval.t7"), atol=1e-5, rtol=0)
    assert torch.allclose(out_train, _load("output_train.t7"), atol=1e-5, rtol=0)
    # batch statistics must not have touched the running ones
    assert torch.equal(G.main[1].running_mean, torch.zeros(128))


def test_generate_renders_given_noise_as_the_original(tmp_path):
    opt = GenerateOptions(net=str(FIX / "netG_init.t7"), noise_file=str(FIX / "noise.t7"), batchnorm="train",
                          gpu=0, name=str(tmp_path / "g"))
    images = gen.main(opt)
    assert torch.allclose(images, (_load("output_train.t7") + 1) / 2, atol=1e-5)
    png = Image.open(tmp_path / "g.png")
    assert png.size == (6 * 64, 3 * 64)  # 16 images, 6 per row, no padding


def test_december_2015_generator_written_by_the_original_code():
    """main.lua of 2015-12-10 trained it one epoch and util.save wrote it (biases, running_std): eval-mode
    outputs equal Lua's."""
    G, cfg = load_t7(str(DEC / "dec2015_1_net_G.t7"))
    assert (cfg.nz, cfg.ngf, cfg.nc, cfg.fineSize, cfg.bias) == (100, 8, 3, 64, True)
    assert G.main[0].bias.abs().max() > 0  # one Adam step after main.lua zeroed them
    with torch.no_grad():
        out = G(_load("noise.t7", DEC))
    assert torch.allclose(out, _load("output_eval.t7", DEC), atol=1e-5, rtol=0)


def test_generate_cli_reproduces_generate_lua(tmp_path, capsys):
    """`net=... noise_file=... batchnorm=train python generate.py` on the 2015 file: generate.lua's images
    (it never called net:evaluate()) to 1e-5, and its PNG (toDisplayTensor, 6 per row) to 8-bit rounding."""
    env = {"net": str(DEC / "dec2015_1_net_G.t7"), "noise_file": str(DEC / "noise.t7"), "batchnorm": "train",
           "gpu": "0", "name": str(tmp_path / "g"), "PATH": "/bin"}
    images = cli(gen.main, GenerateOptions, [], env)
    lua = _load("images_train.t7", DEC)
    assert images.shape == lua.shape == (8, 3, 64, 64)
    assert (images - lua).abs().max() < 1e-5
    ours = np.asarray(Image.open(tmp_path / "g.png"), np.int16)
    theirs = np.asarray(Image.open(DEC / "generation_train.png").convert("RGB"), np.int16)
    assert ours.shape == theirs.shape == (2 * 64, 6 * 64, 3)
    assert np.abs(ours - theirs).max() <= 1


@pytest.mark.parametrize("layout,cudnn,cuda,size", [("2015", False, False, 32), ("2015", True, True, 64),
                                                     ("today", True, False, 32), ("today", False, True, 128)])
def test_synthetic_t7_matches_numpy(tmp_path, layout, cudnn, cuda, size):
    obj, params = make_generator(nz=6, ngf=2, size=size, layout=layout, cudnn=cudnn, cuda=cuda, seed=size)
    path = tmp_path / "g.t7"
    t7_writer.save(str(path), obj)
    G, cfg = load_t7(str(path))
    assert cfg.bias == (layout == "2015") and cfg.fineSize == size and cfg.nz == 6
    z = np.random.default_rng(1).normal(size=(3, 6, 1, 1)).astype(np.float32)
    with torch.no_grad():
        ours = G(torch.from_numpy(z)).double().numpy()
        with batch_statistics(G):
            ours_bs = G(torch.from_numpy(z)).double().numpy()
    np.testing.assert_allclose(ours, reference_forward(params, z), atol=2e-5)
    np.testing.assert_allclose(ours_bs, reference_forward(params, z, batch_stats=True), atol=2e-5)


def test_convert_writes_a_pt_that_generates_the_same(tmp_path):
    from dcgan.convert import main as convert_main
    obj, _ = make_generator(layout="2015")
    t7_writer.save(str(tmp_path / "g.t7"), obj)
    out = convert_main(ConvertOptions(input=str(tmp_path / "g.t7")))
    assert out == str(tmp_path / "g.pt")
    a, _ = load_generator(str(tmp_path / "g.t7"))
    b, _ = load_generator(out)
    z = torch.randn(4, 8, 2, 2)  # imsize 2: larger images from the same net
    with torch.no_grad():
        assert torch.equal(a(z), b(z))
        assert a(z).shape == (4, 3, 8 * (2 + 3), 8 * (2 + 3))  # a 32-pixel net gives 8(imsize + 3) pixels


def test_not_a_generator_is_one_line(tmp_path):
    disc = t7.TorchObject(b"nn.Sequential", {"modules": [
        t7.TorchObject(b"nn.SpatialConvolution", {"weight": np.zeros((4, 3, 4, 4), np.float32)}),
        t7.TorchObject(b"nn.LeakyReLU", {})]})
    t7_writer.save(str(tmp_path / "d.t7"), disc)
    with pytest.raises(UserError, match="a discriminator"):
        load_generator(str(tmp_path / "d.t7"))
    t7_writer.save(str(tmp_path / "table.t7"), {"a": 1})
    with pytest.raises(UserError, match="not a DCGAN generator"):
        load_generator(str(tmp_path / "table.t7"))
    (tmp_path / "text.t7").write_text("hello")
    with pytest.raises(UserError, match="not a readable Torch7"):
        load_generator(str(tmp_path / "text.t7"))
    with pytest.raises(UserError, match="no such file"):
        load_generator(str(tmp_path / "missing_net_G.t7"))


def test_convert_cli_bad_input_exits_with_one_line(tmp_path, capsys):
    from common.cli import run
    from dcgan.convert import main as convert_main
    (tmp_path / "x.t7").write_text("not torch")
    with pytest.raises(SystemExit) as e:
        run(convert_main, ConvertOptions(input=str(tmp_path / "x.t7")))
    err = capsys.readouterr().err
    assert e.value.code == 1 and err.count("\n") == 1 and "x.t7" in err
    assert not (tmp_path / "x.pt").exists()
