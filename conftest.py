"""Every test that reads a real data set skips, with the line saying how to get it, where the set is
missing (a public clone has no ../shared beside it). A test needs a set when it names a module-level
Path inside the data root (`common.datasets`); fixtures that read data call `datasets.require`."""
import shutil
import types
from pathlib import Path

import pytest

from common import datasets


def _names(code, out):
    out.update(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _names(c, out)
    return out


def _inside(p: Path, root: Path) -> bool:
    try:
        p.resolve().relative_to(root)
        return True
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _skip_without_data(request):
    fn = getattr(request, "function", None)
    if fn is None:
        return
    root = datasets.data_root().resolve()
    for name in sorted(_names(fn.__code__, set())):
        v = fn.__globals__.get(name)
        for p in (v if isinstance(v, (list, tuple)) else [v]):  # a Path, or an argument list holding one
            if isinstance(p, Path) and _inside(p, root) and not p.exists():
                rel = p.resolve().relative_to(root)
                pytest.skip(f"data set {rel.parts[0] if rel.parts else rel} not found under {root}: {datasets.HOW}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Caption metrics need Java (pycocoevalcap's jars): without it their tests skip, saying how to enable them."""
    outcome = yield
    exc = outcome.excinfo
    if exc and shutil.which("java") is None and "need Java" in str(exc[1]):
        outcome.force_exception(pytest.skip.Exception(
            "Java is not installed; enable these tests with `apt-get install -y default-jre-headless`"))
