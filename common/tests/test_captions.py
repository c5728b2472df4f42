"""common.captions, common.caption_lm, common.lang_eval, common.browser."""
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common import browser, captions, lang_eval
from common.caption_lm import LanguageModel, caption_loss
from common.cli import UserError
from common.testing.lstm_reference import CharRNNLSTMCell, charrnn_layer


# ---------------------------------------------------------------- captions
def test_tokenize_matches_neuraltalk2_prepro():
    assert captions.tokenize("A man, in a tri-colored hat!  Runs.") == ["a", "man", "in", "a", "tricolored", "hat", "runs"]
    assert captions.tokenize("  ") == []


def test_vocab_threshold_unk_and_roundtrip():
    toks = [["a", "dog", "runs"], ["a", "dog", "sits"], ["a", "cat"]]
    vocab = captions.build_vocab(toks, count_threshold=1)
    assert vocab == ["a", "dog", "UNK"]  # a: 3, dog: 2 kept (> 1); cat/runs/sits dropped
    assert captions.build_vocab(toks, count_threshold=0)[-1] != "UNK"
    i2w = captions.ix_to_word_of(vocab)
    assert i2w == {"1": "a", "2": "dog", "3": "UNK"}
    w2i = captions.word_to_ix_of(i2w)
    ids = captions.encode(["a", "cat", "dog", "a"], w2i, max_length=3)
    assert ids.tolist() == [1, 3, 2] and ids.dtype.kind == "i"
    assert captions.encode(["dog"], w2i, 4).tolist() == [2, 0, 0, 0]
    assert captions.decode([1, 2, 0, 1], i2w) == "a dog"
    assert captions.decode([2, 4, 1], i2w) == "dog"  # 4 = END (no word): stop
    assert captions.decode_batch(np.array([[1, 0], [2, 2]]), i2w) == ["a", "dog dog"]
    with pytest.raises(KeyError):
        captions.encode(["zebra"], {"a": 1}, 2)


# ---------------------------------------------------------------- language model
V, E, H = 7, 6, 5


def make_lm(num_layers=1, seq_length=5, seed=0):
    torch.manual_seed(seed)
    lm = LanguageModel(V, E, H, num_layers=num_layers, dropout=0.0, seq_length=seq_length).eval()
    with torch.no_grad():
        for p in lm.parameters():
            p.uniform_(-0.8, 0.8)  # big weights: sharp, order-sensitive distributions
    return lm


def lua_reference(lm):
    """The Lua model rebuilt literally: lookup table (1-based tokens), per-layer i2h/h2h cells, decoder."""
    cells = []
    for layer in range(lm.lstm.num_layers):
        cell = CharRNNLSTMCell(E if layer == 0 else H, H)
        w_ih, b_ih, w_hh, b_hh = charrnn_layer(lm.lstm, layer)
        with torch.no_grad():
            cell.i2h.weight.copy_(w_ih), cell.i2h.bias.copy_(b_ih)
            cell.h2h.weight.copy_(w_hh), cell.h2h.bias.copy_(b_hh)
        cells.append(cell)

    def step(x, state):  # state: list of (c, h) per layer; returns (logsoftmax over tokens 1..V+1, state)
        new = []
        for cell, s in zip(cells, state):
            c, h = cell(x, s)
            new.append((c, h))
            x = h
        return F.log_softmax(lm.logit(x), -1), new

    def lookup(token):  # 1-based Lua token -> embedding
        return lm.embed.weight[token - 1]

    return step, lookup


def test_forward_and_loss_match_lua_per_step_model():
    lm = make_lm(num_layers=2)
    step, lookup = lua_reference(lm)
    feats = torch.randn(3, E)
    labels = torch.tensor([[3, 1, 4, 0], [2, 7, 1, 5], [6, 0, 0, 0]])
    logits = lm(feats, labels)
    assert logits.shape == (3, 6, V + 1)
    total, n = 0.0, 0
    for b in range(3):
        state = [(torch.zeros(H), torch.zeros(H))] * 2
        inputs = [feats[b], lookup(V + 1)] + [lookup(int(t)) if t > 0 else lookup(1) for t in labels[b]]
        outs = []
        for x in inputs:
            lp, state = step(x, state)
            outs.append(lp)
        outs = torch.stack(outs)
        assert torch.allclose(F.log_softmax(logits[b], -1), outs, atol=1e-5)
        # LanguageModelCriterion: targets seq[1..D] then the first END, padding after it ignored
        seq = labels[b].tolist() + [0]
        for t, target in enumerate(seq):
            if target == 0:
                total -= float(outs[t + 1, V].detach())
                n += 1
                break
            total -= float(outs[t + 1, target - 1].detach())
            n += 1
    assert math.isclose(float(lm.loss(logits, labels)), total / n, rel_tol=1e-5)


def lua_greedy(lm, feat):
    step, lookup = lua_reference(lm)
    state = [(torch.zeros(H), torch.zeros(H))] * lm.lstm.num_layers
    _, state = step(feat, state)
    lp, state = step(lookup(V + 1), state)
    words, lps = [], []
    for _ in range(lm.seq_length):
        token = int(lp.argmax()) + 1
        lps.append(float(lp.max()))
        if token == V + 1:
            break
        words.append(token)
        lp, state = step(lookup(token), state)
    return words, lps


def test_greedy_sample_matches_lua_loop_and_beam1():
    lm = make_lm(num_layers=2, seq_length=6)
    feats = torch.randn(4, E)
    with torch.no_grad():
        seq, lps = lm.sample(feats)
        seq1, lps1 = lm.sample(feats, beam_size=1)
    assert seq.shape == (4, 6) and torch.equal(seq, seq1)
    for b in range(4):
        words, ref = lua_greedy(lm, feats[b])
        assert seq[b, :len(words)].tolist() == words and (seq[b, len(words):] == 0).all()
        assert np.allclose(lps[b, :len(ref)].numpy(), ref, atol=1e-5)
        assert (lps[b, len(ref):] == 0).all()


def test_decode_step_is_step_and_follows_the_weights():
    """eval-mode decode_step: step's arithmetic on rearranged weights, kept between decodes without autograd
    and rebuilt when a parameter changes in place (an optimizer step) or autograd is on (gradients flow)."""
    lm = make_lm(num_layers=2, seq_length=6, seed=3).eval()
    feats = torch.randn(3, E)
    with torch.no_grad():
        for rows in (feats[:1], feats):  # one row and several take different matmuls
            want, got = lm.start(rows), lm.start(rows, lm.decode_step())
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        logprobs, state = lm.start(feats)
        ix = logprobs.argmax(1)
        want, (wh, wc) = lm.step(ix, state)
        got, (gh, gc) = lm.decode_step()(ix, state)
        torch.testing.assert_close(lm.decode_step()(ix[:1], tuple(s[:1] for s in state))[0], want[:1], atol=1e-5,
                                   rtol=1e-5)
        assert lm._decode_key is not None
        kept = lm._decode_weights
        lm.decode_step()
        assert lm._decode_weights is kept  # the same weights: nothing rearranged again
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close((gh, gc), (wh, wc), atol=1e-6, rtol=1e-5)
        lm.logit.weight.mul_(2)  # as an optimizer's in-place update
        torch.testing.assert_close(lm.decode_step()(ix, state)[0], lm.step(ix, state)[0], atol=1e-5, rtol=1e-5)
        assert lm._decode_weights is not kept
    out, _ = lm.decode_step()(ix, state)  # autograd on: built from the parameters, so gradients reach them
    out.sum().backward()
    assert lm.logit.weight.grad.abs().sum() > 0 and lm.lstm.rnn.weight_hh_l1.grad.abs().sum() > 0


def sequence_logprob(lm, feat, tokens):
    """log P(tokens then END, or tokens cut at seq_length) by teacher forcing."""
    labels = torch.tensor([tokens + [0] * (lm.seq_length - len(tokens))])
    lp = F.log_softmax(lm(feat[None], labels), -1)[0]
    total = sum(float(lp[t + 1, w - 1]) for t, w in enumerate(tokens))
    if len(tokens) < lm.seq_length:
        total += float(lp[len(tokens) + 1, V])
    return total


def test_beam_search_is_exact_when_the_beam_holds_every_prefix():
    lm = make_lm(seq_length=3, seed=1)
    feats = torch.randn(2, E)
    with torch.no_grad():
        seq, lps = lm.sample(feats, beam_size=(V + 1) ** 2)
        for b in range(2):
            best = max((sequence_logprob(lm, feats[b], list(s[:n])), list(s[:n]))
                       for n in range(4) for s in itertools.product(range(1, V + 1), repeat=n)
                       if len(s) == n)
            got = [w for w in seq[b].tolist() if w > 0]
            assert got == best[1]
            assert math.isclose(float(lps[b].sum()), best[0], abs_tol=1e-4)


def test_beam_search_batched_equals_one_image_at_a_time_and_beats_greedy():
    lm = make_lm(num_layers=2, seq_length=6, seed=2)
    feats = torch.randn(5, E)
    with torch.no_grad():
        seq, lps = lm.sample(feats, beam_size=3)
        gseq, glps = lm.sample(feats)
        for b in range(5):
            s, lp = lm.sample(feats[b:b + 1], beam_size=3)
            assert torch.equal(s[0], seq[b]) and torch.allclose(lp[0], lps[b], atol=1e-5)
    assert (lps.sum(1) >= glps.sum(1) - 1e-5).all()
    # the returned per-token log-probs are the model's own for that sequence
    for b in range(5):
        tokens = [w for w in seq[b].tolist() if w > 0]
        with torch.no_grad():
            assert math.isclose(sequence_logprob(lm, feats[b], tokens), float(lps[b].sum()), abs_tol=1e-4)


def test_sampling_with_temperature_keeps_graph_and_is_seeded():
    lm = make_lm(seq_length=5).train()
    feats = torch.randn(3, E)
    torch.manual_seed(5)
    seq, lps = lm.sample(feats, sample_max=False, temperature=0.7)
    torch.manual_seed(5)
    seq2, _ = lm.sample(feats, sample_max=False, temperature=0.7)
    assert torch.equal(seq, seq2)
    lps.sum().backward()
    assert lm.logit.weight.grad is not None and lm.logit.weight.grad.abs().sum() > 0


def test_scheduled_sampling_path_equals_teacher_forcing_when_never_sampling():
    lm = make_lm(num_layers=2).train()  # dropout 0, so train mode is deterministic
    feats, labels = torch.randn(2, E), torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    fused = lm(feats, labels)
    stepwise = lm(feats, labels, ss_prob=1e-12)
    assert torch.allclose(fused, stepwise, atol=1e-5)
    torch.manual_seed(0)
    mixed = lm(feats, labels, ss_prob=1.0)  # every word replaced by the model's own sample
    assert mixed.shape == fused.shape and not torch.allclose(mixed[:, 3:], fused[:, 3:])


def test_loss_learns_a_tiny_language():
    torch.manual_seed(0)
    lm = LanguageModel(4, 8, 16, dropout=0.0, seq_length=4)
    feats = torch.eye(8)[:2]
    labels = torch.tensor([[1, 2, 3, 0], [4, 4, 0, 0]])
    opt = torch.optim.Adam(lm.parameters(), lr=0.05)
    for _ in range(80):
        opt.zero_grad()
        loss = lm.loss(lm(feats, labels), labels)
        loss.backward()
        opt.step()
    assert float(loss) < 0.05
    lm.eval()
    with torch.no_grad():
        assert lm.sample(feats)[0].tolist() == labels.tolist()
        assert lm.sample(feats, beam_size=2)[0].tolist() == labels.tolist()
    assert float(caption_loss(torch.zeros(1, 3, 5), torch.tensor([[0]]), 4)) == pytest.approx(math.log(5))


# ---------------------------------------------------------------- metrics
def test_lang_eval_scores_and_meteor_pairs():
    refs = {1: ["a dog runs on the grass .", "a brown dog running"], 2: ["two men ride bikes", "men on bicycles"]}
    perfect = lang_eval.score(refs, {1: "a dog runs on the grass", 2: "two men ride bikes"})
    assert set(perfect) == {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr"}
    assert perfect["Bleu_1"] == pytest.approx(1.0, abs=1e-6) and perfect["ROUGE_L"] == pytest.approx(1.0)
    assert perfect["METEOR"] > 0.8
    bad = lang_eval.score(refs, {1: "a cat sleeps", 2: ""})
    assert bad["CIDEr"] < perfect["CIDEr"] and bad["METEOR"] < perfect["METEOR"] and bad["Bleu_4"] < 1e-3
    pairs = lang_eval.meteor_score_pairs(["a red circle", "a green square", "x"],
                                         [["a red circle"], ["a green triangle"], ["a red circle"]])
    assert len(pairs) == 3 and pairs[0] > 0.9 and 0 < pairs[1] < pairs[0] and pairs[2] == 0
    with pytest.raises(UserError, match="no reference"):
        lang_eval.score({1: ["x"]}, {2: "y"})


def test_lang_eval_without_java_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(lang_eval.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="Java"):
        lang_eval.score({1: ["a b"]}, {1: "a b"})
    with pytest.raises(UserError, match="Java"):
        lang_eval.meteor_score_pairs(["a"], [["a"]])


# ---------------------------------------------------------------- browser
def test_serve_folder_and_headless_chromium(tmp_path):
    browser.require_chromium()
    (tmp_path / "index.html").write_text(
        "<html><body><div id=out></div><script>fetch('data.json').then(r => r.json())"
        ".then(d => { document.getElementById('out').textContent = d.msg; });</script></body></html>")
    (tmp_path / "data.json").write_text('{"msg": "hello from json"}')
    from selenium.webdriver.support.ui import WebDriverWait

    with browser.serve_folder(tmp_path) as url, browser.headless_chromium() as driver:
        driver.get(url + "/index.html")
        WebDriverWait(driver, 20).until(lambda d: d.find_element("id", "out").text)
        assert driver.find_element("id", "out").text == "hello from json"
