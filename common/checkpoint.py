"""Checkpoints: torch.save dicts, written atomically, loaded onto any device.

Every checkpoint holds `format` (version) and `kind` (which experiment wrote it) so that handing one
experiment another's file gives a clear message instead of a KeyError deep inside.
"""
import os
import pickle
import struct
import tempfile
import zipfile

from common.cli import UserError

FORMAT_VERSION = 1
TMP_PREFIX = ".tmp-"  # save()'s temporaries: .tmp-PID-XXXX.pt, never offered as checkpoints


def is_temporary(path) -> bool:
    return os.path.basename(os.fspath(path)).startswith(TMP_PREFIX)


def remove_stale_temporaries(folder) -> int:
    """Delete temporaries left by a writer that died mid-save (kill -9); those of live processes stay."""
    folder = os.fspath(folder)
    removed = 0
    if not os.path.isdir(folder):
        return 0
    for name in os.listdir(folder):
        if not (name.startswith(TMP_PREFIX) and name.endswith(".pt")):
            continue
        pid = name[len(TMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and _alive(int(pid)):
            continue
        try:
            os.unlink(os.path.join(folder, name))
            removed += 1
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def save(path, kind: str, payload: dict) -> str:
    """Write `payload` (+ kind/format) to `path` via a temp file in the same folder and os.replace."""
    import torch  # here, not at the top: a script's -h must not pay for importing torch

    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    obj = dict(payload, kind=kind, format=FORMAT_VERSION)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=".pt", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a checkpoint is an ordinary file
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def first_line(e: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message, cut at a word boundary when long."""
    text = str(e).strip()
    line = text.splitlines()[0] if text else type(e).__name__
    if len(line) > limit:
        line = line[:limit].rsplit(" ", 1)[0] + " ..."
    return line


def load(path, kind: str, map_location="cpu", mmap=False) -> dict:
    """Load a checkpoint written by `save(kind=...)`; any problem is one UserError line. mmap=True maps
    the tensors from the file instead of reading them (pages come in as they are used; copy-on-write)."""
    import torch

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such checkpoint file")
    if is_temporary(path):
        raise UserError(f"{path}: an unfinished temporary of an interrupted save, not a checkpoint")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, KeyError,
            AttributeError, TypeError, IndexError, UnicodeDecodeError, struct.error, OSError,
            MemoryError, OverflowError) as e:
        # a text file or other non-checkpoint surfaces as almost any of these (e.g. KeyError: 544502645)
        why = "cut short or damaged" if "central directory" in str(e) else \
            first_line(e) if isinstance(e, (pickle.UnpicklingError, RuntimeError, ValueError)) else \
            "cut short or damaged" if isinstance(e, (OSError, EOFError)) else "not a file written by torch.save"
        raise UserError(f"{path}: not a torch-classics checkpoint ({why})") from None
    if not isinstance(obj, dict) or "kind" not in obj:
        raise UserError(f"{path}: not a torch-classics checkpoint (no 'kind' field)")
    if obj["kind"] != kind:
        raise UserError(f"{path}: this is a {obj['kind']} checkpoint, expected a {kind} one")
    if obj.get("format", 0) > FORMAT_VERSION:
        raise UserError(f"{path}: checkpoint format {obj['format']} is newer than this code "
                        f"({FORMAT_VERSION}); update torch-classics")
    return obj
