"""train.py: flat and class-folder data, bad photos skipped, exact resume, NaN stop, DDP = one process."""
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from colorize import pipeline, train
from colorize.tests.conftest import COLORIZE, REPO
from colorize.tests.test_colorize import photo
from common import checkpoint
from common.cli import UserError, parse, run

TINY = ["-width", "16", "-image_size", "32", "-batch_size", "4", "-print_every", "1000", "-gpu", "-1"]


def photos(folder, n, seed=0, size=(40, 48)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(photo(seed + i, *size)).save(folder / f"p{i}.jpg", quality=95)
    return folder


def train_main(*args):
    return train.main(parse(train.TrainOptions, [str(a) for a in args]))


def test_flat_folder_trains_skips_bad_photos_and_colorizes(tmp_path, capsys):
    d = photos(tmp_path / "flat", 9)
    Image.fromarray(np.full((40, 48), 128, np.uint8)).save(d / "gray.png")
    Image.fromarray(np.repeat(photo(99).mean(2, keepdims=True), 3, 2).astype(np.uint8)).save(d / "gray_rgb.jpg")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    path = train_main("-data_dir", d, "-checkpoint_dir", tmp_path / "cv", "-max_iters", 24, "-eval_every", 12,
                      "-learning_rate", "1.0", *TINY)
    err = capsys.readouterr()
    for name in ("gray.png", "gray_rgb.jpg", "broken.jpg"):
        assert f"skipping {d / name}" in err.err
    ck = checkpoint.load(path, "colorize")
    assert ck["iter"] == 24 and ck["config"]["n_classes"] == 0 and ck["recombine"] == "lab"
    losses = ck["history"]["train_loss"]
    assert len(losses) == 24 and np.mean(losses[-6:]) < 0.9 * np.mean(losses[:6])
    assert [i for i, _ in ck["history"]["val_psnr"]] == [12, 24] and "validation PSNR" in err.out
    net, _ = pipeline.load_model(path, torch.device("cpu"))
    rgb, _ = pipeline.colorize_luminance(net, ck["mean"], np.random.rand(30, 50).astype(np.float32),
                                         torch.device("cpu"), "lab")
    assert rgb.shape == (30, 50, 3)


def test_class_subfolders_add_the_classification_loss(tmp_path, monkeypatch):
    for k, name in enumerate(("beach", "forest", "kitchen")):
        photos(tmp_path / "places" / name, 3, seed=10 * k)
    ce = []
    real = train.F.cross_entropy
    monkeypatch.setattr(train.F, "cross_entropy", lambda *a, **k: ce.append(1) or real(*a, **k))
    path = train_main("-data_dir", tmp_path / "places", "-checkpoint_dir", tmp_path / "cv", "-max_iters", 2,
                      "-val_frac", 0, *TINY)
    ck = checkpoint.load(path, "colorize")
    assert ck["classes"] == ["beach", "forest", "kitchen"] and ck["config"]["n_classes"] == 3 and len(ce) == 2


def test_resume_is_exact(tmp_path):
    d = photos(tmp_path / "flat", 8)
    common = ["-data_dir", d, "-max_iters", 6, "-save_every", 3, "-val_frac", 0, *TINY]
    full = checkpoint.load(train_main(*common, "-checkpoint_dir", tmp_path / "a"), "colorize")
    half = tmp_path / "a" / "colornet_iter3.pt"
    resumed = checkpoint.load(train_main(*common, "-checkpoint_dir", tmp_path / "b", "-init_from", half), "colorize")
    assert resumed["iter"] == 6 and resumed["history"]["train_loss"] == full["history"]["train_loss"]
    for k, v in full["model"].items():
        assert torch.equal(v, resumed["model"][k]), k


def test_nan_loss_stops_cleanly(tmp_path, monkeypatch):
    d = photos(tmp_path / "flat", 4)
    monkeypatch.setattr(train, "color_loss", lambda pred, *a: pred.sum() * float("nan"))
    with pytest.raises(UserError, match="loss is NaN at iteration 1: stopping; .*lower -learning_rate"):
        train_main("-data_dir", d, "-checkpoint_dir", tmp_path / "cv", "-max_iters", 3, *TINY)
    assert not (tmp_path / "cv").exists()


def test_time_budgets_stop_and_save(tmp_path, monkeypatch, capsys):
    """-max_time counts wall seconds: batches that sleep 0.3 s (next to no CPU time) stop a -max_time 1 run by
    its 4th iteration, whatever the machine's speed (counted in CPU seconds it would run on to -max_iters 40);
    -max_cpu_time 1e-9 stops after the first."""
    import time
    d, real = photos(tmp_path / "flat", 4), train.get_batch

    def slow(*a, **k):
        time.sleep(0.3)
        return real(*a, **k)
    monkeypatch.setattr(train, "get_batch", slow)
    t0 = time.time()
    ck = checkpoint.load(train_main("-data_dir", d, "-checkpoint_dir", tmp_path / "w", "-max_iters", 40,
                                    "-val_frac", 0, "-max_time", 1, *TINY), "colorize")
    assert 1 <= ck["iter"] <= 4 and time.time() - t0 >= 1 and len(ck["history"]["train_loss"]) == ck["iter"]
    assert "stopping after -max_time 1s of wall clock" in capsys.readouterr().out
    monkeypatch.setattr(train, "get_batch", real)
    ck = checkpoint.load(train_main("-data_dir", d, "-checkpoint_dir", tmp_path / "c", "-max_iters", 40,
                                    "-val_frac", 0, "-max_cpu_time", 1e-9, *TINY), "colorize")
    assert ck["iter"] == 1 and 0 < ck["cpu_seconds"]
    assert "stopping after -max_cpu_time 1e-09 CPU s" in capsys.readouterr().out


def test_bad_options(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        train_main("-data_dir", tmp_path / "none", *TINY)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images found"):
        train_main("-data_dir", tmp_path / "empty", *TINY)
    with pytest.raises(UserError, match="multiple of 32"):
        train_main("-data_dir", tmp_path / "empty", *TINY, "-image_size", 50)


def test_ddp_two_processes_equal_one(tmp_path):
    d = photos(tmp_path / "flat", 8)
    args = ["-data_dir", str(d), "-max_iters", "2", "-val_frac", "0", "-batch_norm", "0", *TINY]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(COLORIZE / "train.py"), *args, "-checkpoint_dir", str(tmp_path / "ddp")],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    one = checkpoint.load(train_main(*args, "-checkpoint_dir", tmp_path / "one"), "colorize")
    two = checkpoint.load(tmp_path / "ddp" / "colornet_iter2.pt", "colorize")
    for k, v in one["model"].items():
        torch.testing.assert_close(two["model"][k], v, atol=1e-5, rtol=1e-4)


def test_mixed_precision_path_trains(tmp_path, capsys):
    """-amp 2 runs the GPU's bfloat16 autocast path on the CPU: it trains, in lower precision than fp32."""
    d = photos(tmp_path / "flat", 4)
    args = ["-data_dir", d, "-max_iters", 6, "-val_frac", 0, "-learning_rate", "1.0", *TINY]
    amp = checkpoint.load(train_main(*args, "-amp", 2, "-checkpoint_dir", tmp_path / "amp"), "colorize")
    assert "mixed precision: bfloat16 autocast on cpu" in capsys.readouterr().out
    fp32 = checkpoint.load(train_main(*args, "-checkpoint_dir", tmp_path / "fp32"), "colorize")
    assert "mixed precision" not in capsys.readouterr().out  # -amp 1 (the default) is GPU-only
    a, f = np.array(amp["history"]["train_loss"]), np.array(fp32["history"]["train_loss"])
    assert np.isfinite(a).all() and a[0] == pytest.approx(f[0], rel=0.02) and not np.array_equal(a, f)
    for k, v in fp32["model"].items():
        if v.is_floating_point():
            assert amp["model"][k].dtype == v.dtype  # weights stay fp32 (autocast only computes in bf16)


def test_fine_tune_a_converted_original_with_validation_each_epoch(tiny_pt, tmp_path, capsys):
    """-init_from a converted colornet .pt: its network and stored mean are kept, training starts at 0; the
    validation PSNR runs once per epoch and is the PSNR of what colorize.py makes of the gray photos."""
    d, val = photos(tmp_path / "flat", 8), photos(tmp_path / "val", 2, seed=50)
    path = train_main("-data_dir", d, "-val_dir", val, "-checkpoint_dir", tmp_path / "cv", "-max_iters", 4,
                      "-init_from", tiny_pt, "-learning_rate", 0, *TINY)   # 8 photos / batch 4 = 2 per epoch
    ck, original = checkpoint.load(path, "colorize"), checkpoint.load(tiny_pt, "colorize")
    assert ck["iter"] == 4 and ck["mean"] == pytest.approx(0.4512) and ck["config"] == original["config"]
    for k, v in original["model"].items():
        assert torch.equal(ck["model"][k], v), k                    # learning rate 0: the weights did not move
    assert [i for i, _ in ck["history"]["val_psnr"]] == [2, 4]
    net, _ = pipeline.load_model(path, torch.device("cpu"))
    scores = []
    for f in sorted(val.iterdir()):
        rgb = np.asarray(Image.open(f).convert("RGB"))
        gray = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255
        out, _ = pipeline.colorize_luminance(net, ck["mean"], gray.astype(np.float32), torch.device("cpu"), "lab")
        mse = ((out.astype(np.float64) - rgb) ** 2).mean()
        scores.append(10 * np.log10(255 ** 2 / mse))
    assert ck["history"]["val_psnr"][-1][1] == pytest.approx(np.mean(scores), abs=1e-3)
    out = capsys.readouterr().out
    assert "resuming" not in out and f"iteration 4: validation PSNR {np.mean(scores):.2f} dB" in out


def test_gpu_without_a_gpu_falls_back_to_the_cpu_with_a_note(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    path = train_main("-data_dir", photos(tmp_path / "p", 4), "-checkpoint_dir", tmp_path / "cv", "-max_iters", 1,
                      "-val_frac", 0, *TINY[:-1], "0")
    captured = capsys.readouterr()
    assert "note: no CUDA or MPS device found, running on CPU (pass -gpu -1 to silence this)" in captured.err
    assert "on cpu" in captured.out and checkpoint.load(path, "colorize")["iter"] == 1


def check_interrupted_run(folder, args, err):
    assert "resume with -init_from" in err and "Traceback" not in err
    (name,) = os.listdir(folder)                              # the stale temporary is gone
    ck = checkpoint.load(folder / name, "colorize")
    assert name == f"colornet_iter{ck['iter']}.pt" and ck["iter"] >= 3
    assert len(ck["history"]["train_loss"]) == ck["iter"]    # whole iterations only
    resumed = train_main("-init_from", folder / name, *args[:6], "-max_iters", ck["iter"] + 1, *TINY)
    assert checkpoint.load(resumed, "colorize")["iter"] == ck["iter"] + 1


def signal_run_args(tmp_path):
    (tmp_path / "cv").mkdir()
    (tmp_path / "cv" / ".tmp-999999999-abc.pt").write_bytes(b"half a checkpoint")  # a kill -9 mid-save
    return ["-data_dir", photos(tmp_path / "flat", 8), "-checkpoint_dir", tmp_path / "cv", "-max_iters", 100000,
            "-val_frac", 0, "-save_every", 100000]


def test_sigterm_saves_a_resumable_checkpoint_and_exits_143(tmp_path):
    args = signal_run_args(tmp_path)
    p = subprocess.Popen([sys.executable, "train.py", *map(str, args + TINY[:-3]), "1", "-gpu", "-1"],
                         cwd=COLORIZE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith("3/"):
            break
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and "stopped by SIGTERM" in err, err
    check_interrupted_run(tmp_path / "cv", args, err)


def test_ctrl_c_finishes_the_step_saves_and_exits_130(tmp_path, monkeypatch, capsys):
    args = signal_run_args(tmp_path)
    real, calls = train.train_step, []

    def step(*a):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)   # arrives mid-step: the step still completes
        return real(*a)
    monkeypatch.setattr(train, "train_step", step)
    with pytest.raises(SystemExit) as e:
        run(train.main, parse(train.TrainOptions, [str(a) for a in args + TINY]))
    err = capsys.readouterr().err
    assert e.value.code == 130 and "stopped by SIGINT" in err and len(calls) == 3
    monkeypatch.setattr(train, "train_step", real)
    check_interrupted_run(tmp_path / "cv", args, err)


def test_the_loss_is_the_colour_frobenius_norm_plus_a_300th_of_the_cross_entropy():
    from colorize.model import ColorNet, ColorNetConfig
    torch.manual_seed(0)
    net = ColorNet(ColorNetConfig(width=16, global_size=32, n_classes=5))
    opt = parse(train.TrainOptions, ["-learning_rate", "0"])
    optimizer = torch.optim.Adadelta(net.parameters(), lr=0.0)
    x, target, labels = torch.rand(3, 1, 32, 32) - 0.45, torch.rand(3, 2, 16, 16), torch.tensor([0, 4, 2])
    with torch.no_grad():
        pred, logits = net(x)
    colour = ((pred - target) ** 2).sum((1, 2, 3)).mean()               # per image, then the batch mean
    ce = -torch.log_softmax(logits, 1)[torch.arange(3), labels].mean()
    loss = train.train_step(net, optimizer, (x, target, labels), opt, False, 0)
    assert loss == pytest.approx((colour + ce / 300).item(), rel=1e-5)
    chroma = ((target - 0.5) * 200).norm(dim=1, keepdim=True)            # -loss weighted: 1 + 3 x chroma / 100
    weighted = (((pred - target) ** 2) * (1 + 0.03 * chroma)).sum((1, 2, 3)).mean()
    assert train.color_loss(pred, target, "weighted").item() == pytest.approx(weighted.item(), rel=1e-5)


def test_bad_training_input_is_one_line_each(tmp_path, capsys):
    d = photos(tmp_path / "flat", 2)
    gray = tmp_path / "gray"
    gray.mkdir()
    for k in range(2):
        Image.fromarray(np.full((40, 48, 3), 90 + k, np.uint8)).save(gray / f"g{k}.png")
    (tmp_path / "file").write_text("x")
    checkpoint.save(tmp_path / "lm.pt", "charrnn", {"model": {}})
    cv = ["-checkpoint_dir", tmp_path / "cv"]
    cases = [(["-checkpoint_dir", tmp_path / "cv"], "give -data_dir"),
             (["-data_dir", d, "-checkpoint_dir", "/proc/cv"], "-checkpoint_dir /proc/cv: cannot write there"),
             (["-data_dir", d, "-checkpoint_dir", tmp_path / "file" / "cv"], "cannot write there"),
             (["-data_dir", d, *cv, "-init_from", tmp_path / "lm.pt"], "a charrnn checkpoint, expected a colorize"),
             (["-data_dir", d, *cv, "-init_from", tmp_path / "none.pt"], "no such checkpoint file"),
             (["-data_dir", gray, *cv], "no usable colour photos"),
             (["-data_dir", d, *cv, "-init_from", tmp_path / "cut.pt"], "cut.pt")]
    good = train_main("-data_dir", d, "-checkpoint_dir", tmp_path / "good", "-max_iters", 1, *TINY)
    (tmp_path / "cut.pt").write_bytes(open(good, "rb").read()[:30000])   # a copy cut short
    shutil.rmtree(tmp_path / "good")
    for args, message in cases:
        with pytest.raises(SystemExit) as e:
            run(train.main, parse(train.TrainOptions, [str(a) for a in args + TINY + ["-max_iters", 1]]))
        err = capsys.readouterr().err.splitlines()
        assert e.value.code == 1 and err[-1].startswith("error: ") and message in err[-1], (args, err)
        assert all(line.startswith("warning: skipping") for line in err[:-1]), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.pt", "file", "flat", "gray", "lm.pt"]  # no cv/


@pytest.mark.parametrize("flag", ["-batch_size", "-width", "-save_every", "-print_every", "-image_size"])
def test_sizes_of_zero_are_refused_where_declared(flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        parse(train.TrainOptions, ["-data_dir", str(tmp_path), flag, "0"])
    err = capsys.readouterr().err
    assert e.value.code != 0 and flag in err and "Traceback" not in err


def test_ab_bins_are_the_in_gamut_grid_cells():
    import warnings

    from skimage.color import lab2rgb, rgb2lab

    from colorize.model import ab_bins
    bins = ab_bins(10)
    assert len(bins) == 226 and not (bins % 10).any()
    # a bin is kept iff some lightness shows it unclipped: check each grid cell with skimage's own conversion
    L = np.linspace(0, 100, 201)
    for a in range(-110, 111, 30):
        for b in range(-110, 111, 20):
            lab = np.stack([L, np.full_like(L, a), np.full_like(L, b)], -1)[None]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rgb = lab2rgb(lab, channel_axis=-1)  # clipped to [0, 1]: an in-gamut colour survives the trip
            shown = (np.abs(rgb2lab(rgb) - lab).max(-1) < 0.5).any()
            assert shown == any((bins == (a, b)).all(1)), (a, b)


def test_classify_loss_is_the_rebalanced_soft_encoded_cross_entropy():
    from colorize.model import ColorNet, ColorNetConfig
    torch.manual_seed(0)
    net = ColorNet(ColorNetConfig(width=16, global_size=32, ab_grid=10))
    bins = net.ab_bins.double()
    logits = torch.randn(2, len(bins), 4, 5)
    # whole Lab units (the table's look-up is then exact), with no tie for the nearest and the 5th nearest bin
    cand = torch.randint(-60, 61, (400, 2)).double()
    d = torch.sort(torch.cdist(cand, bins) ** 2, 1).values
    ab = cand[(d[:, 0] < d[:, 1] - 1e-6) & (d[:, 4] < d[:, 5] - 1e-6)][:40].T.reshape(2, 2, 4, 5).transpose(0, 1)
    weights = torch.rand(len(bins)) + 0.5
    loss = train.classify_loss(logits, (ab / 200 + 0.5).float(), train.soft_encoding(net.ab_bins), weights)
    want = 0.0
    for i in range(2):  # pixel by pixel: the 5 nearest bins, Gaussian weights of sigma 5, the nearest's weight
        for y in range(4):
            for x in range(5):
                d2 = ((bins - ab[i, :, y, x]) ** 2).sum(1)
                near = torch.argsort(d2, stable=True)[:5]
                q = torch.exp(-d2[near] / 50)
                q = q / q.sum()
                logp = torch.log_softmax(logits[i, :, y, x].double(), 0)
                want += -(q * logp[near]).sum().item() * weights[near[0]].item()
    assert loss.item() == pytest.approx(want / 2, rel=1e-5)


def test_rebalancing_weights_favour_rare_colours_with_mean_one(tmp_path):
    from skimage.color import rgb2lab

    from colorize import data
    from colorize.model import ab_bins
    d = tmp_path / "p"
    d.mkdir()
    rgb = np.full((40, 40, 3), 128, np.uint8)
    rgb[:, :10] = (200, 30, 30)  # a quarter red, the rest gray
    Image.fromarray(rgb).save(d / "a.png")
    bins = torch.from_numpy(ab_bins(10))
    crops = data.PhotoCrops(sorted(d.iterdir()), None, 32, 0.45)
    w, p = train.rebalancing_weights(crops, bins, 0.5)
    assert p.sum().item() == pytest.approx(1) and (p * w).sum().item() == pytest.approx(1, rel=1e-5)
    red_ab = tuple(rgb2lab(np.array([[[200, 30, 30]]], np.uint8))[0, 0, 1:])
    gray, red = [int(torch.cdist(torch.tensor([ab], dtype=torch.float32), bins).argmin())
                 for ab in ((0.0, 0.0), red_ab)]
    assert p[gray] > p[red] > 0 and w[red] > w[gray]
    want = 1 / (0.5 * p + 0.5 / len(bins))  # Zhang et al.'s formula, then the expected weight scaled to 1
    torch.testing.assert_close(w, want / (p * want).sum(), rtol=1e-5, atol=0)
    w1, _ = train.rebalancing_weights(crops, bins, 1.0)  # lambda 1: no rebalancing
    torch.testing.assert_close(w1, torch.ones_like(w1))


def test_loss_classify_trains_decodes_and_anneals(tmp_path, capsys):
    d = photos(tmp_path / "flat", 4)
    path = train_main("-data_dir", d, "-checkpoint_dir", tmp_path / "cv", "-max_iters", 6, "-loss", "classify",
                      "-temperature", "0.5", "-optimizer", "adam", "-learning_rate", "0.001", *TINY)
    assert "-loss classify: 226 ab bins" in capsys.readouterr().out
    ck = checkpoint.load(path, "colorize")
    assert ck["config"]["ab_grid"] == 10 and ck["config"]["temperature"] == 0.5
    net, _ = pipeline.load_model(path, torch.device("cpu"))
    x2 = np.random.default_rng(0).random((32, 40)).astype(np.float32) - 0.45
    with torch.no_grad():
        logits, _ = net(torch.from_numpy(x2)[None, None])
    for t in (0.5, 1.0):  # the annealed mean, computed here from the logits
        net.config.temperature = t
        p = torch.softmax(logits[0] / t, 0)
        want = (p[:, None] * net.ab_bins[:, :, None, None]).sum(0) / 200 + 0.5
        np.testing.assert_allclose(pipeline.predict_ab(net, x2, "cpu"), want.numpy(), atol=1e-5)
    with pytest.raises(UserError, match="same kind of -loss"):
        train_main("-data_dir", d, "-checkpoint_dir", tmp_path / "cv2", "-init_from", path, "-max_iters", 7, *TINY)


def test_colorize_temperature_flag_sets_the_decoding_and_refuses_a_regressing_net(tiny_pt, tmp_path):
    from colorize import colorize
    Image.fromarray(photo(5)[..., 0]).save(tmp_path / "g.png")
    with pytest.raises(UserError, match="-temperature: .* regresses ab"):
        colorize.main(parse(colorize.ColorizeOptions, [str(tmp_path / "g.png"), str(tmp_path / "o.png"),
                                                        "-model", str(tiny_pt), "-temperature", "1"]))
    path = train_main("-data_dir", photos(tmp_path / "flat", 3), "-checkpoint_dir", tmp_path / "cv", "-max_iters", 2,
                      "-loss", "classify", *TINY)
    outs = []
    for t in ("0", "0.38", "1"):  # 0 = the model's own (0.38, train.py's default)
        out = tmp_path / f"o{t}.png"
        colorize.main(parse(colorize.ColorizeOptions, [str(tmp_path / "g.png"), str(out), "-model", path,
                                                        "-temperature", t, "-precision", "fp32"]))
        outs.append(np.asarray(Image.open(out)))
    assert (outs[0] == outs[1]).all() and (outs[0] != outs[2]).any()
