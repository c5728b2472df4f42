"""Where the real data sets live: one setting for tests, benchmarks and demos.

`TORCH_CLASSICS_DATA` names the folder; without it, `../shared/data` beside the repository when it
exists (the project's CI has it), else `data/` in the repository, filled by `make download-data`.
Tests that need a set call `require(name)`, which skips with the line that says how to get it.
"""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = "TORCH_CLASSICS_DATA"
HOW = f"set {ENV}=/path/to/data or run `make download-data`"


def data_root() -> Path:
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser().resolve()
    shared = REPO.parent / "shared" / "data"
    return shared if shared.is_dir() else REPO / "data"


def path(name: str) -> Path:
    """The folder (or file) `name` inside the data root, whether or not it exists."""
    return data_root() / name


def require(name: str) -> Path:
    """`path(name)`, or skip the calling test with one line saying how to get the set."""
    p = path(name)
    if not p.exists():
        import pytest
        pytest.skip(f"data set {name!r} not found under {data_root()}: {HOW}")
    return p
