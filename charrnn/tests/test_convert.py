"""Original char-rnn .t7 checkpoints: real ones from the Lua code, and ones the tests write."""
import io
import subprocess
import sys

import numpy as np
import pytest
import torch

from charrnn import lua_checkpoint, sample, train
from charrnn.tests.conftest import CHARRNN, T7_FIXTURES
from charrnn.tests.t7_graphs import make_checkpoint, reference_logprobs
from common import checkpoint
from common.cli import UserError, parse, run
from common.testing import t7_writer

REAL = {"lstm": "lstm_tiny_epoch0.47_2.9739", "gru": "gru_tiny_epoch0.47_2.7945", "rnn": "rnn_tiny_epoch0.47_2.6768"}


def model_logprobs(model, ids):
    state, out = None, []
    with torch.no_grad():
        for i in ids:
            logits, state = model(torch.tensor([[i]]), state)
            out.append(torch.log_softmax(logits[0, 0].double(), -1).numpy())
    return np.array(out)


def read_reference(name):
    rows = [line.rstrip("\n").split("\t") for line in open(T7_FIXTURES / f"logprobs_{name}.txt") if line[0] != "#"]
    ids = [int(r[2]) - 1 for r in rows]
    return ids, [int(r[3]) - 1 for r in rows], np.array([[float(v) for v in r[4].split()] for r in rows])


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_real_checkpoint_logprobs_match_lua(kind):
    model, vocab, opt = lua_checkpoint.load_t7(T7_FIXTURES / f"lm_{REAL[kind]}.t7")
    assert opt["model"] == kind and len(vocab) == 65 and vocab[0] == "\n"
    ids, argmax, ref = read_reference(REAL[kind])
    assert "".join(vocab[i] for i in ids) == "First Citizen"
    ours = model_logprobs(model, ids)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    assert list(ours.argmax(1)) == argmax


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_real_checkpoint_argmax_sample_is_identical(kind):
    out = io.StringIO()
    sample.main(parse(sample.SampleOptions, [str(T7_FIXTURES / f"lm_{REAL[kind]}.t7"), "-gpuid", "-1", "-sample", "0",
                                             "-primetext", "The ", "-length", "300", "-verbose", "0"]), out)
    expected = (T7_FIXTURES / f"lm_{REAL[kind]}_argmax_primeThe_len300.txt").read_text()
    assert out.getvalue() == expected


def test_convert_cli_writes_pt_that_samples_the_same(tmp_path):
    src = T7_FIXTURES / f"lm_{REAL['lstm']}.t7"
    r = subprocess.run([sys.executable, "convert.py", str(src), str(tmp_path / "lstm.pt")], cwd=CHARRNN,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ck = checkpoint.load(tmp_path / "lstm.pt", "charrnn")
    assert ck["unit"] == "byte" and ck["opt"]["rnn_size"] == 32 and abs(ck["val_loss"] - 2.9739) < 1e-4
    r = subprocess.run([sys.executable, "sample.py", str(tmp_path / "lstm.pt"), "-gpuid", "-1", "-sample", "0",
                        "-primetext", "The ", "-length", "300", "-verbose", "0"], cwd=CHARRNN, capture_output=True,
                       text=True)
    assert r.stdout == (T7_FIXTURES / f"lm_{REAL['lstm']}_argmax_primeThe_len300.txt").read_text()


@pytest.mark.parametrize("kind,H,L,tensor_type", [("lstm", 7, 3, "torch.CudaTensor"), ("gru", 5, 2, "torch.CudaTensor"),
                                                  ("rnn", 9, 1, "torch.FloatTensor"), ("lstm", 4, 1, "torch.DoubleTensor")])
def test_written_checkpoints_other_sizes_and_gpu_storages(tmp_path, kind, H, L, tensor_type):
    text = "héllo wörld, 你好\n"
    ck, W, byte_vocab = make_checkpoint(kind, text, H, L, seed=H * 10 + L)
    path = tmp_path / f"{kind}.t7"
    t7_writer.save(path, ck, tensor_type=tensor_type)
    model, vocab, _ = lua_checkpoint.load_t7(path)
    assert [ord(v) for v in vocab] == byte_vocab
    ids = [vocab.index(chr(c)) for c in "wörld 你".encode()]
    dtype = np.float64 if tensor_type == "torch.DoubleTensor" else np.float32
    ref = reference_logprobs(kind, W, len(vocab), H, L, ids, dtype)
    np.testing.assert_allclose(model_logprobs(model, ids), ref, rtol=0, atol=1e-6)
    # sampling a byte-level model turns bytes back into UTF-8 text
    out = io.StringIO()
    sample.main(parse(sample.SampleOptions, [str(path), "-gpuid", "-1", "-primetext", "你好", "-length", "40",
                                             "-verbose", "0"]), out)
    assert out.getvalue().startswith("你好") and out.getvalue().endswith("\n")


def test_not_a_charrnn_checkpoint(tmp_path):
    t7_writer.save(tmp_path / "x.t7", {"weights": np.ones(3)})
    with pytest.raises(UserError, match="not a char-rnn checkpoint"):
        lua_checkpoint.load_t7(tmp_path / "x.t7")
    (tmp_path / "y.t7").write_text("hello")
    with pytest.raises(UserError, match="not a readable Torch7"):
        lua_checkpoint.load_t7(tmp_path / "y.t7")


@pytest.mark.parametrize("content", ["text", "truncated"])
def test_bad_t7_given_to_sample_and_train_is_one_line(tmp_path, capsys, content):
    real = (T7_FIXTURES / f"lm_{REAL['lstm']}.t7").read_bytes()
    bad = tmp_path / "bad.t7"
    bad.write_bytes(real[:len(real) // 2] if content == "truncated" else b"First Citizen:\n" * 50)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "input.txt").write_text("abc " * 2000)
    for main, opts in ((sample.main, parse(sample.SampleOptions, [str(bad), "-gpuid", "-1"])),
                       (train.main, parse(train.TrainOptions, ["-data_dir", str(tmp_path / "d"), "-gpuid", "-1",
                                                               "-init_from", str(bad)]))):
        with pytest.raises(SystemExit) as e:
            run(main, opts)
        out, err = capsys.readouterr()
        assert e.value.code == 1 and "Traceback" not in err and err.count("\n") == 1
        assert err.startswith(f"error: {bad}: not a readable Torch7 .t7 file (") and err.rstrip().endswith(")")
