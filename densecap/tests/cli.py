"""Running densecap's commands as a user types them (no -gpu: the default 0) on a machine without CUDA,
for the bad-input tests: as a process, or in-process through main(argv) and common.cli.run."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.cli import parse, run


def cli_without_gpu_flag(script, args):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, f"densecap/{script}"] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).parents[2], env=env)


def main_without_gpu(module, options, args, monkeypatch, capsys):
    """-> (exit status, stderr) of module.main(parse(options, args)) under common.cli.run, CUDA hidden."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        run(module.main, parse(options, [str(a) for a in args]))
    return subprocess.CompletedProcess(args, e.value.code, "", capsys.readouterr().err)


def assert_cpu_note_then_one_error(out, *names):
    """Exit 1; stderr: the CPU-fallback note naming densecap's own -gpu -1, then one line naming the file."""
    if torch.backends.mps.is_available():
        pytest.skip("the CPU-fallback note is for machines without CUDA or MPS")
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 2, out.stderr
    assert lines[0].startswith("note: no CUDA") and "pass -gpu -1 " in lines[0] and "gpuid" not in lines[0]
    assert all(n in lines[1] for n in names), lines[1]
