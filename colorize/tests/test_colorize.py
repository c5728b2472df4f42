"""colorize.py: the original pipeline step by step, every kind of image, folders, huge images, bad input."""
import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from colorize import colorize, imageops, pipeline
from colorize.tests.conftest import REPO
from colorize.tests.t7_colornet import reference_forward
from colorize.tests.test_imageops import scale_loop
from common import checkpoint
from common.cli import UserError, parse, run


def cli(*args):
    """Run colorize.py's main in this process: -> (exit code, stdout, stderr) via capsys-free capture."""
    opt = parse(colorize.ColorizeOptions, [str(a) for a in args])
    try:
        run(colorize.main, opt)
        return 0
    except SystemExit as e:
        return e.code


def photo(seed=0, h=30, w=45):
    """A smooth colourful test picture (uint8 RGB)."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    rng = np.random.default_rng(seed)
    ch = [np.sin(6 * xx * rng.uniform(0.5, 2) + rng.uniform(0, 6)) * np.cos(4 * yy + c) for c in range(3)]
    return ((np.stack(ch, -1) * 0.5 + 0.5) * 255).astype(np.uint8)


def test_original_pipeline_step_by_step(tiny_t7):
    """colorize.lua on a 45x30 gray image, transcribed line by line with the C-loop resampler and numpy net."""
    path, spec = tiny_t7
    net, mean = pipeline.load_model(path, torch.device("cpu"))[0], spec["mean"]
    I = np.random.default_rng(1).random((30, 45))
    X2 = scale_loop(I, 48, 32) - mean                          # torch.round(45/8)*8 = 48, round(30/8)*8 = 32
    X1 = scale_loop(X2, 32, 32)                                # (224x224 for the real model)
    out, _ = reference_forward(spec, X1, X2)                   # 2 x 16 x 24
    Icat = np.concatenate([out[:1], out * 2 - 1])              # pred2rgb
    O = np.stack([scale_loop(c, 48, 32) for c in Icat]) * 100
    Y = X2 + mean
    X = imageops.rgb2lab(np.tensordot(imageops.YUV2RGB, np.stack([Y, Y, Y]), 1))
    O[0] = X[0]
    O = np.tensordot(imageops.RGB2YUV, imageops.lab2rgb(O), 1)
    expected = np.clip(np.tensordot(imageops.YUV2RGB, np.concatenate([Y[None], O[1:]]), 1), 0, 1)
    rgb, _ = pipeline.colorize_luminance(net, mean, I.astype(np.float32), torch.device("cpu"), "yuv",
                                         max_side=0, keep_size=False)
    assert rgb.shape == (32, 48, 3)
    diff = rgb.astype(float) - expected.transpose(1, 2, 0) * 255   # image.save: floor(255 x), not rounded
    assert diff.min() > -1 - 1e-3 and diff.max() < 1e-3
    assert np.abs(expected[0] - expected[2]).max() > 0.01  # it is not gray


def test_keep_size_huge_images_and_style(tiny_pt, monkeypatch):
    net, ck = pipeline.load_model(tiny_pt, torch.device("cpu"))
    seen = []
    real = pipeline.predict_ab
    monkeypatch.setattr(pipeline, "predict_ab", lambda n, x2, *a, **k: seen.append(x2.shape) or real(n, x2, *a, **k))
    y = np.random.default_rng(2).random((1203, 1601)).astype(np.float32)
    rgb, ab = pipeline.colorize_luminance(net, ck["mean"], y, torch.device("cpu"), "yuv", max_side=160, want_ab=True)
    assert seen == [(120, 160)] and rgb.shape == (1203, 1601, 3) and ab.shape == (2, 1203, 1601)
    assert np.abs(ab).max() <= 100
    # the output's luma is the full-resolution input's, not the 160-pixel working image's
    luma = rgb.astype(np.float64) @ imageops.RGB2YUV[0] / 255
    assert np.corrcoef(luma[::7, ::7].ravel(), y[::7, ::7].ravel())[0, 1] > 0.99
    # the stylize pull request: global features from another photo change the colours, its own leave them
    small = y[:64, :96]
    base, _ = pipeline.colorize_luminance(net, ck["mean"], small, torch.device("cpu"))
    own = pipeline.style_features(net, small, ck["mean"], torch.device("cpu"))
    same, _ = pipeline.colorize_luminance(net, ck["mean"], small, torch.device("cpu"), global_feats=own)
    other = pipeline.style_features(net, 1 - y[:200, :200], ck["mean"], torch.device("cpu"))
    styled, _ = pipeline.colorize_luminance(net, ck["mean"], small, torch.device("cpu"), global_feats=other)
    assert np.array_equal(base, same) and not np.array_equal(base, styled)


def write_kinds(folder):
    """The image kinds users bring: -> {name: (size, expects alpha)}."""
    rgb = photo()
    gray = rgb.mean(2).astype(np.uint8)
    Image.fromarray(rgb).save(folder / "rgb.jpg")
    Image.fromarray(gray).save(folder / "gray.png")
    rgba = Image.fromarray(rgb).convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.arange(45, dtype=np.uint8) * 5, (30, 1))))
    rgba.save(folder / "alpha.png")                               # the original crashed on these (#13)
    Image.fromarray(gray).convert("LA").save(folder / "gray_alpha.png")
    Image.fromarray((gray.astype(np.uint16) * 257)).save(folder / "sixteen.png")   # 16-bit gray
    Image.fromarray(rgb).save(folder / "scan.tif")
    Image.fromarray(rgb).convert("P").save(folder / "palette.gif")
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    return {"rgb.jpg": False, "gray.png": False, "alpha.png": True, "gray_alpha.png": True, "sixteen.png": False,
            "scan.tif": False, "palette.gif": False, "cmyk.jpg": False}


def test_every_image_kind_and_a_folder_with_bad_files(tiny_pt, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    kinds = write_kinds(src)
    y16, _, _ = pipeline.read_image(src / "sixteen.png")
    y8, _, _ = pipeline.read_image(src / "gray.png")
    np.testing.assert_allclose(y16, y8, atol=1e-6)                  # 16-bit values scaled by 65535
    (src / "notes.txt").write_text("not an image")
    (src / "empty.png").write_bytes(b"")
    (src / "broken.jpg").write_bytes((src / "rgb.jpg").read_bytes()[:200])
    assert cli(src, tmp_path / "out", "-model", tiny_pt, "-save_ab", 1) == 0
    out = capsys.readouterr()
    assert f"colorized {len(kinds)} image(s)" in out.out and "skipped 3 bad file(s)" in out.out
    assert out.err.count("warning: skipping") == 3 and "empty file" in out.err
    for name, alpha in kinds.items():
        img = Image.open(tmp_path / "out" / name)
        assert img.size == (45, 30), name
        assert (img.mode == "RGBA") == alpha, name
        assert np.load(tmp_path / "out" / (name.rsplit(".", 1)[0] + "_ab.npy")).shape == (2, 30, 45)
    kept = np.asarray(Image.open(tmp_path / "out" / "alpha.png"))[..., 3]
    assert np.array_equal(kept[0], np.arange(45, dtype=np.uint8) * 5)


def test_single_file_cli_from_the_repo_root_and_keep_size(tiny_pt, tmp_path, capsys):
    Image.fromarray(photo(h=37, w=50)).save(tmp_path / "in.png")
    r = subprocess.run([sys.executable, "colorize/colorize.py", str(tmp_path / "in.png"), str(tmp_path / "o.png"),
                        "-model", str(tiny_pt), "-gpu", "-1", "-keep_size", "0", "-recombine", "lab"],
                       cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "o.png").size == (48, 40)        # the original's multiple-of-8 size
    with pytest.raises(SystemExit):
        parse(colorize.ColorizeOptions, ["-h"])
    assert "-style_image" in capsys.readouterr().out


def test_bad_input_is_one_line_each(tiny_pt, tmp_path, capsys):
    Image.fromarray(photo()).save(tmp_path / "ok.png")
    (tmp_path / "text.png").write_text("hello")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "nothing").mkdir()
    (tmp_path / "file").write_text("x")
    checkpoint.save(tmp_path / "lm.pt", "charrnn", {"model": {}})
    ok, m = tmp_path / "ok.png", ["-model", tiny_pt]
    cases = [((tmp_path / "text.png", tmp_path / "o.png", *m), "not an image"),
             ((tmp_path / "empty.jpg", tmp_path / "o.png", *m), "empty file"),
             ((tmp_path / "nothing", tmp_path / "o", *m), "no images in this folder"),
             ((ok, tmp_path / "file" / "o.png", *m), "does not exist"),
             ((tmp_path, tmp_path, *m), "must differ from the input folder"),
             ((ok, "/proc/o.png", *m), "cannot write"),
             ((ok, tmp_path / "o.xyz", *m), "unknown output format"),
             ((ok, tmp_path / "o.png", "-model", tmp_path / "lm.pt"), "charrnn checkpoint, expected a colorize"),
             ((ok, tmp_path / "o.png", "-model", tmp_path / "none.pt"), "no such model file"),
             ((ok, tmp_path / "o.png", "-model", pipeline.DEFAULT_MODEL.with_name("absent.pt")), "no such model")]
    (tmp_path / "cut.pt").write_bytes(tiny_pt.read_bytes()[:30000])    # a model file cut short
    cases.append(((ok, tmp_path / "o.png", "-model", tmp_path / "cut.pt"), "cut.pt"))
    for args, message in cases:
        assert cli(*args) == 1, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.pt", "empty.jpg", "file", "lm.pt", "nothing",
                                                          "ok.png", "text.png"]


def test_output_equal_to_the_input_is_refused_whatever_its_spelling(tiny_pt, tmp_path, capsys, monkeypatch):
    Image.fromarray(photo()).save(tmp_path / "same.png")
    os.symlink(tmp_path / "same.png", tmp_path / "link.png")
    os.link(tmp_path / "same.png", tmp_path / "hard.png")
    before = (tmp_path / "same.png").read_bytes()
    monkeypatch.chdir(tmp_path)
    for out in ["same.png", "./same.png", tmp_path / "same.png", tmp_path / "sub" / ".." / "same.png",
                "link.png", "hard.png", tmp_path]:
        (tmp_path / "sub").mkdir(exist_ok=True)
        assert cli("same.png", out, "-model", tiny_pt) == 1, out
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is the input photo itself" in err, (out, err)
    assert (tmp_path / "same.png").read_bytes() == before and os.path.islink(tmp_path / "link.png")
    assert sorted(os.listdir(tmp_path)) == ["hard.png", "link.png", "same.png", "sub"]


def test_gpu_without_a_gpu_runs_on_the_cpu_with_a_note(tiny_pt, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    Image.fromarray(photo()).save(tmp_path / "in.png")
    assert cli(tmp_path / "in.png", tmp_path / "o.png", "-model", tiny_pt, "-gpu", 0) == 0
    assert "note: no CUDA or MPS device found, running on CPU (pass -gpu -1" in capsys.readouterr().err
    assert Image.open(tmp_path / "o.png").size == (45, 30)


def test_default_model_missing_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(pipeline, "DEFAULT_MODEL", tmp_path / "models" / "colornet.pt")
    with pytest.raises(UserError, match="make download-models"):
        pipeline.load_model(tmp_path / "models" / "colornet.pt", torch.device("cpu"))


# ---------------------------------------------------------------- what issue 7 asks, checked one by one

def luma(rgb):
    """image.rgb2y by hand: 0.299 R + 0.587 G + 0.114 B on [0, 1]."""
    r, g, b = (rgb[..., k].astype(np.float64) / 255 for k in range(3))
    return 0.299 * r + 0.587 * g + 0.114 * b


def test_read_image_gives_the_luma_of_every_kind(tmp_path):
    import tifffile
    rgb = photo(3)
    Image.fromarray(rgb).save(tmp_path / "x.bmp")
    y, alpha, colour = pipeline.read_image(tmp_path / "x.bmp")
    assert alpha is None and np.array_equal(colour, rgb)
    np.testing.assert_allclose(y, luma(rgb), atol=1e-6)             # colour input is reduced to Y, as the original
    # 16-bit colour TIFF: the high byte is the 8-bit value (Pillow reduces it; the low byte is noise here)
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb.astype(np.uint16) * 256 + 200)
    np.testing.assert_allclose(pipeline.read_image(tmp_path / "rgb16.tif")[0], luma(rgb), atol=1e-6)
    gray16 = np.random.default_rng(4).integers(0, 65536, (30, 45)).astype(np.uint16)
    Image.fromarray(gray16).save(tmp_path / "gray16.tif")           # 16-bit gray TIFF, full 0..65535 range
    np.testing.assert_allclose(pipeline.read_image(tmp_path / "gray16.tif")[0], gray16 / 65535, atol=1e-6)
    # a JPEG whose EXIF says "rotate 90 degrees clockwise to display" is read upright, as a viewer shows it
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(tmp_path / "plain.jpg", quality=95)
    Image.fromarray(rgb).save(tmp_path / "rotated.jpg", quality=95, exif=exif)
    upright = pipeline.read_image(tmp_path / "rotated.jpg")[0]
    assert upright.shape == (45, 30)
    np.testing.assert_allclose(upright, np.rot90(pipeline.read_image(tmp_path / "plain.jpg")[0], -1), atol=1e-6)
    rgba = Image.fromarray(rgb).convert("RGBA")
    rgba.putalpha(77)
    rgba.save(tmp_path / "a.png")
    y, alpha, _ = pipeline.read_image(tmp_path / "a.png")
    np.testing.assert_allclose(y, luma(rgb), atol=1e-6)
    assert alpha.shape == (30, 45) and (alpha == 77).all()


def test_a_folder_loads_the_model_once_and_counts_what_it_skips(tiny_pt, tmp_path, monkeypatch, capsys):
    loads = []
    real = pipeline.load_model
    monkeypatch.setattr(pipeline, "load_model", lambda *a: loads.append(a) or real(*a))
    src = tmp_path / "in"
    src.mkdir()
    for k in range(3):
        Image.fromarray(photo(k)).save(src / f"p{k}.png")
    (src / "readme.txt").write_text("not an image")
    assert cli(src, tmp_path / "out", "-model", tiny_pt) == 0
    assert len(loads) == 1
    assert "colorized 3 image(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0.png", "p1.png", "p2.png"]
    # a folder holding no readable image at all: the skipped count, then one error line and exit 1
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.txt").write_text("hello")
    (bad / "empty.png").write_bytes(b"")
    assert cli(bad, tmp_path / "out2", "-model", tiny_pt) == 1
    out = capsys.readouterr()
    assert "skipped 2 bad file(s)" in out.out and out.err.count("warning: skipping") == 2
    assert out.err.strip().splitlines()[-1] == f"error: {bad}: none of its 2 file(s) is a readable image"


def test_style_image_and_save_ab_from_the_command_line(tiny_pt, tmp_path, capsys):
    Image.fromarray(photo(5, 40, 56)).save(tmp_path / "in.png")
    Image.fromarray(photo(9, 64, 64)[::-1]).save(tmp_path / "sunset.png")
    m = ["-model", tiny_pt, "-recombine", "lab"]

    def colorize_to(name, *extra):
        assert cli(tmp_path / "in.png", tmp_path / name, *m, *extra) == 0
        return np.asarray(Image.open(tmp_path / name))

    plain = colorize_to("plain.png", "-save_ab", 1)
    assert np.array_equal(colorize_to("own_style.png", "-style_image", tmp_path / "in.png"), plain)
    assert np.abs(colorize_to("styled.png", "-style_image", tmp_path / "sunset.png").astype(int) - plain).max() > 0
    # -save_ab wrote the chroma the picture was made from: Lab(L of the gray, a, b) rebuilds the output exactly
    ab = np.load(tmp_path / "plain_ab.npy")
    assert ab.shape == (2, 40, 56) and ab.dtype == np.float32 and 1 < np.abs(ab).max() <= 100
    y = pipeline.read_image(tmp_path / "in.png")[0]
    rebuilt = (imageops.recombine(y, ab, "lab").transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)
    assert np.abs(rebuilt.astype(int) - plain).max() <= 1
    assert not (tmp_path / "styled_ab.npy").exists()               # -save_ab 0 (the default) writes none
    capsys.readouterr()
    assert cli(tmp_path / "in.png", tmp_path / "o.png", *m, "-style_image", tmp_path / "none.jpg") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.jpg: no such file" in err


def test_the_default_model_and_models_of_the_wrong_kind(tiny_pt, tmp_path, monkeypatch, capsys):
    from colorize.tests.conftest import COLORIZE, NOT_A_COLORNET
    Image.fromarray(photo()).save(tmp_path / "ok.png")
    opt = parse(colorize.ColorizeOptions, [str(tmp_path / "ok.png"), str(tmp_path / "o.png")])
    assert opt.model == str(COLORIZE / "models" / "colornet.pt") == str(pipeline.DEFAULT_MODEL)
    monkeypatch.setattr(pipeline, "DEFAULT_MODEL", tmp_path / "models" / "colornet.pt")  # as if not downloaded
    (tmp_path / "four.pt").write_bytes(b"junk")
    (tmp_path / "text.t7").write_text("hello")
    cases = [(pipeline.DEFAULT_MODEL, "run `make download-models`"),
             (tmp_path / "four.pt", "not a torch-classics checkpoint"),
             (tmp_path / "text.t7", "not a readable Torch7 .t7 file"),
             (NOT_A_COLORNET, "not a colornet model")]
    for model, message in cases:
        assert cli(tmp_path / "ok.png", tmp_path / "o.png", "-model", model) == 1, model
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (model, err)
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("script", ["colorize", "train", "convert"])
def test_help_documents_every_flag(script, capsys):
    from colorize import convert, train
    cls = {"colorize": colorize.ColorizeOptions, "train": train.TrainOptions, "convert": convert.ConvertOptions}[script]
    with pytest.raises(SystemExit) as e:
        parse(cls, ["-h"])
    assert e.value.code == 0
    text = "".join(capsys.readouterr().out.split())           # argparse wraps lines (also at hyphens)
    for f in dataclasses.fields(cls):
        name = f.name if f.metadata.get("nargs") == "?" else f"-{f.name}"
        assert name in text and "".join(f.metadata["help"].split()) in text, f.name


def test_bf16_stays_within_45_db_of_fp32_and_auto_is_fp32_without_native_bf16(tiny_pt, tmp_path, monkeypatch):
    from colorize import metrics
    from common import device
    net, ck = pipeline.load_model(tiny_pt, torch.device("cpu"))
    y = luma(photo(4, 96, 128)).astype(np.float32)
    fp32, _ = pipeline.colorize_luminance(net, ck["mean"], y, torch.device("cpu"), "lab", precision="fp32")
    bf16, _ = pipeline.colorize_luminance(net, ck["mean"], y, torch.device("cpu"), "lab", precision="bf16")
    assert not np.array_equal(fp32, bf16)          # bf16 really ran
    assert metrics.psnr(bf16, fp32) >= 45
    monkeypatch.setattr(device, "native_bf16", lambda: False)   # an AVX2-only CPU, as this one
    assert device.resolve_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setattr(device, "native_bf16", lambda: True)
    assert device.resolve_precision("auto", torch.device("cpu")) == "bf16"
    Image.fromarray(photo()).save(tmp_path / "in.png")
    assert cli(tmp_path / "in.png", tmp_path / "o.png", "-model", tiny_pt, "-precision", "bf16") == 0
    with pytest.raises(SystemExit):
        parse(colorize.ColorizeOptions, ["in.png", "-precision", "fp16"])
