"""Checkpoints: torch.save dicts, written atomically, loaded onto any device.

Every checkpoint holds `format` (version) and `kind` (which experiment wrote it) so that handing one
experiment another's file gives a clear message instead of a KeyError deep inside.
"""
import os
import pickle
import tempfile
import zipfile

import torch

from common.cli import UserError

FORMAT_VERSION = 1


def save(path, kind: str, payload: dict) -> str:
    """Write `payload` (+ kind/format) to `path` via a temp file in the same folder and os.replace."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    obj = dict(payload, kind=kind, format=FORMAT_VERSION)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load(path, kind: str, map_location="cpu") -> dict:
    """Load a checkpoint written by `save(kind=...)`; any problem is one UserError line."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: not a torch-classics checkpoint ({first[:120]})") from None
    if not isinstance(obj, dict) or "kind" not in obj:
        raise UserError(f"{path}: not a torch-classics checkpoint (no 'kind' field)")
    if obj["kind"] != kind:
        raise UserError(f"{path}: this is a {obj['kind']} checkpoint, expected a {kind} one")
    if obj.get("format", 0) > FORMAT_VERSION:
        raise UserError(f"{path}: checkpoint format {obj['format']} is newer than this code "
                        f"({FORMAT_VERSION}); update torch-classics")
    return obj
