"""train.py: options, learning, exact resume, stale data detection, Ctrl-C, bad input from the shell."""
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from chatbot.tests.conftest import DGK, train
from chatbot.train import TrainOpts, sgd_lr
from common.cli import UserError, parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_options_keep_the_originals_names():
    opt = parse(TrainOpts, ["-hiddenSize", "64", "--dataset", "100", "--cuda", "--opencl", "-gpuid", "-1",
                            "--vocabSize", "5000", "--valSetSize", "0.1", "--numLayers", "2",
                            "--earlyStopOnTrain", "--minLR", "1e-4", "--saturateEpoch", "10"])
    assert (opt.hiddenSize, opt.dataset, opt.cuda, opt.opencl, opt.vocabSize) == (64, 100, True, True, 5000)
    assert opt.earlyStopOnTrain and opt.numLayers == 2 and opt.dataDir == "data/"
    defaults = parse(TrainOpts, [])
    assert (defaults.hiddenSize, defaults.batchSize, defaults.attention, defaults.cuda) == (300, 10, "general", False)
    # chatbot-zh's SGD schedule: 0.05 falls linearly to minLR at saturateEpoch
    sgd = parse(TrainOpts, ["--optim", "sgd", "--learningRate", "0.05", "--minLR", "1e-5", "--saturateEpoch", "20"])
    assert sgd_lr(sgd, 1) == 0.05 and math.isclose(sgd_lr(sgd, 11), 0.05 + 10 * (1e-5 - 0.05) / 20)
    assert sgd_lr(sgd, 30) == 1e-5


def test_training_lowers_validation_perplexity(trained):
    d, state = trained
    hist = state.history
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4, 5, 6]
    val = [h["val_ppl"] for h in hist]  # per character, on held-out dialogs
    assert all(b < a for a, b in zip(val, val[1:])) and val[-1] < 0.5 * val[0]
    assert hist[-1]["train_ppl"] < hist[0]["train_ppl"]
    assert {"model.pt", "checkpoint.pt", "corpus.h5", "vocab.json"} <= set(os.listdir(d))


def _weights(path):
    return torch.load(path, weights_only=True)["model"]


def test_resume_is_exact(tmp_path):
    args = ["--corpus", DGK / "juemds.conv", "--dataset", "150", "--hiddenSize", "16", "--batchSize", "16",
            "--dropout", "0.3", "--maxEpoch", "2"]
    straight = train(tmp_path / "a", *args)
    first = train(tmp_path / "b", *args, "--maxSteps", "5")  # stops in the middle of epoch 1
    assert first.epoch == 1 and first.step == 5
    resumed = train(tmp_path / "b", *args, "--resume")
    a, b = _weights(tmp_path / "a" / "checkpoint.pt"), _weights(tmp_path / "b" / "checkpoint.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history[-1]["val_ppl"] == straight.history[-1]["val_ppl"]


def test_stale_data_is_rebuilt_and_old_checkpoint_refused(tmp_path, capsys):
    args = ["--dataset", "60", "--hiddenSize", "8", "--maxEpoch", "1"]
    train(tmp_path, "--corpus", DGK / "juemds.conv", *args)
    capsys.readouterr()
    with pytest.raises(UserError, match="another corpus or vocabulary"):
        train(tmp_path, "--corpus", DGK / "laoyj.conv", *args, "--resume")
    assert "rebuilding" in capsys.readouterr().out
    with pytest.raises(UserError, match="no such checkpoint"):
        train(tmp_path / "fresh", "--corpus", DGK / "juemds.conv", *args, "--resume")


def _run(*args, **kw):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=300, **kw)


def test_bad_corpus_from_the_command_line_is_one_line_not_a_traceback(tmp_path):
    bad = tmp_path / "nopairs.conv"
    bad.write_text("E\nM 只有一句\n", encoding="utf-8")
    p = _run("-m", "chatbot.train", "--corpus", str(bad), "--dataDir", str(tmp_path / "d"))
    assert p.returncode == 1
    assert p.stderr.strip().startswith("error: ") and "no dialog pairs" in p.stderr
    assert "Traceback" not in p.stderr


def test_ctrl_c_saves_a_resumable_checkpoint(tmp_path):
    d = tmp_path / "d"
    p = subprocess.Popen([sys.executable, "train.py", "--corpus", str(DGK / "juemds.conv"), "--dataset", "300",
                          "--dataDir", str(d), "--hiddenSize", "16", "--batchSize", "4", "--printEvery", "1",
                          "--threads", "1"], cwd=os.path.join(ROOT, "chatbot"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout:  # run from inside chatbot/, as the original's `th train.lua`
        if line.startswith("epoch 1 batch 3/"):
            break
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130
    assert "interrupted: saved" in err and "Traceback" not in err
    ck = torch.load(d / "checkpoint.pt", weights_only=True)
    assert ck["progress"]["epoch"] == 1 and ck["progress"]["step"] >= 3
