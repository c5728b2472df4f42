"""Preprocessing: a dialog corpus -> (question, answer) id pairs in DATADIR/corpus.h5, built once.

Two streaming passes, so memory grows with the vocabulary, never with the corpus: pass 1 tokenizes
every turn once and writes pairs with provisional ids to a temp HDF5 file while counting words; pass 2
picks the vocabulary and rewrites the ids, chunk by chunk, into corpus.h5. `CorpusOpts` is the one
definition of the corpus options, read by corpus.py's command line and (inherited) by train.py's.
"""
import hashlib
import os
import random
from collections import Counter

import h5py
import numpy as np

from chatbot.readers import builtin_corpus, corpus_files, read_dialogs
from chatbot.tokens import SEP, SPECIALS, UNK, resolve_tokens, tokenize, with_context
from common.cli import UserError, flag, options
from common.h5prep import RaggedWriter, file_digest, id_dtype, is_fresh, write_json

FORMAT = 2  # bump when the layout of corpus.h5 changes, so old files are rebuilt (2: <sep>, context)


@options
class CorpusOpts:
    """Preprocess a dialog corpus into DIR/corpus.h5 (train.py does this itself when needed)."""
    corpus: str = flag("", "a .conv file or folder, a Cornell movie-dialogs folder, or chatterbot YAML "
                           "(default: the built-in chatterbot Chinese corpus)")
    dataDir: str = flag("data/", "folder for corpus.h5 and vocab.json (and train.py's model files)")
    dataset: int = flag(0, "approximate number of dialogs to use (0 = all)", min=0)
    tokens: str = flag("auto", "auto (the corpus's / marks if it has them, else word), word (jieba for "
                               "Chinese, words for English), char, or slash")
    vocabSize: int = flag(-1, "keep this many most frequent words (-1 = all)", min=-1)
    minWordFreq: int = flag(1, "drop words seen fewer times than this", min=0)
    maxExampleLen: int = flag(25, "at most this many tokens per turn", min=1)
    valSetSize: float = flag(0.05, "fraction of dialogs held out for validation", min=0, max=1)
    context: int = flag(0, "also feed the encoder the N turns before the question, separated by <sep>", min=0)
    seed: int = flag(123, "random seed (the validation split; in train.py also initialisation, batch order, "
                          "dropout)")


def corpus_digest(files) -> str:
    h = hashlib.sha1()
    for path in files:
        h.update(os.path.basename(path).encode() + b"\0" + file_digest(path).encode())
    return h.hexdigest()


def prepare(opt: CorpusOpts, quiet=False) -> str:
    """Build `opt.dataDir/corpus.h5` (+ vocab.json) unless it is already fresh; returns its path.

    A corpus.h5 built from other files or other settings is rebuilt, never silently reused (the
    neuralconvo trap: a stale vocab.t7 next to a new corpus, issue #53)."""
    say = (lambda *a: None) if quiet else print
    if opt.context < 0:
        raise UserError(f"--context {opt.context}: give 0 or more previous turns")
    name = opt.corpus or builtin_corpus()
    fmt, files = corpus_files(name)
    digest = corpus_digest(files)
    settings = dict(format=FORMAT, tokens=opt.tokens, dataset=int(opt.dataset), vocab_size=int(opt.vocabSize),
                    min_word_freq=int(opt.minWordFreq), max_len=int(opt.maxExampleLen),
                    val_size=float(opt.valSetSize), context=int(opt.context), seed=int(opt.seed))
    os.makedirs(opt.dataDir, exist_ok=True)
    h5_path = os.path.join(opt.dataDir, "corpus.h5")
    if is_fresh(h5_path, digest, **settings):
        return h5_path
    if os.path.exists(h5_path):
        say(f"{h5_path} was built from another corpus or with other settings: rebuilding it")
    mode, input_mode = resolve_tokens(fmt, files, opt.tokens)
    say(f"preprocessing {len(files)} {fmt} file(s) from {name} (tokens: {mode}, typed input split by {input_mode})")
    tmp_path = os.path.join(opt.dataDir, f".corpus-pass1-{os.getpid()}.h5")
    try:
        provisional, counts, n_dialogs = _pass1(opt, fmt, files, mode, tmp_path, name)
        words = _vocabulary(provisional, counts, opt)
        _pass2(tmp_path, h5_path, words, provisional, digest, settings, mode, input_mode, n_dialogs)
    finally:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
    write_json(os.path.join(opt.dataDir, "vocab.json"),
               {"source_sha1": digest, "tokens": mode, "input_tokens": input_mode, "words": words})
    with h5py.File(h5_path, "r") as f:
        n_train, n_val = len(f["train/src/offsets"]) - 1, len(f["val/src/offsets"]) - 1
    say(f"{n_dialogs} dialogs, {n_train} training pairs, {n_val} validation pairs, vocabulary {len(words)} "
        f"-> {h5_path}")
    return h5_path


def _pass1(opt, fmt, files, mode, tmp_path, name):
    """Tokenize each turn once; write pairs with provisional ids (first-seen order; 0 = <sep>)."""
    provisional, counts = {"<sep>": 0}, Counter()
    rng = random.Random(opt.seed)
    n_dialogs = n_pairs = 0
    max_len = opt.maxExampleLen
    with h5py.File(tmp_path, "w") as tmp:
        writers = {s: (RaggedWriter(tmp, f"{s}/src"), RaggedWriter(tmp, f"{s}/tgt")) for s in ("train", "val")}
        for dialog in read_dialogs(fmt, files):
            if opt.dataset and n_dialogs >= opt.dataset:
                break
            n_dialogs += 1
            split = "val" if rng.random() < opt.valSetSize else "train"  # split by dialog: no shared turns
            turns = []
            for text in dialog:
                toks = tokenize(text, mode)
                counts.update(toks)
                turns.append([provisional.setdefault(t, len(provisional)) for t in toks])
            src_w, tgt_w = writers[split]
            for i, (q, a) in enumerate(zip(turns, turns[1:])):
                if q and a:
                    src_w.append(with_context(q, [t for t in turns[max(0, i - opt.context):i] if t], max_len, sep=0)
                                 if opt.context else q[:max_len])
                    tgt_w.append(a[:max_len - 2])  # room for <go> and <eos>, as the original
                    n_pairs += 1
        for src_w, tgt_w in writers.values():
            src_w.flush()
            tgt_w.flush()
    if n_dialogs == 0:
        raise UserError(f"{name}: corpus is empty (no dialogs found)")
    if n_pairs == 0:
        raise UserError(f"{name}: no dialog pairs found (a pair is two consecutive non-empty turns in one "
                        "dialog, e.g. two `M ` lines after an `E` line)")
    return provisional, counts, n_dialogs


def _vocabulary(provisional, counts, opt):
    """Most frequent words first (ties in first-seen order), cut by count and size, after the specials."""
    kept = [w for w, c in sorted(counts.items(), key=lambda wc: (-wc[1], provisional[wc[0]]))
            if c >= opt.minWordFreq and w not in SPECIALS]
    if opt.vocabSize > 0:
        kept = kept[:opt.vocabSize]
    return SPECIALS + kept


def _pass2(tmp_path, h5_path, words, provisional, digest, settings, mode, input_mode, n_dialogs):
    """Rewrite the provisional ids chunk by chunk into the final file (atomically)."""
    remap = np.full(len(provisional), UNK, dtype=np.int64)
    remap[0] = SEP
    for i, w in enumerate(words[len(SPECIALS):]):
        remap[provisional[w]] = i + len(SPECIALS)
    out_tmp = f"{h5_path}.tmp-{os.getpid()}"
    with h5py.File(tmp_path, "r") as tmp, h5py.File(out_tmp, "w") as out:
        for split in ("train", "val"):
            for side in ("src", "tgt"):
                name = f"{split}/{side}"
                n_tok = tmp[f"{name}/tokens"].shape[0]
                tok = out.create_dataset(f"{name}/tokens", shape=(n_tok,), dtype=id_dtype(len(words)),
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


def read_meta(h5_path) -> dict:
    """Vocabulary, tokenization and context of a corpus.h5."""
    with h5py.File(h5_path, "r") as f:
        return {"words": [w.decode() if isinstance(w, bytes) else w for w in f["vocab"][...]],
                "tokens": str(f.attrs["mode"]), "input_tokens": str(f.attrs["input_mode"]),
                "source_sha1": str(f.attrs["source_sha1"]), "context": int(f.attrs.get("context", 0)),
                "max_len": int(f.attrs["max_len"])}
