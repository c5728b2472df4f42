"""A count-based baseline: an interpolated Kneser-Ney n-gram language model of replies.

It reads only the reply (no question), over the same token ids as the seq2seq model, predicting
every token and <eos> after (n-1) <go>s, so its perplexity is directly comparable with the model's.
Interpolated Kneser-Ney (Chen & Goodman 1998) with one absolute discount per order,
D = n1 / (n1 + 2 n2) from that order's count-of-counts; the highest order uses counts, the lower ones
continuation counts (how many distinct tokens precede the n-gram), and the unigram level is
interpolated with the uniform distribution over the vocabulary, so no token gets probability zero.
"""
import math
from collections import Counter, defaultdict

from chatbot.tokens import EOS, GO


class KneserNey:
    def __init__(self, order, vocab_size):
        self.n, self.V = order, vocab_size

    def fit(self, replies):
        """replies: iterables of token ids (without <go>/<eos>)."""
        n = self.n
        top = Counter()  # counts of order-n n-grams
        for r in replies:
            seq = [GO] * (n - 1) + [int(t) for t in r] + [EOS]
            top.update(tuple(seq[i - n + 1:i + 1]) for i in range(n - 1, len(seq)))
        # counts per order k (length-k tuples): order n real counts, lower orders continuation counts
        self.counts = {n: top}
        for k in range(n - 1, 0, -1):
            self.counts[k] = Counter(g[1:] for g in self.counts[k + 1])  # distinct left extensions
        self.discount, self.context_total, self.context_types = {}, {}, {}
        for k, c in self.counts.items():
            n1 = sum(1 for v in c.values() if v == 1)
            n2 = sum(1 for v in c.values() if v == 2)
            self.discount[k] = n1 / (n1 + 2 * n2) if n1 + n2 else 0.5
            total, types = defaultdict(int), defaultdict(int)
            for g, v in c.items():
                total[g[:-1]] += v
                types[g[:-1]] += 1
            self.context_total[k], self.context_types[k] = total, types
        return self

    def prob(self, history, w):
        """P(w | the last n-1 tokens of history)."""
        p = 1.0 / self.V
        for k in range(1, self.n + 1):  # from unigrams up, each order interpolates with the one below
            h = tuple(history[len(history) - k + 1:]) if k > 1 else ()
            total = self.context_total[k].get(h, 0)
            if total == 0:
                continue  # unseen context: the lower order's estimate stands
            D = self.discount[k]
            c = self.counts[k].get(h + (w,), 0)
            p = max(c - D, 0) / total + D * self.context_types[k][h] / total * p
        return p

    def nll(self, replies):
        """(total negative log-probability, number of predicted tokens incl. <eos>)."""
        total, count = 0.0, 0
        for r in replies:
            seq = [GO] * (self.n - 1) + [int(t) for t in r] + [EOS]
            for i in range(self.n - 1, len(seq)):
                total -= math.log(self.prob(seq[i - self.n + 1:i], seq[i]))
                count += 1
        return total, count
