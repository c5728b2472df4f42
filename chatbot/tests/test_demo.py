"""`make demo`'s chatbot part (chatbot/demo.sh), run for real with fewer epochs."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_script_trains_and_answers_the_three_questions(tmp_path):
    env = dict(os.environ, PY=sys.executable, DEMO=str(tmp_path), DEMO_EPOCHS="2", OMP_NUM_THREADS="1")
    r = subprocess.run(["bash", "chatbot/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = tmp_path / "chatbot"
    assert (out / "data" / "model.pt").is_file()
    for name in ("answers.txt", "answers_beam5.txt"):
        text = (out / name).read_text(encoding="utf-8")
        replies = [line for line in text.splitlines() if line.startswith("neuralconvo> ")]
        assert len(replies) == 3 and all(len(r) > len("neuralconvo> ") for r in replies), text  # one per question
    assert "you>" in (out / "chat_sampled.txt").read_text(encoding="utf-8")
