"""CIDEr-D as the self-critical reward: document frequencies cached once from the training references.

The same formula as pycocoevalcap's CiderScorer (n = 1..4, tf-idf vectors, Gaussian length penalty
sigma = 6, clipped numerator, x10), but the idf comes from the whole training corpus (the modern
repos' `--cached_tokens`) instead of from the batch being scored, and tokens are our own (no Java).
"""
import math
from collections import Counter

import numpy as np

N_MAX, SIGMA = 4, 6.0


def ngrams(tokens, n_max=N_MAX):
    c = Counter()
    for n in range(1, n_max + 1):
        for i in range(len(tokens) - n + 1):
            c[tuple(tokens[i:i + n])] += 1
    return c


class CiderD:
    def __init__(self, corpus_refs):
        """corpus_refs: list (one entry per image) of lists of token lists."""
        self.df = Counter()
        for refs in corpus_refs:
            self.df.update(set(g for r in refs for g in ngrams(r)))
        self.ref_len = math.log(float(len(corpus_refs)))

    def vec(self, tokens):
        counts = ngrams(tokens)
        vec = [{} for _ in range(N_MAX)]
        norm = [0.0] * N_MAX
        for g, tf in counts.items():
            n = len(g) - 1
            v = tf * (self.ref_len - math.log(max(1.0, self.df.get(g, 0.0))))
            vec[n][g] = v
            norm[n] += v * v
        return vec, [math.sqrt(x) for x in norm], len(tokens)

    def score(self, candidate, refs):
        """CIDEr-D of one tokenized candidate against its tokenized references."""
        vh, nh, lh = self.vec(candidate)
        total = np.zeros(N_MAX)
        for r in refs:
            vr, nr, lr = self.vec(r)
            pen = math.exp(-((lh - lr) ** 2) / (2 * SIGMA ** 2))
            for n in range(N_MAX):
                val = sum(min(v, vr[n].get(g, 0.0)) * vr[n].get(g, 0.0) for g, v in vh[n].items())
                if nh[n] != 0 and nr[n] != 0:
                    val /= nh[n] * nr[n]
                total[n] += val * pen
        return float(total.mean() / max(len(refs), 1) * 10.0)

    def scores(self, candidates, refs_per_candidate):
        return np.array([self.score(c, r) for c, r in zip(candidates, refs_per_candidate)])
