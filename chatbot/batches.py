"""Batches of (question, answer) pairs streamed from corpus.h5, and their padding into tensors."""
import h5py
import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from chatbot.tokens import EOS, GO, PAD, UNK
from common.h5prep import RaggedReader


class PairData:
    """One split of corpus.h5. Batches are read block by block (a contiguous run of pairs, shuffled
    inside), so only one block of tokens is in memory whatever the corpus size."""

    def __init__(self, h5_path, split, block_batches=32):
        self.file = h5py.File(h5_path, "r")
        self.src = RaggedReader(self.file, f"{split}/src")
        self.tgt = RaggedReader(self.file, f"{split}/tgt")
        self.block_batches = block_batches

    def __len__(self):
        return len(self.src)

    def num_batches(self, batch_size):
        return sum(len(range(0, b - a, batch_size)) for a, b in self._blocks(batch_size))

    def _blocks(self, batch_size):
        size = batch_size * self.block_batches
        return [(a, min(a + size, len(self))) for a in range(0, len(self), size)]

    def _read(self, reader, a, b):
        off = reader.offsets
        flat = reader.tokens[off[a]:off[b]]
        return [flat[off[i] - off[a]:off[i + 1] - off[a]] for i in range(a, b)]

    def batches(self, batch_size, epoch=0, seed=0, shuffle=True, skip=0):
        """Yield (src list, tgt list) of numpy id arrays; the order depends only on (seed, epoch), and
        `skip` drops the first batches without reading them (exact resume mid-epoch)."""
        rng = np.random.default_rng([seed, epoch])
        blocks = self._blocks(batch_size)
        order = rng.permutation(len(blocks)) if shuffle else range(len(blocks))
        for k in order:
            a, b = blocks[k]
            starts = np.arange(0, b - a, batch_size)
            if shuffle:  # drawn before any skipping, so the random stream is the same on resume
                perm, starts = rng.permutation(b - a), rng.permutation(starts)
            if skip >= len(starts):
                skip -= len(starts)
                continue
            src, tgt = self._read(self.src, a, b), self._read(self.tgt, a, b)
            if shuffle:  # bucket by length inside the block (little padding), batches in random order
                perm = perm[np.argsort([len(src[i]) * 64 + len(tgt[i]) for i in perm], kind="stable")]
            else:
                perm = np.arange(b - a)
            for j in starts[skip:]:
                idx = perm[j:j + batch_size]
                yield [src[i] for i in idx], [tgt[i] for i in idx]
            skip = 0

    def close(self):
        self.file.close()



def collate(src, tgt=None, device="cpu"):
    """Pad a batch. Sources are reversed, as in the original (Sutskever et al.'s trick; an empty one
    becomes <unknown>); targets become `<go> ...` (decoder input) and `... <eos>` (what to predict)."""
    xs = [torch.from_numpy(np.asarray(s, dtype=np.int64)[::-1].copy()) if len(s) else torch.tensor([UNK])
          for s in src]
    lengths = torch.tensor([len(s) for s in xs])
    x = pad_sequence(xs, batch_first=True, padding_value=PAD).to(device)
    if tgt is None:
        return x, lengths
    ys = [torch.from_numpy(np.asarray(t, dtype=np.int64)) for t in tgt]
    go, eos = torch.tensor([GO]), torch.tensor([EOS])
    y_in = pad_sequence([torch.cat([go, y]) for y in ys], batch_first=True, padding_value=PAD)
    y_out = pad_sequence([torch.cat([y, eos]) for y in ys], batch_first=True, padding_value=PAD)
    return x, lengths, y_in.to(device), y_out.to(device)
