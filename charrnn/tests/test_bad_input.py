"""Bad input, as a hostile new user tries it: one stderr line naming the flag or file, non-zero exit,
no traceback, nothing on disk harmed.

Cases tried here (issue 17, round 3), by entry point:
  train.py   sizes of 0 (-rnn_size, -num_layers, -seq_length, -batch_size, -eval_val_every, -threads -1, ...),
             -init_from a checkpoint cut short (30-66 KB of a real one), a stale .tmp-* temporary
  sample.py  sizes of 0 (-num_samples, -threads), -length -1, -temperature -1, a checkpoint cut short,
             a .tmp-* temporary given as the checkpoint
"""
import os
import re
import subprocess
import sys

import pytest

from charrnn import sample, train
from charrnn.tests.conftest import CHARRNN, T7_FIXTURES
from common.cli import parse, run

TRAIN_ZERO = ["-rnn_size", "-num_layers", "-seq_length", "-batch_size", "-eval_val_every"]
TRAIN_BAD = [(f, "0", ">= 1") for f in TRAIN_ZERO] + [
    ("-wordvec_size", "-1", ">= 0"), ("-print_every", "-1", ">= 0"), ("-max_iters", "-3", ">= 0"),
    ("-max_epochs", "-1", ">= 0"), ("-dropout", "1.5", "<= 1"), ("-train_frac", "2", "<= 1"),
    ("-threads", "-1", ">= 0"), ("-gpuid", "-2", ">= -1"), ("-grad_clip", "-5", ">= 0")]
SAMPLE_BAD = [("-num_samples", "0", ">= 1"), ("-threads", "0", ">= 1"), ("-length", "-1", ">= 0"),
              ("-temperature", "-1", ">= 0"), ("-sample", "2", "<= 1")]


def one_line_exit(capsys, opts, argv):
    with pytest.raises(SystemExit) as e:
        parse(opts, argv)
    err = capsys.readouterr().err
    return e.value.code, err


@pytest.mark.parametrize("flag,value,bound", TRAIN_BAD)
def test_train_size_out_of_range_is_one_line(capsys, flag, value, bound):
    code, err = one_line_exit(capsys, train.TrainOptions, [flag, value])
    assert code != 0 and err.count("\n") == 1 and "Traceback" not in err
    assert re.fullmatch(rf"error: {flag} must be (>= \S+ and )?{bound} \(got {value}(\.0)?\)\n", err), err


@pytest.mark.parametrize("flag,value,bound", SAMPLE_BAD)
def test_sample_size_out_of_range_is_one_line(capsys, flag, value, bound):
    code, err = one_line_exit(capsys, sample.SampleOptions, ["m.pt", flag, value])
    assert code != 0 and err.count("\n") == 1
    assert re.fullmatch(rf"error: {flag} must be (>= \S+ and )?{bound} \(got {value}(\.0)?\)\n", err), err


@pytest.mark.parametrize("script,args", [("train.py", ["-rnn_size", "0"]),
                                         ("sample.py", ["missing.pt", "-num_samples", "0"])])
def test_zero_size_from_the_shell_is_one_line_before_any_work(tmp_path, script, args):
    r = subprocess.run([sys.executable, str(CHARRNN / script), *args], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"error: {args[-2]} must be >= 1 (got 0)")
    assert list(tmp_path.iterdir()) == []  # nothing written (no cv/, no data)


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory):
    from charrnn.tests.test_sample import peaked_model, save_model
    path = save_model(peaked_model(H=64), tmp_path_factory.mktemp("ck") / "lm_lstm_epoch1.00_2.0000.pt")
    assert os.path.getsize(path) > 200_000
    return path


def cut(src, dest, n):
    with open(src, "rb") as f:
        dest.write_bytes(f.read()[:n])
    return str(dest)


@pytest.mark.parametrize("n", [30_000, 48_000, 66_000])
def test_truncated_checkpoint_to_sample_is_one_line(real_checkpoint, tmp_path, capsys, n):
    bad = cut(real_checkpoint, tmp_path / "cut.pt", n)
    with pytest.raises(SystemExit) as e:
        run(sample.main, parse(sample.SampleOptions, [bad, "-gpuid", "-1"]))
    out, err = capsys.readouterr()
    assert e.value.code == 1 and out == ""
    assert err == f"error: {bad}: not a torch-classics checkpoint (cut short or damaged)\n"
    assert os.path.getsize(bad) == n  # the file is left as it was


@pytest.mark.parametrize("script", ["sample.py", "train.py"])
def test_truncated_checkpoint_from_the_shell_is_one_line(real_checkpoint, shakespeare_dir, tmp_path, script):
    """sample.py CUT and train.py -init_from CUT, as a user runs them: exit 1, one line, no traceback."""
    bad = cut(real_checkpoint, tmp_path / "lm_lstm_epoch0.50_2.1000.pt", 40_000)
    args = [bad] if script == "sample.py" else ["-data_dir", str(shakespeare_dir), "-init_from", bad,
                                               "-checkpoint_dir", str(tmp_path / "cv")]
    r = subprocess.run([sys.executable, str(CHARRNN / script), *args, "-gpuid", "-1"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.splitlines()[-1] == f"error: {bad}: not a torch-classics checkpoint (cut short or damaged)"
    assert len(r.stderr.splitlines()) == 1 and os.path.getsize(bad) == 40_000
    assert [str(p) for p in tmp_path.rglob("*.pt")] == [bad]  # no checkpoint written


def test_truncated_lua_checkpoint_and_a_temporary_are_refused(real_checkpoint, tmp_path, capsys):
    t7 = cut(T7_FIXTURES / "lm_lstm_tiny_epoch0.47_2.9739.t7", tmp_path / "cut.t7", 30_000)
    tmp = cut(real_checkpoint, tmp_path / ".tmp-12345-abcd.pt", 10**7)  # a whole file, but a save's temporary
    for path, why in ((t7, "not a readable Torch7 .t7 file"),
                      (tmp, "an unfinished temporary of an interrupted save, not a checkpoint")):
        with pytest.raises(SystemExit) as e:
            run(sample.main, parse(sample.SampleOptions, [path, "-gpuid", "-1"]))
        err = capsys.readouterr().err
        assert e.value.code == 1 and err.count("\n") == 1 and err.startswith(f"error: {path}: {why}"), err
