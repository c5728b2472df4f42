"""The Kneser-Ney baseline: numbers worked by hand, and a proper distribution for any history."""
import math

import pytest

from chatbot.ngram import KneserNey


def test_bigram_probability_worked_by_hand():
    lm = KneserNey(2, vocab_size=8).fit([[5, 6], [5, 7]])
    # bigrams <go>5 (x2), 5 6, 6 <eos>, 5 7, 7 <eos>: D2 = n1/(n1+2n2) = 4/6. Unigram continuation
    # counts 5:1 6:1 <eos>:2 7:1 (total 5, 4 types, D1 = 3/5): P(6) = 0.4/5 + 0.6*4/5/8 = 0.14
    assert lm.prob([5], 6) == pytest.approx(1 / 6 + (2 / 3) * (2 / 2) * 0.14)
    assert lm.prob([4], 6) == pytest.approx(0.14)  # unseen history: the unigram estimate
    total, count = lm.nll([[5, 6]])
    assert count == 3 and total == pytest.approx(-math.log(lm.prob([1], 5) * lm.prob([5], 6) * lm.prob([6], 2)))


@pytest.mark.parametrize("order", [1, 3, 4])
def test_every_history_gives_a_distribution(order):
    replies = [[5, 6, 7, 5, 6], [6, 7], [5, 5, 8, 9], [9, 6, 7, 2]]
    lm = KneserNey(order, vocab_size=12).fit(replies)
    for history in ([1, 1, 1], [5, 6, 7], [7, 5, 6], [11, 10, 9], [1, 1, 5]):
        assert sum(lm.prob(history, w) for w in range(12)) == pytest.approx(1.0)
    # more context helps on the training data itself
    if order > 1:
        assert lm.nll(replies)[0] < KneserNey(1, 12).fit(replies).nll(replies)[0]
