"""train.py as users run it: the README's command, bad input as one line, budgets, signals, save modulo, noise."""
import os
import signal
import subprocess
import sys

import numpy as np
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


@pytest.mark.parametrize("case", ["empty folder", "non-images", "bad fineSize"])
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


@pytest.mark.parametrize("sig, k, data", [(signal.SIGTERM, 3, "mnist"), (signal.SIGINT, 4, "folder")],
                         ids=["SIGTERM mid-epoch, mnist", "SIGINT at an epoch's end, folder with a loader worker"])
def test_a_signal_saves_where_it_stopped_and_resume_is_exact(blobs, tmp_path, monkeypatch, capsys, sig, k, data):
    """6 iterations straight vs stopped by a signal after k (a 2-batch epoch: k=3 is inside epoch 2) + resumed:
    the same losses step by step and the same weights. The signal run finishes its step, saves, exits 128+sig;
    a stale temporary of an earlier kill -9 is removed at its start."""
    if data == "folder":
        rng = np.random.default_rng(0)
        (tmp_path / "pics").mkdir()
        for i in range(8):
            Image.fromarray(rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)).save(tmp_path / "pics" / f"{i}.png")
        env = dict(TINY, dataset="folder", DATA_ROOT=str(tmp_path / "pics"), loadSize="36", nThreads="1",
                   batchSize="4", ntrain="8")
    else:
        env = dict(TINY, dataset="mnist", DATA_ROOT=str(blobs))
    env.update(niter="3", PATH="/bin")
    real_step, losses = train.train_step, []

    def step(*a, **kw):
        errD, errG = real_step(*a, **kw)
        losses.append((errD.item(), errG.item()))
        if stop_at and len(losses) == stop_at:
            os.kill(os.getpid(), sig)
        return errD, errG

    monkeypatch.setattr(train, "train_step", step)
    stop_at = 0
    cli(train.main, TrainOptions, [], dict(env, checkpoints_dir=str(tmp_path / "a")))
    straight, losses = losses, []
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / ".tmp-999999999-x.pt").write_bytes(b"half a checkpoint")  # no such pid: stale
    stop_at = k
    before = signal.getsignal(sig)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli(train.main, TrainOptions, [], dict(env, checkpoints_dir=str(tmp_path / "b")))
    assert e.value.code == 128 + sig and signal.getsignal(sig) is before
    out, err = capsys.readouterr()
    saved = tmp_path / "b" / "blobs_2_net_G.pt"
    assert f"stopped in epoch 2 after {k} iterations" in out and "removed 1 unfinished checkpoint temporaries" in out
    assert err.splitlines()[-1] == f"stopped by {signal.Signals(sig).name}: continue exactly with resume={saved}"
    assert not (tmp_path / "b" / ".tmp-999999999-x.pt").exists()
    ck = checkpoint.load(saved, "dcgan_G")
    assert (ck["epoch"], ck["batch"], ck["batches"]) == (2, k - 2, 2)
    stop_at = 0
    cli(train.main, TrainOptions, [], dict(env, checkpoints_dir=str(tmp_path / "b"), resume=str(saved)))
    assert ("in epoch 2 after batch 1 of 2" if k == 3 else "at epoch 3") in capsys.readouterr().out
    assert losses == straight and len(straight) == 6
    for part, kind in (("G", "dcgan_G"), ("D", "dcgan_D")):
        a = checkpoint.load(tmp_path / "a" / f"blobs_3_net_{part}.pt", kind)["model"]
        b = checkpoint.load(tmp_path / "b" / f"blobs_3_net_{part}.pt", kind)["model"]
        assert all(torch.equal(a[n], b[n]) for n in a), part


def test_resume_with_other_net_sizes_says_what_the_checkpoint_imposes(blobs, tmp_path, capsys):
    env = dict(TINY, dataset="mnist", DATA_ROOT=str(blobs), checkpoints_dir=str(tmp_path), PATH="/bin")
    cli(train.main, TrainOptions, [], env)
    capsys.readouterr()
    cli(train.main, TrainOptions, [], dict(env, niter="2", ngf="32", nz="100", resume=str(tmp_path / "blobs_1_net_G.pt")))
    notes = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("note:")]
    assert notes == [f"note: resume={tmp_path}/blobs_1_net_G.pt imposes its nets' nz=8, ngf=4 (not nz=100, ngf=32)"]
    assert checkpoint.load(tmp_path / "blobs_2_net_G.pt", "dcgan_G")["config"]["ngf"] == 4


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
    monkeypatch.setattr(engine, "native_bf16", lambda: True)
    assert isinstance(engine.autocast(torch.device("cpu"), True), torch.autocast)
    ck = checkpoint.load(train.main(opts(blobs, tmp_path, amp=1)), "dcgan_G")
    assert all(torch.isfinite(v).all() for v in ck["model"].values())
    assert not isinstance(engine.autocast(torch.device("cpu"), False), torch.autocast)
