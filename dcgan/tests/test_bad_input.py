"""Bad input through the real commands (issue 17, round 3): one stderr line naming the flag or file, a
non-zero exit, nothing written; images read as common.images.open_rgb reads them. Table: BAD_INPUT.md."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan import fid, generate, train
from dcgan.data import FolderImages
from dcgan.metrics import feature_net, folder_features
from dcgan.options import FidOptions, GenerateOptions, TrainOptions, cli

FIXTURES = Path(__file__).parent / "fixtures"
TRAIN = {"dataset": "mnist", "gpu": "0", "nThreads": "0", "niter": "1", "PATH": "/bin"}


@pytest.mark.parametrize("script, variable, how", [
    ("train", "batchSize", "env"), ("train", "nz", "env"), ("train", "loadSize", "env"), ("train", "fineSize", "env"),
    ("train", "ngf", "flag"), ("train", "ndf", "env"), ("train", "niter", "env"), ("generate", "batchSize", "env"),
    ("generate", "imsize", "flag"), ("fid", "nsamples", "env"), ("fid", "nsamples", "flag")])
def test_sizes_of_zero_are_refused_naming_the_variable(blobs, tmp_path, capsys, script, variable, how):
    main, cls, env = {"train": (train.main, TrainOptions, dict(TRAIN, DATA_ROOT=str(blobs))),
                      "generate": (generate.main, GenerateOptions, {"gpu": "0", "name": str(tmp_path / "g")}),
                      "fid": (fid.main, FidOptions, {"feature": "random"})}[script]
    env = dict(env, checkpoints_dir=str(tmp_path / "ck")) if script == "train" else env
    argv = [f"-{variable}", "0"] if how == "flag" else []
    if how == "env":
        env[variable] = "0"
    with pytest.raises(SystemExit) as e:
        cli(main, cls, argv + (["a", "b"] if script == "fid" else []), env)
    err = capsys.readouterr().err.splitlines()
    assert e.value.code == 2 and err == [f"error: {variable}= (or -{variable}) must be >= 1 (got 0)"]
    assert os.listdir(tmp_path) == (["blobs"] if "blobs" in os.listdir(tmp_path) else [])


@pytest.mark.parametrize("name", ["cut_net_G.pt", "cut_net_G.t7"])
def test_a_truncated_generator_is_one_line(net, tmp_path, capsys, name):
    whole = Path(net).read_bytes() if name.endswith(".pt") else (FIXTURES / "dec2015" / "dec2015_1_net_G.t7").read_bytes()
    (tmp_path / name).write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SystemExit) as e:
        cli(generate.main, GenerateOptions, [], {"net": str(tmp_path / name), "gpu": "0", "name": str(tmp_path / "g")})
    err = capsys.readouterr().err.splitlines()
    assert e.value.code == 1 and len(err) == 1 and str(tmp_path / name) in err[0], err
    assert not (tmp_path / "g.png").exists()


def test_fid_skips_a_truncated_image_with_a_warning_and_a_count(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8)).save(tmp_path / side / f"{i}.png")
    png = (tmp_path / "a" / "0.png").read_bytes()
    (tmp_path / "a" / "0.png").write_bytes(png[: len(png) // 2])  # the header opens, the pixels do not
    r = cli(fid.main, FidOptions, [str(tmp_path / "a"), str(tmp_path / "b")], {"feature": "random", "kid_subset_size": "5"})
    err = capsys.readouterr().err
    assert (r["n1"], r["n2"]) == (5, 6)
    assert "skipped 1 unreadable image(s) of 6" in err and f"{tmp_path / 'a' / '0.png'}" in err


def test_the_folder_loader_reads_16_bit_gray_and_exif_rotation(tmp_path):
    """A 16-bit PNG of value 16384 is a quarter grey (a plain convert() makes it white); a JPEG stored
    sideways with orientation 6 (rotate 90 degrees clockwise) comes out upright."""
    Image.fromarray(np.full((8, 8), 16384, np.uint16)).save(tmp_path / "gray16.png")
    stored = np.zeros((16, 32, 3), np.uint8)
    stored[:, :16] = 255  # stored 32 wide x 16 high, left half white; shown upright it is 16 x 32, top white
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    ds = FolderImages([str(tmp_path / "gray16.png"), str(tmp_path / "rotated.jpg")], loadSize=8, fineSize=8, flip=False)
    x = ds.load(0)
    assert x.shape == (3, 8, 8) and torch.allclose(x, torch.full_like(x, 64 / 255), atol=1 / 255)
    x = FolderImages([str(tmp_path / "rotated.jpg")], loadSize=16, fineSize=16, flip=False).load(0)
    assert x.shape == (3, 32, 16)  # upright: taller than wide
    assert x[:, :12].mean() > 0.9 and x[:, 20:].mean() < 0.1  # white on top, black below
    assert folder_features(str(tmp_path), feature_net("random"), 10).shape == (2, 128)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_the_cpu_fallback_note_names_dcgans_own_flag(blobs, tmp_path, capsys):
    cli(train.main, TrainOptions, [], dict(TRAIN, DATA_ROOT=str(blobs), gpu="1", loadSize="32", fineSize="32",
                                           batchSize="16", ntrain="16", ngf="4", ndf="4", nz="8", display="0",
                                           print_every="0", checkpoints_dir=str(tmp_path / "ck")))
    err = capsys.readouterr().err
    assert "running on CPU (pass gpu=0 to silence this)" in err and "gpuid" not in err
