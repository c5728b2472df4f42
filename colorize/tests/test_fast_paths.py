"""The inference fast paths (issue 21): bf16 weights in channels-last against the fp32 reference, folder runs
that read and write in a thread pool against one photo at a time, and a start-up that imports no torch."""
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from colorize import colorize, metrics, pipeline
from colorize.model import ColorNet, ColorNetConfig
from colorize.tests.conftest import BSDS, COLORIZE, REPO
from colorize.tests.test_colorize import cli, photo
from common import checkpoint
from common.device import native_bf16

CPU = torch.device("cpu")


def test_to_precision_gives_a_bf16_channels_last_net_whose_output_stays_float32(tiny_pt):
    net, ck = pipeline.load_model(tiny_pt, CPU)
    assert "model" not in ck   # the weights live in the net only (mmap'd, then converted: no second copy kept)
    fp32 = pipeline.predict_ab(net, np.random.default_rng(0).random((48, 64), np.float32), CPU)
    fast = pipeline.to_precision(net, CPU, "bf16")
    conv = fast.low[0][0].weight
    assert conv.dtype == torch.bfloat16 and conv.is_contiguous(memory_format=torch.channels_last)
    assert pipeline.to_precision(net, CPU, "fp32") is net
    out = pipeline.predict_ab(fast, np.random.default_rng(0).random((48, 64), np.float32), CPU)
    assert out.dtype == np.float32 and out.shape == fp32.shape == (2, 24, 32)
    assert 0 < np.abs(out - fp32).max() < 0.02   # bf16 really ran, and close to fp32 (8 mantissa bits)


@pytest.mark.parametrize("size", ["tiny", "paper-shaped"])
def test_the_bf16_command_stays_within_45_db_of_fp32(size, tiny_pt, tmp_path):
    """The CLI's -precision bf16 (bf16 weights, channels-last) on a real photo against -precision fp32.

    tiny: the 1/16-width converted colornet (runs anywhere; bf16 is emulated on a CPU without it).
    paper-shaped: the paper's layers at half width (10.6M parameters, random weights), native bf16 only.
    The last convolution is scaled x100 so that the random network colours strongly (ab std 7.5 Lab units on
    this photo, 1.6 without), which makes the bf16 error show."""
    if size == "tiny":
        net, _ = pipeline.load_model(tiny_pt, CPU)
    else:
        if not native_bf16():
            pytest.skip("this CPU has no native bf16 (AVX512-BF16/AMX): emulated bf16 at this size is far too slow")
        torch.manual_seed(0)
        net = ColorNet(ColorNetConfig(width=2))
    with torch.no_grad():
        net.color[-2].weight.mul_(100)
    model = tmp_path / "net.pt"
    checkpoint.save(model, "colorize", {"model": net.state_dict(), "config": vars(net.config), "mean": 0.45,
                                        "recombine": "yuv"})
    src = sorted(BSDS.glob("val/*.jpg"))[0]
    for p in ("fp32", "bf16"):
        assert cli(src, tmp_path / f"{p}.png", "-model", model, "-precision", p, "-save_ab", "1") == 0
    fp32, bf16 = (np.asarray(Image.open(tmp_path / f"{p}.png")) for p in ("fp32", "bf16"))
    ab = np.load(tmp_path / "fp32_ab.npy")
    assert ab.std() > 4                                    # the network colours: not a trivial match
    assert not np.array_equal(fp32, bf16)                  # and bf16 really ran
    assert metrics.psnr(bf16, fp32) >= 45, metrics.psnr(bf16, fp32)   # measured: tiny 46.8 dB, paper-shaped 51.8


def test_folder_runs_give_the_same_files_with_or_without_the_io_threads(tiny_pt, tmp_path, monkeypatch, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for k in range(5):
        Image.fromarray(photo(k, 40 + 8 * k, 56)).save(src / f"p{k}.png")
    (src / "p2b.png").write_bytes(b"not a png")   # a bad file in the middle: skipped in order, the rest carry on
    threads = {"read": set(), "finish": set()}
    real_read, real_finish = pipeline.read_image, colorize.Colorizer.finish
    monkeypatch.setattr(pipeline, "read_image",
                        lambda p: threads["read"].add(threading.current_thread().name) or real_read(p))
    monkeypatch.setattr(colorize.Colorizer, "finish",
                        lambda self, *a: threads["finish"].add(threading.current_thread().name) or real_finish(self, *a))
    files = {}
    for n in (0, 1, 2):
        for t in threads.values():
            t.clear()
        assert cli(src, tmp_path / f"out{n}", "-model", tiny_pt, "-io_threads", n) == 0
        out = capsys.readouterr()
        assert "colorized 5 image(s)" in out.out and "skipped 1 bad file(s)" in out.out
        assert out.err.count("warning: skipping") == 1 and "p2b.png" in out.err
        files[n] = {p.name: p.read_bytes() for p in sorted((tmp_path / f"out{n}").iterdir())}
        main = threading.main_thread().name
        if n == 0:
            assert threads["read"] == threads["finish"] == {main}      # one photo at a time, all in this thread
        else:
            assert main not in threads["read"] and main not in threads["finish"]   # done beside the network
            assert len(threads["read"] | threads["finish"]) <= n
    assert sorted(files[0]) == [f"p{k}.png" for k in range(5)]
    assert files[0] == files[1] == files[2]                              # byte for byte


def test_help_answers_without_importing_torch():
    # the CPU-second figure of start-up is bench/colorize_bench.py's (timed tests live in make bench)
    probe = ("import sys, runpy; sys.argv = ['colorize.py', '-h']\n"
             "try:\n    runpy.run_path(%r, run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
             % str(COLORIZE / "colorize.py"))
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and "-precision" in r.stdout
    assert r.stdout.strip().splitlines()[-1].startswith("NO-TORCH")
