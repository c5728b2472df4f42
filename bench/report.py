"""Write one experiment's section of BENCHMARKS.md, leaving the other sections alone."""
import os
import platform
import re
import subprocess

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATH = os.path.join(ROOT, "BENCHMARKS.md")
HEADER = "# Benchmarks\n\nEach section is written by `make bench` (`bench/<experiment>_bench.py`).\n"


def machine() -> str:
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown CPU"
    mem = ""
    try:
        kb = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")))
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return (f"{cpu} ({isa()}), {os.cpu_count()} cores{mem}{gpu}; torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads; Python {platform.python_version()}")


def isa() -> str:
    """The vector extensions that decide CPU speed here: machines named alike ("AMD EPYC") differ in them, and
    bf16 autocast only pays with AVX512-BF16 or AMX."""
    try:
        flags = set(next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split())
    except (OSError, StopIteration):
        return "flags unknown"
    found = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return "+".join(found) if found else "no AVX2"


def git_rev() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section between <!-- name --> markers in BENCHMARKS.md."""
    text = open(PATH, encoding="utf-8").read() if os.path.exists(PATH) else HEADER
    block = f"<!-- {name} -->\n{body.rstrip()}\n<!-- /{name} -->"
    pattern = re.compile(rf"<!-- {re.escape(name)} -->.*?<!-- /{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    with open(PATH, "w", encoding="utf-8") as f:
        f.write(text)
