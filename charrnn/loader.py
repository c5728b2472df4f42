"""Corpus -> token ids (cached in data.h5 + vocab.json) -> char-rnn's minibatches.

As util/CharSplitLMMinibatchLoader.lua: the ids are cut to a multiple of batch_size*seq_length,
laid out as batch_size contiguous streams (view(B, -1)) and split into chunks of seq_length; the
first floor(nb*train_frac) chunks train, the last floor(nb*test_frac) test, the rest validate, so
validation is the last part of each stream. Unlike the Lua loader, tokens are Unicode characters
(not bytes), or words with `-tokens word` (jieba for Chinese, whitespace otherwise).
"""
import json
import math
import os
import re

import numpy as np
import torch

from common import h5prep
from common.cli import UserError
from common.text import CJK, jieba_cut


def tokenize(text: str, tokens: str):
    """-> (token list, joiner). Word mode keeps newlines as tokens so samples keep their lines."""
    if tokens == "char":
        return list(text), ""
    if len(CJK.findall(text[:100000])) > 0.1 * min(len(text), 100000):
        return [w for w in jieba_cut(text) if w], ""
    return re.findall(r"\S+|\n", text), " "


def join_tokens(tokens, joiner: str) -> str:
    if not joiner:
        return "".join(tokens)
    out = []
    for t in tokens:
        if out and t != "\n" and out[-1] != "\n":
            out.append(joiner)
        out.append(t)
    return "".join(out)


def prepare(data_dir: str, tokens: str = "char", verbose=True):
    """Read data_dir/input.txt (cached as data.h5 + vocab.json) -> (ids, vocab list, joiner)."""
    src = os.path.join(data_dir, "input.txt")
    h5_path, vocab_path = os.path.join(data_dir, "data.h5"), os.path.join(data_dir, "vocab.json")
    if not os.path.isfile(src):
        raise UserError(f"{src}: not found. Put your text in {src}, or run `make download-data` "
                        "for tinyshakespeare and the Wang Feng lyrics")
    if os.path.getsize(src) == 0:
        raise UserError(f"{src}: the file is empty; put some UTF-8 text in it")
    digest = h5prep.file_digest(src)
    if h5prep.is_fresh(h5_path, digest, tokens=tokens) and os.path.isfile(vocab_path):
        with open(vocab_path, encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("source_sha1") == digest:
            return h5prep.read_ids(h5_path), meta["idx_to_token"], meta["joiner"]
    if verbose:
        print(f"preprocessing {src} ({tokens} tokens) -> {h5_path}")
    raw = open(src, "rb").read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise UserError(f"{src}: not valid UTF-8 (byte {e.start}, line {line}); convert it, e.g. "
                        f"`iconv -f GBK -t UTF-8 in.txt > input.txt`") from None
    if tokens == "char":  # vectorised: 4 bytes per character, no Python list of the whole corpus
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        del text
        uniq, inverse = np.unique(codes, return_inverse=True)
        vocab, joiner = [chr(c) for c in uniq], ""
        ids = inverse.astype(h5prep.id_dtype(len(vocab)))
    else:
        toks, joiner = tokenize(text, tokens)
        vocab = sorted(set(toks))
        index = {t: i for i, t in enumerate(vocab)}
        ids = np.fromiter((index[t] for t in toks), dtype=h5prep.id_dtype(len(vocab)), count=len(toks))
    h5prep.write_ids(h5_path, ids, digest, tokens=tokens)
    h5prep.write_json(vocab_path, {"idx_to_token": vocab, "joiner": joiner, "tokens": tokens,
                                   "source_sha1": digest})
    return ids, vocab, joiner


def split_sizes(n_batches, train_frac, val_frac):
    ntrain = math.floor(n_batches * train_frac)
    ntest = math.floor(n_batches * max(0.0, 1 - train_frac - val_frac))
    return ntrain, n_batches - ntrain - ntest, ntest


def min_tokens(batch_size, seq_length, train_frac, val_frac):
    """The smallest corpus (in tokens) giving one train and one validation batch."""
    nb = 1
    while True:
        ntrain, nval, _ = split_sizes(nb, train_frac, val_frac)
        if ntrain >= 1 and (nval >= 1 or val_frac <= 0):
            return nb * batch_size * seq_length
        nb += 1


class BatchLoader:
    """Serves (x, y) chunks of shape (rows, seq_length) per split; rows = this rank's share of batch_size."""

    def __init__(self, ids, batch_size, seq_length, train_frac=0.95, val_frac=0.05, rank=0, world_size=1,
                 source="input.txt"):
        if not 0 < train_frac <= 1 or val_frac < 0 or train_frac + val_frac > 1 + 1e-9:
            raise UserError(f"bad split: -train_frac {train_frac} -val_frac {val_frac} (need 0<train, sum<=1)")
        n = len(ids)
        per_batch = batch_size * seq_length
        nb = n // per_batch
        self.ntrain, self.nval, self.ntest = split_sizes(nb, train_frac, val_frac)
        if self.ntrain < 1 or (val_frac > 0 and self.nval < 1):
            need = min_tokens(batch_size, seq_length, train_frac, val_frac)
            raise UserError(f"{source}: corpus too small: {n} tokens, but -batch_size {batch_size} "
                            f"-seq_length {seq_length} -train_frac {train_frac} -val_frac {val_frac} need at "
                            f"least {need}; use more text or smaller -batch_size/-seq_length")
        if batch_size % world_size:
            raise UserError(f"-batch_size {batch_size} must be divisible by the number of processes ({world_size})")
        data = torch.from_numpy(ids[:nb * per_batch].astype(np.int64))
        ydata = torch.empty_like(data)
        ydata[:-1] = data[1:]
        ydata[-1] = int(ids[0])  # char-rnn wraps the last target round to the first token
        rows = slice(rank * batch_size // world_size, (rank + 1) * batch_size // world_size)
        self.x = data.view(batch_size, -1)[rows]
        self.y = ydata.view(batch_size, -1)[rows]
        self.seq_length, self.n_batches = seq_length, nb
        self.offset = {"train": 0, "val": self.ntrain, "test": self.ntrain + self.nval}
        self.count = {"train": self.ntrain, "val": self.nval, "test": self.ntest}
        self.pointer = {"train": 0, "val": 0, "test": 0}

    def batch(self, split, k):
        s = (self.offset[split] + k) * self.seq_length
        return self.x[:, s:s + self.seq_length], self.y[:, s:s + self.seq_length]

    def next_batch(self, split):
        k = self.pointer[split]
        self.pointer[split] = (k + 1) % self.count[split]
        return self.batch(split, k)
