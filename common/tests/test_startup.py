"""`SCRIPT -h` answers before the script's heavy imports (common.cli.options): start-up costs no torch import.
The CPU-second figures of start-up are the benches' (bench/*_bench.py); timed tests live in make bench."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("charrnn", "colorize", "densecap", "neuraltalk")
SKIP = {"colorize/demo.py"}  # make demo's own helper (`python -m colorize.demo photos DIR`), no options class


def scripts():
    out = []
    for folder in FOLDERS:
        for p in sorted((REPO / folder).glob("*.py")):
            rel = f"{folder}/{p.name}"
            if '__name__ == "__main__"' in p.read_text() and rel not in SKIP:
                out.append(rel)
    return out


PROBE = """import runpy, sys
sys.argv = [{rel!r}, '-h']
try:
    runpy.run_path({path!r}, run_name='__main__')
except SystemExit as e:
    code = e.code
else:
    code = 0
print('EXIT', code, 'TORCH' if 'torch' in sys.modules else 'NO-TORCH')"""


@pytest.mark.parametrize("rel", scripts())
def test_help_needs_no_torch(rel):
    r = subprocess.run([sys.executable, "-c", PROBE.format(rel=rel, path=str(REPO / rel))],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    last = r.stdout.strip().splitlines()[-1]
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert last.endswith("NO-TORCH"), f"{rel} -h imported torch"
    assert "usage" in (r.stdout + r.stderr).lower()
