"""train.py as users run it: the README's command, bad input as one line, budgets, signals, save modulo, noise."""
import os
import signal
import subprocess
import sys

import pytest
import torch
from PIL import Image

from common import checkpoint
from dcgan import train
from dcgan.model import make_noise
from dcgan.options import ConvertOptions, FidOptions, TrainOptions, cli, parse_env

TINY = {"loadSize": "32", "fineSize": "32", "batchSize": "16", "ntrain": "32", "ngf": "4", "ndf": "4", "nz": "8",
        "nThreads": "0", "niter": "1", "gpu": "0", "seed": "7", "name": "blobs", "print_every": "0",
        "display": "0"}


def opts(blobs, tmp_path, **kw):
    o = parse_env(TrainOptions, [], dict(TINY, dataset="mnist", DATA_ROOT=str(blobs),
                                         checkpoints_dir=str(tmp_path / "ck")))
    for k, v in kw.items():
        setattr(o, k, v)
    return o


def test_readme_flag_command(blobs, tmp_path):
    """`python train.py -dataset mnist -DATA_ROOT ... -fineSize 32 -loadSize 32 -flip 0`, as in the README, through
    the same entry point as `python train.py` (running scripts from inside dcgan/ is tested by test_generate's
    subprocess, torchrun's in test_train and demo.sh; a subprocess here would cost ~10 s of imports)."""
    argv = ["-dataset", "mnist", "-DATA_ROOT", str(blobs), "-fineSize", "32", "-loadSize", "32", "-flip", "0",
            "-checkpoints_dir", str(tmp_path)]
    for k, v in TINY.items():
        if k not in ("loadSize", "fineSize"):
            argv += [f"-{k}", v]
    cli(train.main, TrainOptions, argv, {"PATH": "/bin"})
    assert checkpoint.load(tmp_path / "blobs_1_net_G.pt", "dcgan_G")["opt"]["flip"] == 0


@pytest.mark.parametrize("case", ["empty folder", "non-images", "unknown variable", "bad fineSize"])
def test_bad_input_is_one_line_and_leaves_checkpoints_alone(tmp_path, capsys, case):
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "earlier_1_net_G.pt").write_bytes(b"an earlier checkpoint")
    data = tmp_path / "data"
    data.mkdir()
    env = dict(TINY, dataset="folder", DATA_ROOT=str(data), checkpoints_dir=str(ck), PATH="/bin")
    says = "no readable images"
    if case == "non-images":
        (data / "a.jpg").write_text("not a jpeg")
        (data / "notes.txt").write_text("hi")
    elif case == "unknown variable":
        env["batchsize"], says = "8", "did you mean batchSize?"
    elif case == "bad fineSize":
        env["fineSize"], says = "48", "fineSize=48: must be one of 32, 64, 128"
    with pytest.raises(SystemExit) as e:
        cli(train.main, TrainOptions, [], env)
    err = capsys.readouterr().err.splitlines()
    assert e.value.code == 1 and len(err) == 1 and says in err[-1], err
    assert os.listdir(ck) == ["earlier_1_net_G.pt"] and (ck / "earlier_1_net_G.pt").read_bytes() == b"an earlier checkpoint"


HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_second_run_into_a_folder_in_use_stops_with_one_line(blobs, tmp_path, capsys):
    """Another process holds <name>.lock (as a running train.py does): this run stops before touching anything;
    once that process is gone (even by kill -9, leaving the file behind) the folder is free again."""
    ck = tmp_path / "ck"
    ck.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(ck / "blobs.lock")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        env = dict(TINY, dataset="mnist", DATA_ROOT=str(blobs), checkpoints_dir=str(ck), PATH="/bin")
        with pytest.raises(SystemExit) as e:
            cli(train.main, TrainOptions, [], env)
        err = capsys.readouterr().err.splitlines()
        assert e.value.code == 1 and len(err) == 1, err
        assert f"another train.py (pid {holder.pid}) is writing blobs_* checkpoints there" in err[0]
        assert "another name= or checkpoints_dir=" in err[0]
        assert os.listdir(ck) == ["blobs.lock"]
        cli(train.main, TrainOptions, [], dict(env, name="other"))  # another name in the same folder is fine
        assert os.path.exists(ck / "other_1_net_G.pt")
    finally:
        holder.kill()
        holder.wait()
    cli(train.main, TrainOptions, [], env)  # the holder died: its lock went with it
    assert sorted(os.listdir(ck)) == ["blobs_1_net_D.pt", "blobs_1_net_G.pt", "other_1_net_D.pt", "other_1_net_G.pt"]


def test_a_fresh_run_over_earlier_checkpoints_says_resume(blobs, tmp_path, capsys):
    ck = tmp_path / "ck"
    env = dict(TINY, dataset="mnist", DATA_ROOT=str(blobs), checkpoints_dir=str(ck), PATH="/bin")
    cli(train.main, TrainOptions, [], env)
    before = {f: (ck / f).read_bytes() for f in os.listdir(ck)}
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli(train.main, TrainOptions, [], dict(env, niter="2"))
    err = capsys.readouterr().err.splitlines()
    assert e.value.code == 1 and len(err) == 1, err
    assert f"already holds checkpoints of a run named blobs (epochs 1-1); continue it with resume={ck}/blobs_1_net_G.pt, " \
           f"or pass another name=" in err[0]
    assert {f: (ck / f).read_bytes() for f in os.listdir(ck)} == before
    cli(train.main, TrainOptions, [], dict(env, niter="2", resume=str(ck / "blobs_1_net_G.pt")))  # as it says
    assert checkpoint.load(ck / "blobs_2_net_G.pt", "dcgan_G")["epoch"] == 2


@pytest.mark.parametrize("budget", ["max_time", "max_cpu_time"])
def test_time_budget_stops_and_saves(blobs, tmp_path, capsys, budget):
    last = train.main(opts(blobs, tmp_path, niter=5, **{budget: 1e-9}))
    assert last.endswith("blobs_1_net_G.pt")  # stopped after the first iteration of epoch 1, saved it
    assert "time budget reached in epoch 1 after 1 iterations" in capsys.readouterr().out


def test_sigterm_finishes_the_iteration_saves_and_stops(blobs, tmp_path, monkeypatch, capsys):
    real_step, calls = train.train_step, []

    def step(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(*a, **k)

    monkeypatch.setattr(train, "train_step", step)
    before = signal.getsignal(signal.SIGTERM)
    last = train.main(opts(blobs, tmp_path, niter=5))
    assert len(calls) == 3 and last.endswith("blobs_2_net_G.pt")
    assert "stopped in epoch 2 after 3 iterations" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back


def test_epoch_save_modulo_and_the_last_epoch(blobs, tmp_path):
    train.main(opts(blobs, tmp_path, niter=3, epoch_save_modulo=2, ntrain=16))
    assert sorted(f for f in os.listdir(tmp_path / "ck") if f.endswith("_G.pt")) == \
        ["blobs_2_net_G.pt", "blobs_3_net_G.pt"]


def test_uniform_noise(blobs, tmp_path):
    z = make_noise((2000, 8, 1, 1), "uniform")
    assert z.min() >= -1 and z.max() <= 1 and abs(z.mean()) < 0.05 and z.std() > 0.55  # U(-1, 1): std 0.577
    ck = checkpoint.load(train.main(opts(blobs, tmp_path, noise="uniform")), "dcgan_G")
    assert ck["fixed_noise"].abs().max() <= 1


def test_readme_positional_commands_parse():
    """`python fid.py NET FOLDER` and `python convert.py in.t7 [out.pt]`."""
    f = parse_env(FidOptions, ["checkpoints/experiment1_25_net_G.pt", "myimages/"], {})
    assert (f.path1, f.path2) == ("checkpoints/experiment1_25_net_G.pt", "myimages/")
    c = parse_env(ConvertOptions, ["in.t7"], {})
    assert (c.input, c.output) == ("in.t7", "")


def test_grayscale_folder_trains_with_nc_1(tmp_path):
    """demo.sh's setting: a folder of grayscale faces, nc=1."""
    (tmp_path / "faces").mkdir()
    for i in range(4):
        Image.new("L", (25, 25), 40 * i).save(tmp_path / "faces" / f"{i}.png")
    o = parse_env(TrainOptions, [], dict(TINY, dataset="folder", DATA_ROOT=str(tmp_path / "faces"), nc="1",
                                         batchSize="4", checkpoints_dir=str(tmp_path / "ck")))
    ck = checkpoint.load(train.main(o), "dcgan_G")
    assert ck["config"]["nc"] == 1
    assert torch.equal(torch.tensor(ck["fixed_noise"].shape), torch.tensor([4, 8, 1, 1]))


def test_progress_bar_on_a_terminal(blobs, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    train.main(opts(blobs, tmp_path, print_every=1))
    out, err = capsys.readouterr()
    assert "2/2" in err and "Err_D=" in err  # tqdm's bar, with the losses
    assert out.count("Epoch: [1][") == 2  # main.lua's log lines still printed, above the bar


def test_amp_forced_bf16_autocast_trains_finite(blobs, tmp_path, monkeypatch):
    """amp=1 where the CPU has bf16 (forced here): the same run trains under bfloat16 autocast."""
    import dcgan.engine as engine
    monkeypatch.setattr(engine, "cpu_has_bf16", lambda: True)
    assert isinstance(engine.autocast(torch.device("cpu"), True), torch.autocast)
    ck = checkpoint.load(train.main(opts(blobs, tmp_path, amp=1)), "dcgan_G")
    assert all(torch.isfinite(v).all() for v in ck["model"].values())
    assert not isinstance(engine.autocast(torch.device("cpu"), False), torch.autocast)
