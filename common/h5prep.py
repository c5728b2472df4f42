"""HDF5 preprocessing: token id arrays written once next to the data and reused until the source changes.

Text corpora become one flat id array (`write_ids`); corpora of many short sequences (dialog turns,
captions) become a flat token array plus offsets (`RaggedWriter` / `RaggedReader`), written in chunks
so that memory does not grow with the corpus.
"""
import hashlib
import json
import os

import h5py
import numpy as np


def file_digest(path, chunk=1 << 20) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def id_dtype(vocab_size: int):
    """The smallest unsigned dtype holding ids 0..vocab_size-1 (torch-rnn stored uint8 when V <= 255)."""
    return np.uint8 if vocab_size <= 256 else np.uint16 if vocab_size <= 65536 else np.uint32


def is_fresh(h5_path, source_digest: str, **settings) -> bool:
    """True if `h5_path` exists and was written from a source with this digest and these settings."""
    if not os.path.exists(h5_path):
        return False
    try:
        with h5py.File(h5_path, "r") as f:
            if f.attrs.get("source_sha1") != source_digest:
                return False
            return all(f.attrs.get(k) == v for k, v in settings.items())
    except OSError:  # truncated or not HDF5: rebuild
        return False



def write_ids(h5_path, ids: np.ndarray, source_digest: str, **settings) -> None:
    """Write one flat id array as dataset `ids` (atomically), tagged with the source digest/settings."""
    tmp = f"{h5_path}.tmp-{os.getpid()}"
    with h5py.File(tmp, "w") as f:
        f.create_dataset("ids", data=ids, compression="gzip" if ids.size > (1 << 16) else None)
        f.attrs["source_sha1"] = source_digest
        for k, v in settings.items():
            f.attrs[k] = v
    os.replace(tmp, h5_path)


def read_ids(h5_path) -> np.ndarray:
    with h5py.File(h5_path, "r") as f:
        return f["ids"][...]


def write_json(path, obj) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
    os.replace(tmp, path)


class RaggedWriter:
    """Append variable-length int sequences to `<name>/tokens` + `<name>/offsets` in an open h5 file."""

    def __init__(self, h5: h5py.File, name: str, dtype=np.uint32, chunk=1 << 16):
        self.tokens = h5.create_dataset(f"{name}/tokens", shape=(0,), maxshape=(None,), dtype=dtype,
                                        chunks=(chunk,))
        self.offsets = h5.create_dataset(f"{name}/offsets", shape=(1,), maxshape=(None,), dtype=np.int64,
                                         chunks=(chunk,))
        self.offsets[0] = 0
        self._tok, self._off, self._n_tok, self._chunk = [], [], 0, chunk

    def append(self, seq) -> None:
        self._tok.extend(seq)
        self._n_tok += len(seq)
        self._off.append(self._n_tok)
        if len(self._tok) >= self._chunk:
            self.flush()

    def flush(self) -> None:
        if self._off:
            t0, o0 = self.tokens.shape[0], self.offsets.shape[0]
            self.tokens.resize((t0 + len(self._tok),))
            self.tokens[t0:] = np.asarray(self._tok, dtype=self.tokens.dtype)
            self.offsets.resize((o0 + len(self._off),))
            self.offsets[o0:] = np.asarray(self._off, dtype=np.int64)
            self._tok, self._off = [], []

    def __len__(self):
        return self.offsets.shape[0] - 1 + len(self._off)


class RaggedReader:
    """Random access to the sequences a RaggedWriter wrote; only offsets are held in memory."""

    def __init__(self, h5: h5py.File, name: str):
        self.tokens = h5[f"{name}/tokens"]
        self.offsets = h5[f"{name}/offsets"][...]

    def __len__(self):
        return len(self.offsets) - 1

    def __getitem__(self, i) -> np.ndarray:
        return self.tokens[self.offsets[i]:self.offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)
