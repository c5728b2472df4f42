"""`make demo`'s charrnn part (charrnn/demo.sh), run for real with fewer iterations."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_script_trains_a_fixed_amount_and_samples(tmp_path):
    env = dict(os.environ, PY=sys.executable, DEMO=str(tmp_path), DEMO_ITERS="30", OMP_NUM_THREADS="1")
    run = lambda: subprocess.run(["bash", "charrnn/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                                 timeout=300)
    first = run()
    assert first.returncode == 0, first.stderr[-2000:]
    out = tmp_path / "charrnn"
    assert (out / "data" / "input.txt").stat().st_size > 100_000
    checkpoints = sorted((out / "cv").glob("lm_demo_*.pt"))
    assert checkpoints, "demo.sh wrote no checkpoint"
    sample = (out / "sample.txt").read_text(encoding="utf-8")
    assert sample.startswith("The ") and len(sample) >= 600
    # a fixed number of iterations and a fixed seed: the same work, the same text, whatever the load
    for c in checkpoints:
        c.unlink()
    second = run()
    assert second.returncode == 0, second.stderr[-2000:]
    assert (out / "sample.txt").read_text(encoding="utf-8") == sample
