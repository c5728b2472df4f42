"""The seq2seq model: shapes, masking, attention vs plain, decoding rules, and that it can learn."""
import torch
import torch.nn.functional as F

from chatbot.batches import collate
from chatbot.tokens import EOS, GO, PAD, UNK
from chatbot.model import Seq2Seq, Seq2SeqConfig, banned_next


def make(attention="general", V=20, H=16, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    return Seq2Seq(Seq2SeqConfig(V, H, 1, dropout, attention)).eval()


def test_shapes_and_padding_is_ignored():
    for attention in ("general", "dot", "none"):
        m = make(attention)
        x, lengths, y_in, _ = collate([[5, 6, 7], [8]], [[9, 10], [11, 12, 13]])
        logits = m(x, lengths, y_in)
        assert logits.shape == (2, 4, 20)
        # the second source alone gives the same logits as inside the padded batch
        x1, l1, y1, _ = collate([[8]], [[11, 12, 13]])
        assert torch.allclose(m(x1, l1, y1)[0], logits[1], atol=1e-5)


def test_plain_model_has_no_attention_parameters():
    plain, attn = make("none"), make("general")
    n = lambda m: sum(p.numel() for p in m.parameters())
    assert n(attn) - n(plain) == 16 * 16 + 2 * 16 * 16  # W_a and W_c


def test_banned_next():
    assert banned_next([5, 5], 3) == {5}  # no third copy in a row
    assert banned_next([1, 2, 3, 1, 2], 3) == {3}  # "1 2 3" already said
    assert banned_next([1, 2], 3) == set()


def test_generate_never_says_unknown_and_never_loops():
    m = make("general")
    with torch.no_grad():
        m.decoder.out.bias[UNK] = 100.0  # a model that would answer <unknown> forever
        m.decoder.out.bias[7] = 50.0      # ... and then "7 7 7 7"
    x, lengths = collate([[4, 5, 6]])
    for beam in (1, 3):
        out = m.generate(x, lengths, max_len=10, beam=beam)
        assert 0 < len(out) <= 10
        assert UNK not in out and PAD not in out and GO not in out and EOS not in out
        assert not any(out[i] == out[i + 1] == out[i + 2] for i in range(len(out) - 2))
        grams = [tuple(out[i:i + 3]) for i in range(len(out) - 2)]
        assert len(grams) == len(set(grams))


def test_greedy_is_argmax_and_beam_finds_at_least_as_likely_replies():
    m = make("general", seed=3)
    x, lengths = collate([[4, 9, 6, 11]])
    trace = []
    greedy = m.generate(x, lengths, max_len=6, beam=1, no_repeat_ngram=0, trace=trace)
    assert [top[0][0] for top in trace[:len(greedy)]] == greedy  # each step took the top token

    def logprob(seq):
        _, _, y_in, y_out = collate([[4, 9, 6, 11]], [seq])
        lp = F.log_softmax(m(x, lengths, y_in), -1)[0]
        return lp.gather(1, y_out[0][:, None]).sum().item() / len(y_out[0])
    beam = m.generate(x, lengths, max_len=6, beam=5, no_repeat_ngram=0)
    if len(greedy) < 6:  # greedy ended by itself (not cut at max_len)
        assert logprob(beam) >= logprob(greedy) - 1e-4


def test_model_learns_to_answer_a_few_pairs():
    torch.manual_seed(0)
    pairs = [([4, 5], [6, 7, 8]), ([9, 10, 11], [12]), ([13], [14, 15]), ([5, 4], [16, 17])]
    m = Seq2Seq(Seq2SeqConfig(20, 32, 1, 0.0, "general"))
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    x, lengths, y_in, y_out = collate([p[0] for p in pairs], [p[1] for p in pairs])
    for _ in range(150):
        loss = F.cross_entropy(m(x, lengths, y_in).flatten(0, 1), y_out.flatten(), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    m.eval()
    for src, tgt in pairs:  # [4,5] and [5,4] differ only in order: the reply depends on it
        xs, ls = collate([src])
        assert m.generate(xs, ls, max_len=5) == tgt
