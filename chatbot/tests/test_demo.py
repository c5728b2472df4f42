"""`make demo`'s chatbot part (chatbot/demo.sh), run for real with fewer epochs."""
import os
import re
import subprocess
import sys
from pathlib import Path

from chatbot.bot import Chatbot

ROOT = Path(__file__).resolve().parents[2]


def test_demo_script_trains_and_answers_the_three_questions(tmp_path):
    env = dict(os.environ, PY=sys.executable, DEMO=str(tmp_path), DEMO_EPOCHS="2", OMP_NUM_THREADS="1")
    r = subprocess.run(["bash", "chatbot/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = tmp_path / "chatbot"
    # the model learned: training perplexity fell from epoch 1 to epoch 2 (the log's epoch lines)
    ppl = [float(m) for m in re.findall(r"^epoch \d+: train ppl ([\d.]+)", (out / "train.log").read_text(), re.M)]
    assert len(ppl) == 2 and ppl[1] < 0.9 * ppl[0], ppl
    questions = ["你好", "你是谁", "你的爱好是什么"]
    bot = Chatbot(out / "data" / "model.pt")
    for name in ("answers.txt", "answers_beam5.txt"):
        lines = (out / name).read_text(encoding="utf-8").splitlines()
        # three exchanges, in order, each a question and a non-empty answer of known words
        assert [line for line in lines if line.startswith("you> ")] == [f"you> {q}" for q in questions]
        replies = [line[len("neuralconvo> "):] for line in lines if line.startswith("neuralconvo> ")]
        assert len(replies) == 3 and all(r.strip() and "<unknown>" not in r for r in replies), lines
        if name == "answers.txt":  # greedy: the replies the trained model gives
            assert replies == [bot.reply(q) for q in questions]
    # the you> loop: two sampled exchanges, then quit (three prompts)
    chat = (out / "chat_sampled.txt").read_text(encoding="utf-8")
    assert chat.count("you> ") == 3
    sampled = [line[len("neuralconvo> "):] for line in chat.split("you> ") if line.startswith("neuralconvo> ")]
    assert len(sampled) == 2 and all(r.strip() for r in sampled), chat
