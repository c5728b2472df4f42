"""Sampling: the fast step equals the model, draws follow softmax(logits / T), and bad flags are one line."""
import io
import math

import numpy as np
import pytest
import torch

from charrnn import sample
from charrnn.model import Config, LanguageModel
from charrnn.sampler import Draws, LSTMStep, ModuleStep, TextOut, stepper
from common import checkpoint
from common.cli import UserError, parse, run

VOCAB = list("abcdefghij klmnopqrstuvwxyz.,\n")


def peaked_model(model="lstm", H=24, L=2, wordvec=0, seed=0, dtype=torch.float32, scale=2.5):
    """A random model with weights large enough that its argmax text is varied (not one repeated char)."""
    torch.manual_seed(seed)
    m = LanguageModel(Config(len(VOCAB), H, L, model, 0.0, wordvec)).to(dtype).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.uniform_(-scale, scale)
    return m


def save_model(m, path, vocab=VOCAB):
    """A checkpoint as train.py wrote them before model.Config: the sizes in `opt`, no `config` (so every
    test here that samples from one checks that such checkpoints still load)."""
    o = {"rnn_size": m.decoder.in_features, "num_layers": m.rnn.num_layers, "model": m.model_type}
    checkpoint.save(path, "charrnn", {"model": m.float().state_dict(), "opt": o, "vocab": vocab, "joiner": "",
                                      "tokens": "char", "wordvec_size": m.wordvec_size})
    return str(path)


def run_sample(path, *args):
    out = io.StringIO()
    sample.main(parse(sample.SampleOptions, [str(path), "-gpuid", "-1", "-verbose", "0", *args]), out)
    return out.getvalue()


@pytest.mark.parametrize("wordvec,dtype,B", [(0, torch.float32, 1), (0, torch.float64, 3), (8, torch.float32, 4)])
def test_lstm_step_equals_the_module(wordvec, dtype, B):
    m = peaked_model(wordvec=wordvec, L=3, dtype=dtype, scale=0.5)
    step, state = LSTMStep(m, B), None
    tokens = torch.randint(0, len(VOCAB), (40, B))
    with torch.no_grad():
        for t in tokens:
            ref, state = m(t.view(B, 1), state)  # nn.LSTM, the training path
            ours = step(int(t[0]) if B == 1 else t)
            torch.testing.assert_close(ours, ref[:, 0], rtol=1e-5, atol=1e-5 if dtype == torch.float32 else 1e-12)


def reference_argmax(m, prime, length):
    """Today's sampling loop before the fast step: nn.LSTM per token, argmax of log_softmax in float64."""
    index = {t: i for i, t in enumerate(VOCAB)}
    state, out = None, list(prime)
    with torch.no_grad():
        for ch in prime:
            logits, state = m(torch.tensor([[index[ch]]]), state)
        for _ in range(length):
            nxt = int(torch.argmax(torch.log_softmax(logits[0, -1].double(), -1)))
            out.append(VOCAB[nxt])
            logits, state = m(torch.tensor([[nxt]]), state)
    return "".join(out) + "\n"


@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_argmax_text_is_the_models_argmax(tmp_path, model):
    # float64 and large weights: a varied, chaotic text where any difference in arithmetic would show
    m = peaked_model(model, dtype=torch.float64)
    index = {t: i for i, t in enumerate(VOCAB)}
    out = io.StringIO()
    writer = TextOut("char", "", out)
    with torch.no_grad():
        sample.generate_one(stepper(m), Draws(1, len(VOCAB), sample=False, dtype=torch.float64), None,
                            list("the cat"), index, VOCAB, 400, writer)
    writer.close()
    expected = reference_argmax(m, "the cat", 400)
    assert out.getvalue() == expected and len({expected[i:i + 4] for i in range(400)}) > 50
    # float32 through sample.py, as a user runs it; -temperature 0 is the same argmax
    m = peaked_model(model, scale=1.5)
    path = save_model(m, tmp_path / "m.pt")
    text = run_sample(path, "-sample", "0", "-primetext", "the cat", "-length", "200")
    assert text == reference_argmax(m, "the cat", 200)
    assert run_sample(path, "-temperature", "0", "-primetext", "the cat", "-length", "200") == text


def test_draws_follow_softmax_at_the_temperature():
    """Chi-square goodness of fit of 200,000 draws from fixed logits, at T = 1 and T = 0.5."""
    torch.manual_seed(0)
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0, 1.5, 0.2])
    n = 200_000
    for T in (1.0, 0.5):
        draw = Draws(n, len(logits), temperature=T)
        counts = np.bincount(draw(logits.expand(n, -1)).numpy(), minlength=len(logits))
        expected = n * torch.softmax(logits / T, -1).double().numpy()
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < 24.3, (T, chi2, counts, expected)  # the 0.999 quantile of chi-square with 7 dof
    # the draws of successive steps are fresh noise: 2 blocks of 2 steps all differ
    draw = Draws(1000, 8, block=2)
    rows = [draw(logits.expand(1000, -1)).clone() for _ in range(4)]
    assert all(not torch.equal(rows[a], rows[b]) for a in range(4) for b in range(a))


def test_sampled_text_reproducible_for_a_seed(tmp_path):
    path = save_model(peaked_model(), tmp_path / "m.pt")
    a, b = run_sample(path, "-seed", "5", "-length", "300"), run_sample(path, "-seed", "5", "-length", "300")
    c = run_sample(path, "-seed", "6", "-length", "300")
    assert a == b and a != c and len(a) == 301
    # a lower temperature concentrates the draws: fewer distinct 3-grams
    cold = run_sample(path, "-seed", "5", "-length", "300", "-temperature", "0.3")
    assert len({cold[i:i + 3] for i in range(300)}) < len({a[i:i + 3] for i in range(300)})


def test_num_samples_are_independent_and_counted(tmp_path, capsys):
    m = peaked_model()
    path = save_model(m, tmp_path / "m.pt")
    out = io.StringIO()
    sample.main(parse(sample.SampleOptions, [path, "-gpuid", "-1", "-num_samples", "5", "-length", "60",
                                             "-primetext", "the ", "-temperature", "1.5"]), out)
    parts = out.getvalue().split(sample.SEPARATOR + "\n")
    assert len(parts) == 5 and all(p.startswith("the ") and len(p) == 65 for p in parts)
    assert len(set(parts)) == 5
    assert "sampled 5 x 60 chars in" in capsys.readouterr().err
    # argmax in a batch gives the single-run argmax text five times
    batch = run_sample(path, "-sample", "0", "-num_samples", "5", "-length", "60", "-primetext", "the ")
    assert batch.split(sample.SEPARATOR + "\n") == [run_sample(path, "-sample", "0", "-length", "60",
                                                               "-primetext", "the ")] * 5


def test_module_step_for_gru_and_rnn_matches_stepper_choice():
    assert isinstance(stepper(peaked_model("lstm")), LSTMStep)
    assert isinstance(stepper(peaked_model("gru")), ModuleStep)
    assert isinstance(stepper(peaked_model("rnn", L=1)), ModuleStep)


def test_nan_temperature_is_one_line(tmp_path):
    """Out-of-range sizes are refused where the flags are declared (test_bad_input.py); NaN passes a bound."""
    path = save_model(peaked_model(), tmp_path / "m.pt")
    with pytest.raises(UserError, match="-temperature nan: must be > 0"):
        run_sample(path, "-temperature", "nan")


def test_temperature_zero_says_argmax_and_text_file_checkpoint_is_one_line(tmp_path, capsys):
    """As the script runs them (common.cli.run): a note for -temperature 0; one error line, exit 1, for a
    text file given as the checkpoint (torch's own error would be `KeyError: 544502645`)."""
    path = save_model(peaked_model(), tmp_path / "m.pt")
    run(sample.main, parse(sample.SampleOptions, [path, "-gpuid", "-1", "-temperature", "0", "-length", "20",
                                                  "-verbose", "0"]))
    out, err = capsys.readouterr()
    assert "-temperature 0 picks the most likely token" in err and len(out) == 21
    (tmp_path / "text.pt").write_text("this is not a checkpoint\n" * 40)
    with pytest.raises(SystemExit) as e:
        run(sample.main, parse(sample.SampleOptions, [str(tmp_path / "text.pt"), "-gpuid", "-1"]))
    out, err = capsys.readouterr()
    assert e.value.code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: {tmp_path / 'text.pt'}: not a torch-classics checkpoint (")


def test_text_streams_to_a_terminal_and_is_blocked_to_a_file():
    class Stream(io.StringIO):
        def __init__(self, tty):
            super().__init__()
            self.tty, self.flushed = tty, []

        def isatty(self):
            return self.tty

        def flush(self):
            self.flushed.append(self.getvalue())

    for tty in (True, False):
        s = Stream(tty)
        w = TextOut("char", "", s)
        for ch in "hello":
            w.write(ch)
        assert s.getvalue() == ("hello" if tty else "")  # on a terminal each token is out at once
        w.close()
        assert s.getvalue() == "hello\n" and len(s.flushed) == (6 if tty else 1)
    s = Stream(False)  # a byte vocabulary (Lua checkpoints) is decoded as UTF-8 across tokens
    w = TextOut("byte", "", s)
    for b in "你好".encode():
        w.write(chr(b))
    w.close()
    assert s.getvalue() == "你好\n"


def test_chi_square_threshold_is_meaningful():
    """The fit test above rejects a wrong temperature: draws at T = 1 judged against T = 0.5."""
    torch.manual_seed(1)
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0, 1.5, 0.2])
    n = 200_000
    counts = np.bincount(Draws(n, 8, temperature=1.0)(logits.expand(n, -1)).numpy(), minlength=8)
    expected = n * torch.softmax(logits / 0.5, -1).double().numpy()
    assert float(((counts - expected) ** 2 / expected).sum()) > 1000
    assert math.isclose(counts.sum(), n)


def test_config_checkpoint_and_older_checkpoint_build_the_same_model(tmp_path):
    """A checkpoint holds model.Config; one written before it (sizes in `opt`, the embedding size that
    -tokens word chose beside it, not in `opt`) still loads into the same model and samples the same."""
    from charrnn.sampler import load_model
    m = peaked_model("gru", H=16, L=2, wordvec=8, scale=0.5)
    new = tmp_path / "new.pt"
    checkpoint.save(new, "charrnn", {"model": m.state_dict(), "config": m.cfg.to_dict(), "vocab": VOCAB,
                                     "opt": {"rnn_size": 999}})  # `opt` is only the record of the flags
    old = tmp_path / "old.pt"
    checkpoint.save(old, "charrnn", {"model": m.state_dict(), "vocab": VOCAB, "tokens": "char", "wordvec_size": 8,
                                     "opt": {"rnn_size": 16, "num_layers": 2, "model": "gru", "wordvec_size": 0}})
    for path in (new, old):
        assert load_model(path)[0].cfg == m.cfg == Config(len(VOCAB), 16, 2, "gru", 0.0, 8)
    assert run_sample(new, "-length", "80", "-seed", "3") == run_sample(old, "-length", "80", "-seed", "3")
    assert Config.from_dict(dict(m.cfg.to_dict(), added_later=1)) == m.cfg  # unknown fields are ignored
