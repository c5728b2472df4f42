"""Caption text as neuraltalk2 and densecap handle it: tokens, a count-thresholded vocabulary, id arrays.

Ids are 1-based (0 is padding), as the originals' label h5 files store them; `ix_to_word` is the
json-style dict {"1": "a", ...} with "UNK" as the last entry when any word was dropped.
"""
import string
from collections import Counter

import numpy as np

UNK = "UNK"
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def tokenize(sentence: str) -> list:
    """neuraltalk2's prepro: lowercase, delete every ASCII punctuation character, split on whitespace."""
    return str(sentence).lower().translate(_PUNCTUATION).split()


def build_vocab(token_lists, count_threshold: int) -> list:
    """Words seen more than `count_threshold` times, most frequent first, plus 'UNK' if any were dropped.

    neuraltalk2 keeps words with count > threshold (a word seen <= 5 times becomes UNK by default).
    Ties are broken alphabetically so the vocabulary does not depend on the order of the dataset.
    """
    counts = Counter(w for tokens in token_lists for w in tokens)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    vocab = [w for w, n in ranked if n > count_threshold]
    if len(vocab) < len(counts):
        vocab.append(UNK)
    return vocab


def ix_to_word_of(vocab) -> dict:
    """The json mapping {"1": word, ...} for a vocabulary list."""
    return {str(i + 1): w for i, w in enumerate(vocab)}


def word_to_ix_of(ix_to_word: dict) -> dict:
    return {w: int(i) for i, w in ix_to_word.items()}


def encode(tokens, word_to_ix: dict, max_length: int) -> np.ndarray:
    """Tokens -> int array of exactly `max_length` ids (1-based, 0 = pad); unknown words -> UNK; truncated."""
    out = np.zeros(max_length, dtype=np.int64)
    unk = word_to_ix.get(UNK)
    for k, w in enumerate(tokens[:max_length]):
        ix = word_to_ix.get(w, unk)
        if ix is None:
            raise KeyError(f"word {w!r} is not in the vocabulary and the vocabulary has no {UNK}")
        out[k] = ix
    return out


def decode(seq, ix_to_word: dict) -> str:
    """Ids -> sentence, stopping at the first 0 (or at any id with no word, such as END)."""
    words = []
    for ix in np.asarray(seq).reshape(-1).tolist():
        word = ix_to_word.get(str(int(ix)))
        if int(ix) == 0 or word is None:
            break
        words.append(word)
    return " ".join(words)


def decode_batch(seqs, ix_to_word: dict) -> list:
    return [decode(s, ix_to_word) for s in np.asarray(seqs)]
