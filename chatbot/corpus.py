"""Dialog corpora -> (question, answer) token pairs -> HDF5 arrays in --dataDir, built once, streamed.

Three formats are read, each as a stream of dialogs (lists of turns); a pair is two consecutive turns:
  .conv          `E` starts a dialog, `M <text>` is one turn (dgk_lost_conv, xiaohuangji, shooter)
  Cornell        movie_lines.txt + movie_conversations.txt (neuralconvo's English corpus)
  chatterbot     YAML `conversations:` lists (its Chinese files are the built-in default corpus)

Preprocessing is two streaming passes, so memory grows with the vocabulary, never with the corpus:
pass 1 tokenizes every turn once and writes pairs with provisional ids to a temp HDF5 file while
counting words; pass 2 picks the vocabulary and rewrites the ids, chunk by chunk, into corpus.h5.
Run it alone with `python corpus.py --corpus PATH --dataDir DIR` (train.py runs it when needed).
"""
import glob
import logging
import os
import random
import re
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import torch

from common.cli import UserError, flag, options, parse, run
from common.h5prep import RaggedReader, RaggedWriter, file_digest, id_dtype, is_fresh, write_json

PAD, GO, EOS, UNK = 0, 1, 2, 3  # the original's ids: <go>=1, <eos>=2, <unknown>=3, 0 = padding
SPECIALS = ["<pad>", "<go>", "<eos>", "<unknown>"]
FORMAT = 1  # bump when the layout of corpus.h5 changes, so old files are rebuilt
TOKEN_MODES = ("auto", "word", "char", "slash")


def builtin_corpus() -> str:
    """chatterbot-corpus's Chinese YAML folder: the offline default corpus."""
    import chatterbot_corpus
    return str(Path(chatterbot_corpus.__file__).parent / "data" / "chinese")


# ----------------------------------------------------------------------------------------------------
# readers: each yields dialogs (lists of non-empty turn strings)

def corpus_files(path):
    """(format, files) for a corpus path: a .conv file or folder, a Cornell folder, or chatterbot YAML."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{path}: no such corpus file or folder (give --corpus a .conv file or folder, "
                        "a Cornell movie-dialogs folder, or chatterbot YAML)")
    if p.is_file():
        if p.suffix in (".yml", ".yaml"):
            return "yaml", [str(p)]
        return "conv", [str(p)]
    if (p / "movie_lines.txt").exists() and (p / "movie_conversations.txt").exists():
        return "cornell", [str(p / "movie_lines.txt"), str(p / "movie_conversations.txt")]
    for fmt, pattern in (("conv", "*.conv"), ("yaml", "*.yml"), ("yaml", "*.yaml")):
        files = sorted(glob.glob(str(p / pattern)))
        if files:
            return fmt, files
    raise UserError(f"{path}: folder holds no .conv files, no chatterbot .yml files and no Cornell "
                    "movie_lines.txt/movie_conversations.txt")


def _lines(path, encoding="utf-8"):
    """Lines of a text file without line endings (CRLF too); non-UTF-8 bytes give one clear error."""
    try:
        with open(path, encoding=encoding, newline="") as f:
            for line in f:
                yield line.rstrip("\r\n").rstrip("\r")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (bad byte at offset {e.start}); convert it first, "
                        "e.g. `iconv -f GBK -t UTF-8 in.conv > out.conv`") from None


def read_conv(path):
    dialog = []
    for line in _lines(path):
        if line.strip() == "E":
            if dialog:
                yield dialog
            dialog = []
        elif line.startswith("M"):
            text = line[2:].strip()  # the original reads the text from byte 3 on
            if text:
                dialog.append(text)
    if dialog:
        yield dialog


def read_cornell(lines_path, conversations_path):
    sep = " +++$+++ "
    text = {}
    for line in _lines(lines_path, encoding="iso-8859-1"):  # the Cornell release is Latin-1
        parts = line.split(sep)
        if len(parts) == 5:
            text[parts[0]] = parts[4].strip()
    for line in _lines(conversations_path, encoding="iso-8859-1"):
        parts = line.split(sep)
        if len(parts) == 4:
            ids = re.findall(r"L\d+", parts[3])
            dialog = [text[i] for i in ids if text.get(i)]
            if dialog:
                yield dialog


def read_yaml(path):
    import yaml
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; convert it first") from None
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    convs = doc.get("conversations") if isinstance(doc, dict) else None
    if not isinstance(convs, list):
        raise UserError(f"{path}: no `conversations:` list (expected chatterbot-corpus YAML)")
    for conv in convs:
        if isinstance(conv, list):
            dialog = [str(t).strip() for t in conv if t is not None and str(t).strip()]
            if dialog:
                yield dialog


def read_dialogs(fmt, files):
    if fmt == "cornell":
        yield from read_cornell(*files)
        return
    reader = read_conv if fmt == "conv" else read_yaml
    for path in files:
        yield from reader(path)


# ----------------------------------------------------------------------------------------------------
# tokenization

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_ENGLISH = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
_CHARS = re.compile(r"[a-z0-9]+|\S")  # like the original's eval: ASCII runs stay whole, others split
_jieba = None


def _jieba_cut(text):
    global _jieba
    if _jieba is None:
        import jieba
        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba = jieba
    return _jieba.lcut(text)


def tokenize(text: str, mode: str) -> list:
    """Tokens of one turn. word: jieba for Chinese, words for English; char: one token per character
    (ASCII words kept whole); slash: the corpus's own `/` segmentation."""
    text = text.strip().lower()
    if mode == "slash":
        return [t.strip() for t in text.split("/") if t.strip()]
    if mode == "char":
        return _CHARS.findall(text)
    if _CJK.search(text):
        return [t for t in _jieba_cut(text) if t.strip()]
    return _ENGLISH.findall(text)


def detokenize(tokens) -> str:
    """Join tokens: no space between Chinese tokens, one space between English words."""
    out = ""
    for t in tokens:
        if out and not (_CJK.search(out[-1]) or _CJK.search(t[0])) and t[0].isalnum() and out[-1] != " ":
            out += " "
        out += t
    return out


def resolve_tokens(fmt, files, mode):
    """(training mode, input mode). auto: the corpus's `/` marks if most turns have them, else jieba
    words. Typed input has no `/`, so it is split like the corpus was: by character for a corpus
    segmented into characters (dgk_shooter_min, xiaohuangji fenciA), else by jieba words."""
    if mode not in TOKEN_MODES:
        raise UserError(f"--tokens {mode}: use one of {', '.join(TOKEN_MODES)}")
    sample = []
    for dialog in read_dialogs(fmt, files):
        sample.extend(dialog)
        if len(sample) >= 2000:
            break
    if mode == "auto":
        slashed = sum("/" in t for t in sample)
        mode = "slash" if sample and slashed > 0.5 * len(sample) else "word"
    if mode != "slash":
        return mode, mode
    toks = [t for s in sample for t in tokenize(s, "slash")]
    single = sum(len(t) == 1 for t in toks)
    return "slash", "char" if toks and single > 0.9 * len(toks) else "word"


def encode(text, input_mode, word_to_id):
    """Ids of typed text; an unknown word falls back to its characters before becoming <unknown>."""
    ids = []
    for tok in tokenize(text, input_mode):
        if tok in word_to_id:
            ids.append(word_to_id[tok])
        elif len(tok) > 1 and all(c in word_to_id for c in tok):
            ids.extend(word_to_id[c] for c in tok)
        else:
            ids.append(UNK)
    return ids


# ----------------------------------------------------------------------------------------------------
# preprocessing into corpus.h5

def corpus_digest(files) -> str:
    import hashlib
    h = hashlib.sha1()
    for path in files:
        h.update(os.path.basename(path).encode() + b"\0" + file_digest(path).encode())
    return h.hexdigest()


def prepare(corpus, data_dir, tokens="auto", dataset=0, vocab_size=-1, min_word_freq=1, max_len=25,
            val_size=0.05, seed=123, quiet=False):
    """Build `data_dir/corpus.h5` (+ vocab.json) unless it is already fresh; returns its path.

    A corpus.h5 built from other files or other settings is rebuilt, never silently reused (the
    neuralconvo trap: a stale vocab.t7 next to a new corpus, issue #53)."""
    say = (lambda *a: None) if quiet else print
    fmt, files = corpus_files(corpus or builtin_corpus())
    digest = corpus_digest(files)
    settings = dict(format=FORMAT, tokens=tokens, dataset=int(dataset), vocab_size=int(vocab_size),
                    min_word_freq=int(min_word_freq), max_len=int(max_len), val_size=float(val_size),
                    seed=int(seed))
    os.makedirs(data_dir, exist_ok=True)
    h5_path = os.path.join(data_dir, "corpus.h5")
    if is_fresh(h5_path, digest, **settings):
        return h5_path
    if os.path.exists(h5_path):
        say(f"{h5_path} was built from another corpus or with other settings: rebuilding it")
    mode, input_mode = resolve_tokens(fmt, files, tokens)
    say(f"preprocessing {len(files)} {fmt} file(s) from {corpus or builtin_corpus()} "
        f"(tokens: {mode}, typed input split by {input_mode})")

    # pass 1: tokenize each turn once, write pairs with provisional ids (first-seen order)
    tmp_path = os.path.join(data_dir, f".corpus-pass1-{os.getpid()}.h5")
    provisional, counts = {}, Counter()
    rng = random.Random(seed)
    n_dialogs = n_pairs = 0
    try:
        with h5py.File(tmp_path, "w") as tmp:
            writers = {s: (RaggedWriter(tmp, f"{s}/src"), RaggedWriter(tmp, f"{s}/tgt")) for s in ("train", "val")}
            for dialog in read_dialogs(fmt, files):
                if dataset and n_dialogs >= dataset:
                    break
                n_dialogs += 1
                split = "val" if rng.random() < val_size else "train"  # split by dialog: no shared turns
                turns = []
                for text in dialog:
                    toks = tokenize(text, mode)
                    counts.update(toks)
                    turns.append([provisional.setdefault(t, len(provisional)) for t in toks])
                src_w, tgt_w = writers[split]
                for q, a in zip(turns, turns[1:]):
                    if q and a:
                        src_w.append(q[:max_len])
                        tgt_w.append(a[:max_len - 2])  # room for <go> and <eos>, as the original
                        n_pairs += 1
            for w in writers.values():
                w[0].flush()
                w[1].flush()
        if n_dialogs == 0:
            raise UserError(f"{corpus or builtin_corpus()}: corpus is empty (no dialogs found)")
        if n_pairs == 0:
            raise UserError(f"{corpus or builtin_corpus()}: no dialog pairs found (a pair is two consecutive "
                            "non-empty turns in one dialog, e.g. two `M ` lines after an `E` line)")

        # the vocabulary: most frequent words first (ties in first-seen order), cut by count and size
        kept = [w for w, c in sorted(counts.items(), key=lambda wc: (-wc[1], provisional[wc[0]]))
                if c >= min_word_freq]
        if vocab_size > 0:
            kept = kept[:vocab_size]
        words = SPECIALS + kept
        remap = np.full(len(provisional), UNK, dtype=np.int64)
        for i, w in enumerate(kept):
            remap[provisional[w]] = i + len(SPECIALS)
        provisional.clear()
        counts.clear()

        # pass 2: rewrite ids chunk by chunk into the final file
        out_tmp = f"{h5_path}.tmp-{os.getpid()}"
        dtype = id_dtype(len(words))
        with h5py.File(tmp_path, "r") as tmp, h5py.File(out_tmp, "w") as out:
            for split in ("train", "val"):
                for side in ("src", "tgt"):
                    name = f"{split}/{side}"
                    n_tok = tmp[f"{name}/tokens"].shape[0]
                    tok = out.create_dataset(f"{name}/tokens", shape=(n_tok,), dtype=dtype,
                                             chunks=(min(n_tok, 1 << 16),) if n_tok else None)
                    for a in range(0, n_tok, 1 << 20):
                        tok[a:a + (1 << 20)] = remap[tmp[f"{name}/tokens"][a:a + (1 << 20)]]
                    tmp.copy(tmp[f"{name}/offsets"], out[name], name="offsets")
            out.create_dataset("vocab", data=np.array(words, dtype=object), dtype=h5py.string_dtype())
            out.attrs["source_sha1"] = digest
            for k, v in settings.items():
                out.attrs[k] = v
            out.attrs["mode"] = mode
            out.attrs["input_mode"] = input_mode
            out.attrs["n_dialogs"] = n_dialogs
        os.replace(out_tmp, h5_path)
    finally:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
    write_json(os.path.join(data_dir, "vocab.json"),
               {"source_sha1": digest, "tokens": mode, "input_tokens": input_mode, "words": words})
    with h5py.File(h5_path, "r") as f:
        n_train, n_val = len(f["train/src/offsets"]) - 1, len(f["val/src/offsets"]) - 1
    say(f"{n_dialogs} dialogs, {n_train} training pairs, {n_val} validation pairs, vocabulary {len(words)} "
        f"-> {h5_path}")
    return h5_path


def read_meta(h5_path) -> dict:
    """Vocabulary and tokenization of a corpus.h5."""
    with h5py.File(h5_path, "r") as f:
        return {"words": [w.decode() if isinstance(w, bytes) else w for w in f["vocab"][...]],
                "tokens": str(f.attrs["mode"]), "input_tokens": str(f.attrs["input_mode"]),
                "source_sha1": str(f.attrs["source_sha1"])}


# ----------------------------------------------------------------------------------------------------
# batches streamed from corpus.h5

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
    """Pad a batch. Sources are reversed, as in the original (Sutskever et al.'s trick); targets become
    `<go> ...` (decoder input) and `... <eos>` (what it must predict)."""
    lengths = torch.tensor([max(len(s), 1) for s in src])
    x = torch.zeros(len(src), int(lengths.max()), dtype=torch.long)
    for i, s in enumerate(src):
        s = np.asarray(s, dtype=np.int64)[::-1].copy() if len(s) else np.array([UNK])
        x[i, :len(s)] = torch.from_numpy(s)
    if tgt is None:
        return x.to(device), lengths
    T = max(len(t) for t in tgt) + 1
    y_in = torch.zeros(len(tgt), T, dtype=torch.long)
    y_out = torch.zeros(len(tgt), T, dtype=torch.long)
    for i, t in enumerate(tgt):
        t = torch.from_numpy(np.asarray(t, dtype=np.int64))
        y_in[i, 0] = GO
        y_in[i, 1:len(t) + 1] = t
        y_out[i, :len(t)] = t
        y_out[i, len(t)] = EOS
    return x.to(device), lengths, y_in.to(device), y_out.to(device)


@options
class PrepOpts:
    """Preprocess a dialog corpus into DIR/corpus.h5 (train.py does this itself when needed)."""
    corpus: str = flag("", "a .conv file or folder, a Cornell movie-dialogs folder, or chatterbot YAML "
                           "(default: the built-in chatterbot Chinese corpus)")
    dataDir: str = flag("data/", "folder for corpus.h5 and vocab.json")
    dataset: int = flag(0, "approximate number of dialogs to use (0 = all)")
    tokens: str = flag("auto", "auto, word (jieba / English words), char, or slash (the corpus's / marks)")
    vocabSize: int = flag(-1, "keep this many most frequent words (-1 = all)")
    minWordFreq: int = flag(1, "drop words seen fewer times than this")
    maxExampleLen: int = flag(25, "at most this many tokens per turn")
    valSetSize: float = flag(0.05, "fraction of dialogs held out for validation")
    seed: int = flag(123, "seed of the validation split")


def main(opt):
    prepare(opt.corpus, opt.dataDir, opt.tokens, opt.dataset, opt.vocabSize, opt.minWordFreq,
            opt.maxExampleLen, opt.valSetSize, opt.seed)


if __name__ == "__main__":
    run(main, parse(PrepOpts))
