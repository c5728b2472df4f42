"""eval.py: the you> loop driven through stdin, --input files, decoding options, metrics, bad input."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from chatbot.bot import Chatbot
from chatbot.eval import ANSWER, PROMPT, EvalOpts
from chatbot.eval import main as eval_main
from chatbot.metrics import bleu2, distinct, evaluate, score
from chatbot.prep import CorpusOpts, prepare
from chatbot.tests.conftest import DGK
from common.cli import UserError, parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _eval(data_dir, *args, stdin=""):
    return subprocess.run([sys.executable, "-m", "chatbot.eval", "--dataDir", str(data_dir), "--threads", "1",
                           *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_you_prompt_loop_through_stdin(trained):
    d, _ = trained
    p = _eval(d, stdin="你好\n\n   \n你喜欢什么\nquit\n这一行不会被读到\n")
    assert p.returncode == 0 and "Traceback" not in p.stderr
    out = p.stdout
    assert out.count(PROMPT) == 5  # 你好, empty, blank, 你喜欢什么, quit
    replies = [line[len(ANSWER):] for line in out.split(PROMPT) if line.startswith(ANSWER)]
    assert len(replies) == 2 and all(r.strip() for r in replies)
    assert out.count("(type something to say, or quit)") == 2  # the empty lines
    assert "<unknown>" not in out
    bot = Chatbot(os.path.join(d, "model.pt"))
    assert replies[0].strip() == bot.reply("你好")  # the same greedy reply as the library call
    # end of input also ends the loop cleanly
    p = _eval(d, stdin="你好")
    assert p.returncode == 0 and p.stdout.count(PROMPT) == 2 and "Traceback" not in p.stderr


def test_input_file_and_beam(trained, tmp_path):
    d, _ = trained
    q = tmp_path / "q.txt"
    q.write_text("你好\n\n今天天气怎么样\nzxqv 完全 陌生的 詞\n", encoding="utf-8")
    p = _eval(d, "--input", str(q), "--beam", "4", "--maxLength", "8")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert [line for line in lines if line.startswith(PROMPT)] == [
        f"{PROMPT}你好", f"{PROMPT}今天天气怎么样", f"{PROMPT}zxqv 完全 陌生的 詞"]
    replies = [line[len(ANSWER):] for line in lines if line.startswith(ANSWER)]
    assert len(replies) == 3 and all(0 < len(r) <= 8 for r in replies)  # char model: <= 8 characters
    assert "<unknown>" not in p.stdout
    p = _eval(d, "--input", str(q), "--debug")
    assert p.stdout.count("step 0:") == 3


def test_bad_input_is_one_clear_line(trained, tmp_path):
    d, _ = trained
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes("你好\n".encode("gbk"))
    text_pt = tmp_path / "text.pt"
    text_pt.write_text("this is not a model\n")
    p = _eval(d, "--input", str(gbk))
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [
        f"error: {gbk}: not UTF-8 text; convert it first (e.g. iconv -f GBK -t UTF-8)"]
    for args, message in ((["--input", str(tmp_path / "none.txt")], "none.txt: cannot read"),
                          (["--model", str(gbk)], "not a torch-classics checkpoint"),
                          (["--model", str(text_pt)], r"text.pt: not a torch-classics checkpoint \(\S.*\)$"),
                          (["--temperature", "nan"], "--temperature nan"),
                          (["--temperature", "0.5", "--beam", "3"], "--temperature"),
                          (["--dataDir", str(tmp_path / "empty_dir")], "no model yet")):
        with pytest.raises(UserError, match=message):
            eval_main(parse(EvalOpts, ["--dataDir", str(d), *args]))


def test_unknown_words_do_not_make_unknown_replies(trained):
    d, _ = trained
    bot = Chatbot(os.path.join(d, "model.pt"))
    replies = [bot.reply(q) for q in ["你好", "量子色动力学", "qwerty", "我想吃饭", "？？？"]]
    assert all(r and "<unknown>" not in r for r in replies)
    assert len(set(replies)) >= 2  # not one fixed answer to everything


def old_bleu2(hyps, refs):
    """chatbot/metrics.py's hand-written corpus BLEU-2 before pycocoevalcap: the independent expectation."""
    from collections import Counter
    match, total, hyp_len, ref_len = [0, 0], [0, 0], 0, 0
    for h, r in zip(hyps, refs):
        hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
        for n in (1, 2):
            hc = Counter(tuple(h[i:i + n]) for i in range(len(h) - n + 1))
            rc = Counter(tuple(r[i:i + n]) for i in range(len(r) - n + 1))
            match[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            total[n - 1] += max(len(h) - n + 1, 0)
    if min(match) == 0 or hyp_len == 0:
        return 0.0
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return bp * math.exp(sum(math.log(m / t) for m, t in zip(match, total)) / 2)


def test_bleu2_through_pycocoevalcap_equals_the_old_figures():
    assert bleu2([[1, 2, 3, 4]], [[1, 2, 3, 4]]) == pytest.approx(1.0)
    # unigram precision 3/4, bigram 1/3, no brevity penalty: sqrt(3/4 * 1/3) = 0.5
    assert bleu2([[1, 2, 5, 3]], [[1, 2, 3, 4]]) == pytest.approx(0.5)
    # shorter hypothesis: brevity penalty exp(1 - 4/2)
    assert bleu2([[1, 2]], [[1, 2, 3, 4]]) == pytest.approx(0.36787944, rel=1e-6)
    assert bleu2([[7, 8]], [[1, 2]]) < 1e-12  # no match: coco-caption's smoothing, not exactly 0
    # a fixed corpus of 60 replies (lengths 0-9, ids 4-11, so n-grams match often): the same corpus BLEU-2
    rng = np.random.default_rng(17)
    refs = [rng.integers(4, 12, size=rng.integers(1, 10)).tolist() for _ in range(60)]
    hyps = [r[:rng.integers(0, len(r) + 1)] + rng.integers(4, 12, size=rng.integers(0, 4)).tolist() for r in refs]
    old = old_bleu2(hyps, refs)
    assert 0.2 < old < 0.9 and bleu2(hyps, refs) == pytest.approx(old, rel=1e-6)
    assert bleu2(hyps[:10], refs[:10]) == pytest.approx(old_bleu2(hyps[:10], refs[:10]), rel=1e-6)


def test_distinct_numbers():
    assert distinct([[1, 1, 2], [1, 3]], 1) == pytest.approx(3 / 5)
    assert distinct([[1, 1, 2], [1, 3]], 2) == pytest.approx(3 / 3)
    assert distinct([[1, 2, 1, 2]], 2) == pytest.approx(2 / 3)


def test_metrics_on_the_validation_split(trained, tmp_path):
    d, state = trained
    bot = Chatbot(os.path.join(d, "model.pt"))
    m = score(bot, os.path.join(d, "corpus.h5"), 20)
    assert not bot.model.training  # scoring leaves dropout off: replies stay deterministic
    assert m["unit"] == "character" and m["scored"] == 20
    assert m["ppl"] == pytest.approx(min(h["val_ppl"] for h in state.history), rel=1e-4)
    assert 0 <= m["bleu2"] <= 1 and 0 < m["distinct1"] <= 1 and 0 < m["distinct2"] <= 1
    assert m["unknown_replies"] == 0
    # the same replies after other dialogs' questions: a different, finite perplexity
    assert m["ppl_mismatched"] != pytest.approx(m["ppl"], rel=1e-4) and m["ppl_mismatched"] < 1e4
    # a corpus.h5 rebuilt from another corpus next to this model is refused, not silently used
    other = prepare(CorpusOpts(corpus=str(DGK / "juemds.conv"), dataDir=str(tmp_path), dataset=50), quiet=True)
    with pytest.raises(UserError, match="another corpus, vocabulary"):
        score(bot, other, 5)


def test_metrics_command_line(trained, tmp_path):
    d, _ = trained
    p = _eval(d, "--metrics", "5")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("validation: ") and "perplexity" in lines[0] and "BLEU-2" in lines[0]
    assert lines[1].startswith("with each reply after another dialog's question: perplexity ")
    # a model without its corpus.h5 next to it: one line naming the file, no traceback
    p = _eval(tmp_path, "--metrics", "5", "--model", os.path.join(d, "model.pt"))
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert f"{tmp_path}/corpus.h5: missing or not a corpus.h5" in p.stderr


class _Pairs:
    """A stand-in for PairData: fixed batches of (sources, targets)."""

    def __init__(self, src, tgt):
        self.src, self.tgt = src, tgt

    def batches(self, batch_size, shuffle=False):
        for i in range(0, len(self.src), batch_size):
            yield self.src[i:i + batch_size], self.tgt[i:i + batch_size]


def test_mismatched_questions_pair_each_reply_with_another_question(trained):
    d, _ = trained
    model = Chatbot(os.path.join(d, "model.pt")).model
    rng = np.random.default_rng(0)
    tgt = [rng.integers(4, 40, size=rng.integers(1, 6)) for _ in range(10)]
    src = [rng.integers(4, 40, size=rng.integers(1, 6)) for _ in range(10)]
    # one question for every reply: mismatching changes nothing
    same = [src[0]] * 10
    assert evaluate(model, _Pairs(same, tgt), 4, "cpu", mismatch=True) == \
        pytest.approx(evaluate(model, _Pairs(same, tgt), 4, "cpu"), rel=1e-6)
    # otherwise each reply is scored after the question half a batch away (batches of 4: 2 apart)
    rolled = [src[(i // 4) * 4 + (i % 4 + 2) % 4] if i < 8 else src[8 + (i + 1) % 2] for i in range(10)]
    assert evaluate(model, _Pairs(src, tgt), 4, "cpu", mismatch=True) == \
        pytest.approx(evaluate(model, _Pairs(rolled, tgt), 4, "cpu"), rel=1e-6)
    assert evaluate(model, _Pairs(src, tgt), 4, "cpu", mismatch=True) != \
        pytest.approx(evaluate(model, _Pairs(src, tgt), 4, "cpu"), rel=1e-6)


def test_temperature_samples_reproducibly(trained, tmp_path, capsys):
    d, _ = trained
    q = tmp_path / "q.txt"
    q.write_text("你好\n你是谁\n我想吃饭\n今天天气怎么样\n", encoding="utf-8")

    def replies(*args):
        eval_main(parse(EvalOpts, ["--dataDir", str(d), "--input", str(q), "--threads", "1", *args]))
        return [line for line in capsys.readouterr().out.splitlines() if line.startswith(ANSWER)]
    greedy = replies()
    hot = replies("--temperature", "1.5", "--seed", "1")
    assert hot == replies("--temperature", "1.5", "--seed", "1")  # same seed, same replies
    assert hot != greedy and hot != replies("--temperature", "1.5", "--seed", "2")
    assert replies("--temperature", "0.0001", "--seed", "3") == greedy  # a cold sample is the argmax
