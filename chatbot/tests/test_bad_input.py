"""Bad input, as a hostile new user tries it: one stderr line naming the flag or file, non-zero exit,
no traceback, nothing on disk harmed.

Cases tried here (issue 17, round 3), by entry point:
  train.py / corpus.py  sizes of 0 (--hiddenSize, --numLayers, --batchSize, --printEvery, --maxExampleLen,
                        --maxEpoch), negative counts (--warmup, --patience, --context, ...), fractions > 1
  eval.py               --beam 0, --maxLength 0, --temperature -1, --metrics -2
  server.py             --beam 0, --maxLength 0, --maxInputLength 0, --port 70000
"""
import os
import re
import subprocess
import sys

import pytest

from chatbot.eval import EvalOpts
from chatbot.prep import CorpusOpts
from chatbot.server import ServerOpts
from chatbot.train import TrainOpts
from common.cli import parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BAD = [(TrainOpts, f, "0", ">= 1") for f in ("hiddenSize", "numLayers", "batchSize", "printEvery",
                                              "maxExampleLen", "maxEpoch", "saturateEpoch")] + [
    (TrainOpts, "warmup", "-1", ">= 0"), (TrainOpts, "patience", "-1", ">= 0"), (TrainOpts, "maxSteps", "-5", ">= 0"),
    (TrainOpts, "dropout", "1.5", "<= 1"), (TrainOpts, "valSetSize", "2", "<= 1"), (TrainOpts, "context", "-1", ">= 0"),
    (TrainOpts, "learningRate", "-0.1", ">= 0"), (TrainOpts, "threads", "-2", ">= 0"),
    (CorpusOpts, "maxExampleLen", "0", ">= 1"), (CorpusOpts, "vocabSize", "-2", ">= -1"),
    (EvalOpts, "beam", "0", ">= 1"), (EvalOpts, "maxLength", "0", ">= 1"), (EvalOpts, "temperature", "-1", ">= 0"),
    (EvalOpts, "metrics", "-2", ">= -1"),
    (ServerOpts, "beam", "0", ">= 1"), (ServerOpts, "maxLength", "0", ">= 1"), (ServerOpts, "maxInputLength", "0", ">= 1"),
    (ServerOpts, "port", "70000", "<= 65535")]


@pytest.mark.parametrize("opts,name,value,bound", BAD, ids=[f"{o.__name__}-{n}={v}" for o, n, v, _ in BAD])
def test_size_out_of_range_is_one_line_naming_the_flag(capsys, opts, name, value, bound):
    with pytest.raises(SystemExit) as e:
        parse(opts, [f"--{name}", value])
    err = capsys.readouterr().err
    assert e.value.code != 0 and err.count("\n") == 1 and "Traceback" not in err
    assert re.fullmatch(rf"error: -{name} must be (>= \S+ and )?{bound} \(got {value}(\.0)?\)\n", err), err


@pytest.mark.parametrize("script,args", [("train", ["--batchSize", "0"]), ("eval", ["--beam", "0"]),
                                         ("server", ["--maxLength", "0"]), ("corpus", ["--maxExampleLen", "0"])])
def test_zero_size_from_the_shell_is_one_line_before_any_work(tmp_path, script, args):
    r = subprocess.run([sys.executable, "-m", f"chatbot.{script}", "--dataDir", str(tmp_path / "d"), *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    assert r.stderr == f"error: -{args[0][2:]} must be >= 1 (got 0)\n"
    assert not (tmp_path / "d").exists()  # nothing preprocessed, nothing written


def _cut(src, dest, n):
    with open(src, "rb") as f:
        dest.write_bytes(f.read()[:n])
    return str(dest)


@pytest.mark.parametrize("how", ["eval --input", "eval you> loop", "eval --metrics", "server"])
def test_truncated_model_is_one_line(trained, tmp_path, how):
    """A model.pt cut short (a copy that stopped at 40 KB) given to eval (file, chat, metrics) and server."""
    d, _ = trained
    bad = _cut(os.path.join(d, "model.pt"), tmp_path / "model.pt", 40_000)
    (tmp_path / "q.txt").write_text("你好\n", encoding="utf-8")
    script, *args = how.split()
    args = {"--input": ["--input", str(tmp_path / "q.txt")], "you>": [], "--metrics": ["--metrics", "5"],
            }.get(args[0] if args else "", ["--port", "0"])
    r = subprocess.run([sys.executable, "-m", f"chatbot.{script}", "--dataDir", str(d), "--model", bad, *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, input="你好\n")
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stdout == ""
    assert r.stderr == f"error: {bad}: not a torch-classics checkpoint (cut short or damaged)\n"
    assert os.path.getsize(bad) == 40_000


def test_truncated_checkpoint_to_resume_is_one_line_and_kept(trained, tmp_path):
    import shutil

    from chatbot.tests.conftest import train
    from common.cli import UserError
    d, _ = trained
    shutil.copytree(d, tmp_path / "d")
    bad = _cut(os.path.join(d, "checkpoint.pt"), tmp_path / "d" / "checkpoint.pt", 50_000)
    with pytest.raises(UserError, match=re.escape(f"{bad}: not a torch-classics checkpoint (cut short or damaged)")):
        train(tmp_path / "d", "--tokens", "char", "--valSetSize", "0.1", "--resume")
    assert os.path.getsize(bad) == 50_000  # not overwritten by a fresh start
