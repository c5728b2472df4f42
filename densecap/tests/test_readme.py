"""The README's flag tables list every flag of every script with its default (the documentation a user
reads without running -h); a flag added to the code without a row fails here."""
import dataclasses
import importlib
import re
from pathlib import Path

import pytest

SCRIPTS = [("run_model.py", "run_model", "RunOptions"), ("train.py", "train", "TrainOptions"),
           ("evaluate_model.py", "evaluate_model", "EvalOptions"), ("preprocess.py", "preprocess", "PreprocessOptions"),
           ("extract_features.py", "extract_features", "ExtractOptions"), ("convert.py", "convert", "ConvertOptions"),
           ("webcam.py", "webcam", "WebcamOptions")]
README = (Path(__file__).parents[1] / "README.md").read_text()


def readme_rows(script):
    section = README.split("\n## Flags\n", 1)[1].split(f"\n### {script}\n", 1)[1].split("\n### ", 1)[0]
    return dict(re.findall(r"^\| `-*([a-z_0-9]+)` \| ([^|]*) \|", section, re.M))


@pytest.mark.parametrize("script, module, cls", SCRIPTS)
def test_readme_lists_every_flag_with_its_default(script, module, cls):
    fields = dataclasses.fields(getattr(importlib.import_module(f"densecap.{module}"), cls))
    rows = readme_rows(script)
    assert set(rows) == {f.name for f in fields}
    for f in fields:
        if f.default not in ("", None) or "nargs" not in f.metadata:
            assert rows[f.name].strip().strip("`") == repr(f.default) if isinstance(f.default, str) \
                else rows[f.name].strip().strip("`") == str(f.default), f.name


def test_new_flags_are_named_in_the_differences():
    """Every flag whose help says "new" is also named in the README's "New flags" line."""
    new = README.split("- New flags:", 1)[1].split("\n- ", 1)[0]
    for script, module, cls in SCRIPTS:
        for f in dataclasses.fields(getattr(importlib.import_module(f"densecap.{module}"), cls)):
            if f.metadata["help"].startswith("new"):
                assert f"-{f.name}" in new, (script, f.name)
