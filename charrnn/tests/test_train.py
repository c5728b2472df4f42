"""Training: the original's behaviour (splits, names, aborts) and what it lacked (exact resume, Ctrl-C, DDP)."""
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from charrnn import loader, sample, train
from charrnn.tests.conftest import CHARRNN
from common import checkpoint, datasets
from common.cli import UserError, parse, run

TINY = ["-gpuid", "-1", "-rnn_size", "32", "-num_layers", "2", "-batch_size", "5", "-seq_length", "20",
        "-print_every", "0"]


def run_train(data_dir, ckpt_dir, *extra):
    opt = parse(train.TrainOptions, ["-data_dir", str(data_dir), "-checkpoint_dir", str(ckpt_dir), *TINY, *extra])
    return train.main(opt)


def test_tinyshakespeare_split_matches_char_rnn(tmp_path):
    d = tmp_path / "ts"
    d.mkdir()
    os.symlink(datasets.require("tinyshakespeare") / "input.txt", d / "input.txt")
    ids, vocab, joiner = loader.prepare(str(d))
    assert len(ids) == 1115394 and len(vocab) == 65 and joiner == ""
    b = loader.BatchLoader(ids, 50, 50)
    assert (b.ntrain, b.nval, b.ntest) == (423, 23, 0)  # 446 batches, 21,150 iterations at the defaults
    x, y = b.batch("train", 0)
    assert torch.equal(x[0, 1:], y[0, :-1]) and x.shape == (50, 50)
    assert int(b.y.reshape(-1)[-1]) == int(ids[0])  # last target wraps round to the first character
    # validation is the tail of each of the 50 streams, not the tail of the file
    xv, _ = b.batch("val", 0)
    assert torch.equal(xv[1], torch.from_numpy(ids[1 * 22300 + 423 * 50: 1 * 22300 + 424 * 50].astype(np.int64)))


def test_unicode_chars_not_bytes_and_cache(wangfeng_dir):
    ids, vocab, _ = loader.prepare(str(wangfeng_dir))
    text = (wangfeng_dir / "input.txt").read_text(encoding="utf-8")
    assert len(vocab) == len(set(text)) == 1757 and len(ids) == len(text) == 38528
    assert "".join(vocab[i] for i in ids[:200]) == text[:200]
    h5 = wangfeng_dir / "data.h5"
    mtime = h5.stat().st_mtime_ns
    loader.prepare(str(wangfeng_dir))
    assert h5.stat().st_mtime_ns == mtime  # reused
    (wangfeng_dir / "input.txt").write_text(text + "新的一行\n", encoding="utf-8")
    ids2, vocab2, _ = loader.prepare(str(wangfeng_dir))
    assert len(ids2) == len(ids) + 5 and h5.stat().st_mtime_ns != mtime  # rebuilt when input.txt changed


def test_word_tokens_jieba_and_whitespace(wangfeng_dir, shakespeare_dir):
    ids, vocab, joiner = loader.prepare(str(wangfeng_dir), "word")
    assert joiner == "" and "\n" in vocab and any(len(w) >= 2 and "\u4e00" <= w[0] <= "\u9fff" for w in vocab)
    assert len(ids) < 38528 * 0.8  # jieba merges characters into words
    ids, vocab, joiner = loader.prepare(str(shakespeare_dir), "word")
    assert joiner == " " and "Citizen:" in vocab and "\n" in vocab
    assert loader.join_tokens([vocab[i] for i in ids[:12]], joiner) == \
        "First Citizen:\nBefore we proceed any further, hear me speak.\n"  # the corpus's first 12 words
    assert loader.join_tokens(["a", "b", "\n", "c"], " ") == "a b\nc"


@pytest.mark.parametrize("content,message", [(None, "not found.*make download-data"), (b"", "empty"),
                                             (b"caf\xe9 au lait\n", "not valid UTF-8.*line 1"),
                                             (b"tiny text\n", "corpus too small.*need at least 200")])
def test_bad_input_is_one_clear_error(tmp_path, content, message):
    if content is not None:
        (tmp_path / "input.txt").write_bytes(content)
    with pytest.raises(UserError, match=message):
        run_train(tmp_path, tmp_path / "cv")


def test_readme_command_wangfeng(tmp_path):
    """`python train.py -data_dir data/wangfeng`: a clear line without data, training with it."""
    script = str(CHARRNN / "train.py")
    r = subprocess.run([sys.executable, script, "-data_dir", "data/wangfeng", "-gpuid", "-1"], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("error: data/wangfeng/input.txt: not found") and "make download-data" in r.stderr
    (tmp_path / "data" / "wangfeng").mkdir(parents=True)
    (tmp_path / "data" / "wangfeng" / "input.txt").write_bytes((datasets.require("wangfeng") / "input.txt").read_bytes())
    r = subprocess.run([sys.executable, script, "-data_dir", "data/wangfeng", "-gpuid", "-1", "-rnn_size", "32",
                        "-max_epochs", "0.5", "-print_every", "5"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "vocab size: 1757" in r.stdout and re.search(r"5/\d+ \(epoch", r.stdout)
    (ckpt,) = os.listdir(tmp_path / "cv")  # relative to the current directory, as in the original
    assert ckpt.startswith("lm_lstm_epoch0.50_")


# char-rnn's own options and defaults (train.lua's and sample.lua's cmd:option lines, karpathy/char-rnn @6f9487a)
LUA_TRAIN = {"data_dir": "data/tinyshakespeare", "rnn_size": 128, "num_layers": 2, "model": "lstm",
             "learning_rate": 2e-3, "learning_rate_decay": 0.97, "learning_rate_decay_after": 10, "decay_rate": 0.95,
             "dropout": 0, "seq_length": 50, "batch_size": 50, "max_epochs": 50, "grad_clip": 5, "train_frac": 0.95,
             "val_frac": 0.05, "init_from": "", "seed": 123, "print_every": 1, "eval_val_every": 1000,
             "checkpoint_dir": "cv", "savefile": "lstm", "accurate_gpu_timing": 0, "gpuid": 0, "opencl": 0}
LUA_SAMPLE = {"seed": 123, "sample": 1, "primetext": "", "length": 2000, "temperature": 1, "gpuid": 0, "opencl": 0,
              "verbose": 1}


def test_every_lua_option_is_accepted_with_its_default_and_documented(capsys):
    """Against char-rnn's option list (not our own dataclass): each flag exists, has the Lua default, and -h
    shows it as `-name, --name` with a help text."""
    for opts, lua, argv in ((train.TrainOptions, LUA_TRAIN, []), (sample.SampleOptions, LUA_SAMPLE, ["m.pt"])):
        defaults = parse(opts, argv)
        assert {k: getattr(defaults, k) for k in lua} == lua
        with pytest.raises(SystemExit):
            parse(opts, ["-h"])
        out = "".join(capsys.readouterr().out.split())  # argparse wraps lines (also at hyphens): drop spaces
        for name in lua:
            assert re.search(rf"-{name}([A-Z_]+|\{{[a-z,]+\}}),--{name}\1\w", out), name
    assert parse(sample.SampleOptions, ["cv/x.pt"]).model == "cv/x.pt"  # sample.lua's positional model


def test_training_learns_names_checkpoints_and_samples(shakespeare_dir, tmp_path, capsys):
    path = run_train(shakespeare_dir, tmp_path / "cv", "-max_epochs", "3", "-eval_val_every", "50",
                     "-savefile", "lstm", "-learning_rate", "5e-3", "-print_every", "10")
    out = capsys.readouterr().out
    assert re.search(r"10/342 \(epoch 0\.088\), train_loss = \d\.\d{8}, grad/param norm = \d\.\d{4}e[-+]\d\d, "
                     r"time/batch = \d\.\d{4}s", out)
    names = sorted(os.listdir(tmp_path / "cv"))
    assert len(names) == 7 and all(re.fullmatch(r"lm_lstm_epoch\d\.\d\d_\d\.\d{4}\.pt", n) for n in names)
    ck = checkpoint.load(path, "charrnn")
    assert ck["i"] == 342 and ck["epoch"] == 3.0 and len(ck["train_losses"]) == 342
    assert set(ck["val_losses"]) == {50, 100, 150, 200, 250, 300, 342}
    assert ck["train_losses"][0] > 4.0 and ck["val_loss"] < 3.2  # learned something beyond unigram noise
    assert ck["config"] == {"vocab_size": 58, "rnn_size": 32, "num_layers": 2, "model": "lstm", "dropout": 0.0,
                            "wordvec_size": 0}
    assert ck["opt"]["rnn_size"] == 32 and "optimizer" in ck and len(ck["vocab"]) == 58
    assert all(t.device.type == "cpu" for t in ck["model"].values())
    r = subprocess.run([sys.executable, "sample.py", str(path), "-gpuid", "-1", "-length", "50", "-seed", "7",
                        "-verbose", "0", "-primetext", "First"], cwd=CHARRNN, capture_output=True, text=True)
    r2 = subprocess.run([sys.executable, "-m", "charrnn.sample", str(path), "-gpuid", "-1", "-length", "50",
                         "-seed", "7", "-verbose", "0", "-primetext", "First"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == r2.stdout and r.stdout.startswith("First") and len(r.stdout) == 56


@pytest.mark.parametrize("model", ["gru", "rnn"])
def test_gru_and_rnn_train(shakespeare_dir, tmp_path, model):
    path = run_train(shakespeare_dir, tmp_path, "-model", model, "-max_epochs", "0.25", "-learning_rate", "1e-2",
                     "-seq_length", "10", "-num_layers", "1")
    ck = checkpoint.load(path, "charrnn")
    assert ck["config"]["model"] == model and ck["train_losses"][-1] < ck["train_losses"][0] - 0.5


def test_init_from_resumes_exactly(shakespeare_dir, tmp_path):
    common = ["-max_epochs", "1.5", "-eval_val_every", "60", "-dropout", "0.2", "-learning_rate_decay_after", "0.5",
              "-learning_rate_decay", "0.5"]
    full = checkpoint.load(run_train(shakespeare_dir, tmp_path / "a", *common), "charrnn")
    first = next(p for p in os.listdir(tmp_path / "a") if "epoch0.53" in p)  # iteration 60 of 171
    resumed = checkpoint.load(run_train(shakespeare_dir, tmp_path / "b", *common, "-init_from",
                                        str(tmp_path / "a" / first)), "charrnn")
    assert resumed["i"] == full["i"] == 171 and resumed["lr"] == full["lr"] == 1e-3  # decayed once, at epoch 1
    assert resumed["train_losses"] == full["train_losses"]
    for k, v in full["model"].items():
        assert torch.equal(v, resumed["model"][k]), k


def test_init_from_vocab_mismatch_and_wrong_kind_keep_checkpoints(shakespeare_dir, wangfeng_dir, tmp_path):
    path = run_train(shakespeare_dir, tmp_path / "cv", "-max_epochs", "0.2")
    before = open(path, "rb").read()
    with pytest.raises(UserError, match="vocabulary differs"):
        run_train(wangfeng_dir, tmp_path / "cv", "-init_from", path, "-max_epochs", "0.2")
    torch.save({"kind": "chatbot", "format": 1}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="chatbot checkpoint"):
        run_train(shakespeare_dir, tmp_path / "cv", "-init_from", str(tmp_path / "other.pt"))
    assert open(path, "rb").read() == before and len(os.listdir(tmp_path / "cv")) == 1


def test_text_file_as_init_checkpoint_is_one_line(shakespeare_dir, tmp_path, capsys):
    (tmp_path / "text.pt").write_text("not a checkpoint at all\n" * 100)
    opts = parse(train.TrainOptions, ["-data_dir", str(shakespeare_dir), *TINY, "-init_from", str(tmp_path / "text.pt")])
    with pytest.raises(SystemExit) as e:
        run(train.main, opts)
    out, err = capsys.readouterr()
    assert e.value.code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {tmp_path / 'text.pt'}: not a torch-classics checkpoint (")


def test_max_iters_fixes_the_work(shakespeare_dir, tmp_path):
    path = run_train(shakespeare_dir, tmp_path, "-max_iters", "7", "-eval_val_every", "5")
    ck = checkpoint.load(path, "charrnn")
    assert ck["i"] == 7 and len(ck["train_losses"]) == 7 and set(ck["val_losses"]) == {5, 7}


def test_time_budgets_stop_evaluate_and_save(shakespeare_dir, tmp_path, monkeypatch, capsys):
    """-max_time counts wall seconds: steps that sleep 0.3 s (next to no CPU time) stop a -max_time 1 run by its
    4th iteration, whatever the machine's speed (counted in CPU seconds it would run on to -max_iters 40); -max_cpu_time
    1e-9 stops after the first."""
    import time
    real = train.train_step

    def slow(*a, **k):
        time.sleep(0.3)
        return real(*a, **k)
    monkeypatch.setattr(train, "train_step", slow)
    t0 = time.time()
    ck = checkpoint.load(run_train(shakespeare_dir, tmp_path / "w", "-max_time", "1", "-max_iters", "40"), "charrnn")
    assert 1 <= ck["i"] <= 4 and time.time() - t0 >= 1 and list(ck["val_losses"]) == [ck["i"]]
    assert "stopping after -max_time 1s of wall clock" in capsys.readouterr().out
    monkeypatch.setattr(train, "train_step", real)
    ck = checkpoint.load(run_train(shakespeare_dir, tmp_path / "c", "-max_cpu_time", "1e-9"), "charrnn")
    assert ck["i"] == 1 and list(ck["val_losses"]) == [1]
    assert "stopping after -max_cpu_time 1e-09 CPU s" in capsys.readouterr().out


def test_exploding_loss_stops_cleanly(shakespeare_dir, tmp_path):
    with pytest.raises(UserError, match="loss is exploding|loss is NaN"):
        run_train(shakespeare_dir, tmp_path / "cv", "-learning_rate", "50", "-grad_clip", "0", "-max_epochs", "2",
                  "-eval_val_every", "1")
    assert all(re.fullmatch(r"lm_lstm_epoch\d\.\d\d_\d+\.\d{4}\.pt", n) for n in os.listdir(tmp_path / "cv"))
    assert os.listdir(tmp_path / "cv")  # the checkpoints written before the explosion are kept


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_write_a_resumable_checkpoint(shakespeare_dir, tmp_path, sig, code):
    (tmp_path / "cv").mkdir()
    (tmp_path / "cv" / ".tmp-999999999-abc.pt").write_bytes(b"half a checkpoint")  # a kill -9 mid-save
    p = subprocess.Popen([sys.executable, "train.py", "-data_dir", str(shakespeare_dir), "-checkpoint_dir",
                          str(tmp_path / "cv"), *TINY[:-1], "1", "-max_epochs", "1000"], cwd=CHARRNN,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in p.stdout:
        if line.startswith("30/"):
            break
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert f"stopped by {sig.name}: resume with -init_from" in err
    (name,) = os.listdir(tmp_path / "cv")
    assert re.fullmatch(r"lm_lstm_epoch0\.\d\d_interrupted\.pt", name)
    ck = checkpoint.load(tmp_path / "cv" / name, "charrnn")
    assert ck["i"] >= 30 and len(ck["train_losses"]) == ck["i"]  # a whole iteration, never half of one
    resumed = run_train(shakespeare_dir, tmp_path / "cv", "-init_from", str(tmp_path / "cv" / name),
                        "-max_epochs", str((ck["i"] + 2) / 114))
    assert checkpoint.load(resumed, "charrnn")["i"] == ck["i"] + 2


def test_word_level_model_trains_and_samples_chinese(wangfeng_dir, tmp_path):
    path = run_train(wangfeng_dir, tmp_path, "-tokens", "word", "-batch_size", "10", "-max_epochs", "0.3",
                     "-wordvec_size", "16")
    ck = checkpoint.load(path, "charrnn")
    assert ck["tokens"] == "word" and ck["config"]["wordvec_size"] == 16
    import io
    out = io.StringIO()
    sample.main(parse(sample.SampleOptions, [path, "-gpuid", "-1", "-length", "30", "-verbose", "0",
                                             "-primetext", "我在这里 abc"]), out)
    assert out.getvalue().startswith("我") and re.search(r"[\u4e00-\u9fff]{2}", out.getvalue()[3:])


def test_sample_warns_on_out_of_vocabulary_primetext(shakespeare_dir, tmp_path, capsys):
    path = run_train(shakespeare_dir, tmp_path, "-max_epochs", "0.1")
    capsys.readouterr()
    run(sample.main, parse(sample.SampleOptions, [path, "-gpuid", "-1", "-length", "10", "-verbose", "0",
                                                  "-primetext", "Firstë 你好"]))
    out, err = capsys.readouterr()
    assert "3 symbol(s) not in the model's vocabulary" in err and "ë" in err
    assert out.startswith("First ") and len(out) == len("First ") + 11


def test_torchrun_two_processes_equal_one(shakespeare_dir, tmp_path):
    args = ["-data_dir", str(shakespeare_dir), *TINY, "-batch_size", "4", "-max_epochs", "0.1", "-seed", "5"]
    single = checkpoint.load(run_train(shakespeare_dir, tmp_path / "one", *args[2:]), "charrnn")
    port = free_port()  # a fixed port collides with any other torchrun on the machine
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    r = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", port, "train.py", *args,
                        "-checkpoint_dir", str(tmp_path / "two")], cwd=CHARRNN, capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    (name,) = os.listdir(tmp_path / "two")  # only rank 0 writes
    ddp = checkpoint.load(tmp_path / "two" / name, "charrnn")
    assert ddp["i"] == single["i"] and ddp["i"] > 5
    np.testing.assert_allclose(ddp["train_losses"], single["train_losses"], rtol=1e-5)
    for k, v in single["model"].items():
        torch.testing.assert_close(ddp["model"][k], v, rtol=1e-4, atol=1e-5)


def test_init_from_lua_checkpoint_fine_tunes(tmp_path, capsys):
    d = tmp_path / "ts"
    d.mkdir()
    os.symlink(datasets.require("tinyshakespeare") / "input.txt", d / "input.txt")
    from charrnn.tests.conftest import T7_FIXTURES
    path = run_train(d, tmp_path / "cv", "-init_from", str(T7_FIXTURES / "lm_lstm_tiny_epoch0.47_2.9739.t7"),
                     "-max_epochs", "0.0005", "-val_frac", "0.002", "-train_frac", "0.998")
    ck = checkpoint.load(path, "charrnn")
    # the checkpoint's architecture wins over the flags (1x32, as char-rnn's init_from), said in one line; the
    # options are kept as given (-num_layers 2), the checkpoint's Config says what the model is
    assert (ck["config"]["rnn_size"], ck["config"]["num_layers"], ck["opt"]["num_layers"]) == (32, 1, 2)
    assert "imposes -model lstm -num_layers 1 -rnn_size 32 -wordvec_size 0 (instead of -num_layers 2)" in \
        capsys.readouterr().out
    assert ck["train_losses"][0] < 3.3 and ck["i"] == 5


def test_download_data_fetches_and_fails_clearly_offline(tmp_path):
    from charrnn.download_data import download
    src = tmp_path / "remote.txt"
    src.write_text("First Citizen:\n")
    dest = download(src.as_uri(), str(tmp_path / "data" / "x" / "input.txt"))
    assert open(dest).read() == "First Citizen:\n"
    with pytest.raises(UserError, match="could not download .*offline"):
        download("http://127.0.0.1:9/input.txt", str(tmp_path / "y" / "input.txt"), timeout=2)
    assert not os.path.exists(tmp_path / "y" / "input.txt.part")


def test_demo_corpus_is_offline_prose(tmp_path):
    from charrnn.demo_corpus import main as write_corpus
    write_corpus(str(tmp_path / "d" / "input.txt"))
    text = (tmp_path / "d" / "input.txt").read_text(encoding="utf-8")
    assert len(text) > 300_000 and "+---" not in text and "attribute" in text
    ids, vocab, _ = loader.prepare(str(tmp_path / "d"))
    assert len(ids) == len(text) and loader.BatchLoader(ids, 50, 50).ntrain >= 150


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])
