"""The CPU-fallback note of every densecap command names densecap's own flag (-gpu -1, not -gpuid -1),
and a truncated -checkpoint after it is one error line (issue 17), through the real commands."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

ROOT = Path(__file__).parents[2]


@pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(),
                    reason="the note is printed only where no GPU exists")
@pytest.mark.parametrize("script, extra", [
    ("run_model.py", ["-input_image", "x.png"]),
    ("extract_features.py", ["-input_txt", "list.txt", "-output_h5", "o.h5"]),
    ("evaluate_model.py", ["-data_h5", "d.h5", "-data_json", "d.json"]),
    ("train.py", ["-checkpoint_start_from", "cut.pt", "-data_h5", "missing.h5"]),
])
def test_the_cpu_note_names_gpu_minus_1(tiny_checkpoint, tmp_path, script, extra):
    (tmp_path / "cut.pt").write_bytes(tiny_checkpoint.read_bytes()[:40000])
    (tmp_path / "list.txt").write_text("x.png\n")
    Image.new("RGB", (40, 40)).save(tmp_path / "x.png")
    args = ([] if script == "train.py" else ["-checkpoint", "cut.pt"]) + extra   # -gpu left at its default 0
    out = subprocess.run([sys.executable, str(ROOT / "densecap" / script)] + args, capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                                         "OMP_NUM_THREADS": "1"})
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1, out.stderr[-2000:]
    assert lines[0] == "note: no CUDA or MPS device found, running on CPU (pass -gpu -1 to silence this)"
    assert len(lines) == 2 and lines[1].startswith("error: ") and ("cut.pt" in lines[1] or "missing.h5" in lines[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.pt", "list.txt", "x.png"]   # nothing written
