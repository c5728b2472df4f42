"""train.py: options, learning, exact resume, stale data detection, Ctrl-C, bad input from the shell."""
import dataclasses
import math
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from chatbot.corpus import main as corpus_main
from chatbot.prep import CorpusOpts
from chatbot.tests.conftest import DGK, train
from chatbot.train import Progress, TrainOpts, learning_rate, sgd_lr
from common.cli import UserError, parse
from common.device import native_bf16

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


def test_learning_rate_warmup_and_decay_over_the_budget():
    opt = parse(TrainOpts, ["--learningRate", "0.01", "--warmup", "10", "--decay", "linear", "--maxEpoch", "2"])
    lr = [learning_rate(opt, Progress(steps_done=n), 50) for n in (0, 4, 9, 50, 99, 100)]
    expected = [0.001, 0.01 * 0.5 * (1 - 4 / 100), 0.01 * (1 - 9 / 100), 0.005, 0.0001, 0.0]  # warmup x decay
    assert all(math.isclose(a, b, abs_tol=1e-12) for a, b in zip(lr, expected))  # over 2 epochs of 50 batches
    cos = parse(TrainOpts, ["--learningRate", "0.01", "--decay", "cosine", "--maxCpuTime", "600", "--maxEpoch", "2"])
    # with a CPU budget the rate follows the CPU seconds spent, not the batches
    assert learning_rate(cos, Progress(steps_done=99, cpu_s=0.0), 50) == 0.01
    assert math.isclose(learning_rate(cos, Progress(steps_done=0, cpu_s=300.0), 50), 0.005)
    assert learning_rate(cos, Progress(cpu_s=700.0), 50) == 0.0
    assert learning_rate(parse(TrainOpts, ["--learningRate", "0.01"]), Progress(steps_done=10**6), 50) == 0.01
    with pytest.raises(UserError, match="--decay"):
        train("unused", "--decay", "exp")


def test_resume_is_exact(tmp_path):
    args = ["--corpus", DGK / "juemds.conv", "--dataset", "150", "--hiddenSize", "16", "--batchSize", "16",
            "--dropout", "0.3", "--maxEpoch", "2", "--warmup", "3", "--decay", "cosine"]
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


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_save_a_resumable_checkpoint(tmp_path, sig, code):
    """Ctrl-C, and SIGTERM (kill, docker stop, a scheduler), finish the batch, save a checkpoint that
    --resume continues, and exit 130/143 (common.signals); a kill -9's stale temporary is removed."""
    d = tmp_path / "d"
    d.mkdir()
    (d / ".tmp-999999999-abc.pt").write_bytes(b"half a checkpoint")  # a kill -9 in the middle of a save
    p = subprocess.Popen([sys.executable, "train.py", "--corpus", str(DGK / "juemds.conv"), "--dataset", "300",
                          "--dataDir", str(d), "--hiddenSize", "16", "--batchSize", "4", "--printEvery", "1",
                          "--threads", "1", "--patience", "0"], cwd=os.path.join(ROOT, "chatbot"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         # a shell's background job inherits SIGINT ignored, and Python then raises no
                         # KeyboardInterrupt: give the child the terminal default a user's Ctrl-C meets
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in p.stdout:  # run from inside chatbot/, as the original's `th train.lua`
        if line.startswith("epoch 1 batch 3/"):
            break
    time.sleep(0.2)
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == code, err
    assert f"stopped by {sig.name}: saved {d / 'checkpoint.pt'} (epoch 1, batch " in err and "Traceback" not in err
    assert not (d / ".tmp-999999999-abc.pt").exists() and not [n for n in os.listdir(d) if n.startswith(".tmp-")]
    ck = torch.load(d / "checkpoint.pt", weights_only=True)
    assert ck["progress"]["epoch"] == 1 and ck["progress"]["step"] >= 3
    assert ck["progress"]["step"] == ck["progress"]["steps_done"]  # whole batches, never half of one
    state = train(d, "--corpus", DGK / "juemds.conv", "--dataset", "300", "--hiddenSize", "16", "--batchSize", "4",
                  "--patience", "0", "--resume", "--maxSteps", str(ck["progress"]["steps_done"] + 2))
    assert state.steps_done == ck["progress"]["steps_done"] + 2  # --resume continues from it


SMALL = ["--corpus", DGK / "juemds.conv", "--dataset", "120", "--hiddenSize", "16", "--batchSize", "16"]


def test_sgd_follows_chatbot_zh_schedule(tmp_path):
    state = train(tmp_path, *SMALL, "--optim", "sgd", "--learningRate", "0.5", "--minLR", "0.1",
                  "--saturateEpoch", "2", "--maxEpoch", "3", "--patience", "0")
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    group = ck["optimizer"]["param_groups"][0]
    assert group["momentum"] == 0.9 and "exp_avg" not in str(ck["optimizer"]["state"])  # SGD, not Adam
    assert math.isclose(group["lr"], 0.1)  # epoch 3: 0.5 - 2 * (0.5 - 0.1) / 2, floored at minLR
    train_ppl = [h["train_ppl"] for h in state.history]
    assert train_ppl[-1] < train_ppl[0]


def test_early_stopping_counts_epochs_without_improvement(tmp_path, capsys):
    # learning rate 0: perplexity never improves after epoch 1, so patience 2 stops after epoch 3
    state = train(tmp_path, *SMALL, "--learningRate", "0", "--dropout", "0", "--patience", "2", "--maxEpoch", "10")
    assert [h["epoch"] for h in state.history] == [1, 2, 3] and state.bad_epochs == 2
    assert "early stop: no better perplexity for 2 epochs" in capsys.readouterr().out
    # --patience 0 never stops early
    state = train(tmp_path / "b", *SMALL, "--learningRate", "0", "--patience", "0", "--maxEpoch", "4")
    assert [h["epoch"] for h in state.history] == [1, 2, 3, 4]


def test_time_and_step_limits_stop_mid_epoch_resumably(tmp_path, capsys):
    for limit in ("--maxTime", "--maxCpuTime"):
        d = tmp_path / limit.strip("-")
        state = train(d, *SMALL, limit, "0.000001", "--maxEpoch", "5")
        assert (state.epoch, state.step, state.steps_done) == (1, 1, 1)  # stopped after the first batch
        ck = torch.load(d / "checkpoint.pt", weights_only=True)
        assert ck["progress"]["step"] == 1 and (d / "model.pt").exists()
        assert "stopped at epoch 1 batch 1" in capsys.readouterr().out
    state = train(tmp_path / "steps", *SMALL, "--maxSteps", "9", "--maxEpoch", "5")
    n = state.history[0]["step"] if state.epoch == 2 else None  # batches per epoch (120 dialogs)
    assert state.steps_done == 9 and (n is None or state.epoch == 1 + 9 // n)


def test_max_time_is_wall_clock_and_max_cpu_time_counts_the_cpu(tmp_path, monkeypatch):
    """Batches that sleep 0.3 s spend wall time and next to no CPU time: --maxTime 1 stops by the 4th batch
    whatever the machine's speed, while --maxCpuTime 1 lets all 6 (--maxSteps) run."""
    import chatbot.train as trainer
    real = trainer.collate

    def slow(*a, **k):
        time.sleep(0.3)
        return real(*a, **k)
    monkeypatch.setattr(trainer, "collate", slow)
    state = train(tmp_path / "wall", *SMALL, "--maxTime", "1", "--maxSteps", "40", "--maxEpoch", "5")
    assert 1 <= state.steps_done <= 4
    t0 = time.process_time()
    state = train(tmp_path / "cpu", *SMALL, "--maxCpuTime", "1", "--maxSteps", "6", "--maxEpoch", "5")
    assert state.steps_done == 6 or time.process_time() - t0 >= 1  # (the CPU budget only if 6 tiny batches cost 1 s)


def test_two_layers_dot_attention_and_full_softmax_train_and_talk(tmp_path):
    from chatbot.bot import Chatbot
    state = train(tmp_path, *SMALL, "--numLayers", "2", "--attention", "dot", "--softmax", "full",
                  "--precision", "fp32", "--maxEpoch", "2", "--learningRate", "0.01")
    bot = Chatbot(tmp_path / "model.pt")
    assert bot.cfg.num_layers == 2 and bot.cfg.attention == "dot" and bot.cfg.softmax == "full"
    assert bot.model.encoder.rnn.num_layers == 2 and bot.reply("你好")
    assert state.history[1]["train_ppl"] < state.history[0]["train_ppl"]


def test_corpus_cli_and_train_share_options_so_a_seeded_corpus_is_reused(tmp_path):
    d = tmp_path / "d"
    corpus_main(parse(CorpusOpts, ["--corpus", str(DGK / "juemds.conv"), "--dataDir", str(d), "--dataset", "80",
                                   "--seed", "7", "--context", "1"]))
    mtime = os.path.getmtime(d / "corpus.h5")
    train(d, "--corpus", DGK / "juemds.conv", "--dataset", "80", "--seed", "7", "--context", "1", "--hiddenSize", "8",
          "--maxSteps", "1")
    assert os.path.getmtime(d / "corpus.h5") == mtime  # not rebuilt
    # the model knows its context: the bot feeds it the turns before the question
    from chatbot.bot import Chatbot
    from chatbot.tokens import SEP
    bot = Chatbot(d / "model.pt")
    seen = []
    bot.reply_ids = lambda ids, trace=None: seen.append(ids) or [5]
    bot.reply("好", history=["你", "在", "吗"])  # context 1: only the last earlier turn, 吗
    assert bot.context == 1 and seen[-1] == [bot.word_to_id["好"], SEP, bot.word_to_id["吗"]]
    assert {f.name for f in dataclasses.fields(CorpusOpts)} <= {f.name for f in dataclasses.fields(TrainOpts)}


# the originals' options (chatbot-zh-torch7 train.lua, and what neuralconvo added or changed: its defaults win
# where both have one); --seqLstm and --weightDecay (never passed to the optimizer) are not carried over
ORIGINAL_TRAIN = {"dataset": 0, "minWordFreq": 1, "cuda": False, "opencl": False, "hiddenSize": 300,
                  "learningRate": 0.001, "momentum": 0.9, "minLR": 1e-5, "saturateEpoch": 20, "maxEpoch": 50,
                  "batchSize": 10, "valSetSize": 0.05, "earlyStopOnTrain": False, "vocabSize": -1, "numLayers": 1,
                  "gradientClipping": 5, "dropout": 0.2}


def test_every_original_flag_is_accepted_with_its_default_and_documented(capsys):
    """Against the originals' flag list (not our own dataclass): each exists with its default and is in -h."""
    defaults = parse(TrainOpts, [])
    assert {k: getattr(defaults, k) for k in ORIGINAL_TRAIN} == ORIGINAL_TRAIN
    with pytest.raises(SystemExit) as e:
        parse(TrainOpts, ["-h"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert e.value.code == 0
    for name in ORIGINAL_TRAIN:
        assert re.search(rf"-{name}( [A-Z]+)?, --{name}( [A-Z]+)? \S", out), name
    assert "(default: 'adaptive')" in out and "AVX512-BF16" in out
    from chatbot.eval import EvalOpts  # eval.lua's --cuda and --debug
    assert (parse(EvalOpts, ["--cuda", "--debug"]).cuda, parse(EvalOpts, ["--debug"]).debug) == (True, True)


def test_bad_options_are_one_line(tmp_path):
    for args, message in ((["--softmax", "sampled"], "--softmax"), (["--precision", "fp8"], "--precision"),
(["--optim", "rmsprop"], "--optim")):
        with pytest.raises(UserError, match=message):
            train(tmp_path, *SMALL, *args)


def test_exploding_loss_stops_with_one_line(tmp_path):
    with pytest.raises(UserError, match=r"loss is NaN at epoch 1 batch \d+: stopping; .*lower --learningRate"):
        train(tmp_path, *SMALL, "--learningRate", "1e30", "--maxEpoch", "1")


@pytest.mark.skipif(native_bf16(), reason="this CPU runs bf16 natively")
def test_bf16_on_a_cpu_without_native_bf16_is_one_line(tmp_path):
    p = _run("-m", "chatbot.train", *map(str, SMALL), "--dataDir", str(tmp_path / "d"), "--precision", "bf16")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.strip().startswith("error: --precision bf16: this CPU has no native bf16")
