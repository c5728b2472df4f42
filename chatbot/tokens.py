"""Turns of text <-> tokens <-> ids: jieba words, characters, or the corpus's own `/` marks."""
import re

from chatbot.model import EOS, GO, PAD, SEP, UNK
from chatbot.readers import read_dialogs
from common.cli import UserError
from common.text import CJK, jieba_cut

SPECIALS = ["<pad>", "<go>", "<eos>", "<unknown>", "<sep>"]  # the original's ids 0-3, plus <sep>
assert [PAD, GO, EOS, UNK, SEP] == list(range(len(SPECIALS)))
TOKEN_MODES = ("auto", "word", "char", "slash")

_ENGLISH = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
_CHARS = re.compile(r"[a-z0-9]+|\S")  # like the original's eval: ASCII runs stay whole, others split


def tokenize(text: str, mode: str) -> list:
    """Tokens of one turn. word: jieba for Chinese, words for English; char: one token per character
    (ASCII words kept whole); slash: the corpus's own `/` segmentation."""
    text = text.strip().lower()
    if mode == "slash":
        return [t.strip() for t in text.split("/") if t.strip()]
    if mode == "char":
        return _CHARS.findall(text)
    if CJK.search(text):
        return [t for t in jieba_cut(text) if t.strip()]
    return _ENGLISH.findall(text)


def detokenize(tokens) -> str:
    """Join tokens: no space between Chinese tokens, one space between English words."""
    out = ""
    for t in tokens:
        if out and not (CJK.search(out[-1]) or CJK.search(t[0])) and t[0].isalnum() and out[-1] != " ":
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


def with_context(question, previous, max_len, sep=SEP):
    """The encoder's input: the question, then each earlier turn, most recent first, joined by <sep>
    (reversed by `collate`, so the question's first token is read last, next to the decoder)."""
    ids = list(question[:max_len])
    for turn in reversed(previous):
        ids += [sep, *turn[:max_len]]
    return ids
