"""Sample text from a trained model, as char-rnn's sample.lua; on a terminal the text streams as it is generated.

    python sample.py cv/lm_lstm_epoch30.00_1.3950.pt -primetext "ROMEO:" -temperature 0.8 -length 500
    python sample.py lm_lstm_epoch17.33_1.5834.t7 -gpuid -1     # an original char-rnn checkpoint, no conversion
    python sample.py cv/lm_lstm_epoch30.00_1.3950.pt -num_samples 8 -length 1000 > samples.txt
"""
import sys
import time

from common.cli import UserError, flag, options, parse, run

SEPARATOR = "--------------------------"


@options
class SampleOptions:
    """Sample from a character-level language model (a .pt checkpoint or an original char-rnn .t7)."""
    model: str = flag(None, "model checkpoint to use for sampling (.pt, or char-rnn .t7)", positional=True)
    seed: int = flag(123, "random number generator's seed")
    sample: int = flag(1, "0 to use max at each timestep, 1 to sample at each timestep", min=0, max=1)
    primetext: str = flag("", "used as a prompt to \"seed\" the state of the LSTM using a given sequence, "
                              "before we sample")
    length: int = flag(2000, "number of characters (tokens) to sample after the primetext", min=0)
    temperature: float = flag(1.0, "temperature of sampling (> 0; 0 means argmax, as -sample 0)", min=0)
    gpuid: int = flag(0, "which gpu to use. -1 = use CPU", min=-1)
    opencl: int = flag(0, "accepted for compatibility; OpenCL is not supported", min=0, max=1)
    verbose: int = flag(1, "set to 0 to ONLY print the sampled text, no diagnostics", min=0, max=1)
    num_samples: int = flag(1, "new: this many independent samples in one batched run, printed one after "
                               f"another with a {SEPARATOR} line between them", min=1)
    threads: int = flag(1, "new: torch CPU threads (one is fastest for one character at a time; more can help "
                           "big models or many -num_samples)", min=1)


# the heavy imports come after the options: `-h` is answered before them (common.cli.options)
import torch

from charrnn.loader import tokenize
from charrnn.sampler import Draws, TextOut, load_model, stepper
from common.device import get_device


def check(opt: SampleOptions, err):
    if not opt.model:
        raise UserError("usage: python sample.py CHECKPOINT [-primetext TEXT] [-length N] ...")
    if opt.temperature != opt.temperature:  # NaN passes the flag's bound
        raise UserError(f"-temperature {opt.temperature:g}: must be > 0 (or 0 for argmax)")
    if opt.temperature == 0 and opt.sample:
        print("note: -temperature 0 picks the most likely token each step (as -sample 0)", file=err)
        opt.sample = 0


def prime_tokens(text, vocab, unit, tokens, err):
    """The primetext as vocabulary tokens; unknown ones are skipped with one warning."""
    if unit == "byte":
        prime = list(text.encode("utf-8").decode("latin-1"))
    else:
        prime = tokenize(text, tokens)[0] if text else []
    missing = sorted({t for t in prime if t not in vocab})
    if missing:
        shown = "".join(missing) if unit != "byte" else repr(bytes(ord(c) for c in missing))
        print(f"warning: primetext has {len(missing)} symbol(s) not in the model's vocabulary, skipped: {shown}",
              file=err)
    return [t for t in prime if t in vocab]


def generate_one(step, draw, logits, prime, index, vocab, length, writer):
    """One sample, written token by token (primetext echoed first, as sample.lua); `logits` before any."""
    for t in prime:
        writer.write(t)
        logits = step(index[t])
    nxt = int(draw(logits))
    for k in range(length):
        writer.write(vocab[nxt])
        if k + 1 < length:
            nxt = int(draw(step(nxt)))


def generate_batch(step, draw, logits, prime, index, length, n, device):
    """n samples side by side (one matmul per layer per step for all of them) -> n lists of token ids."""
    logits = logits.expand(n, -1)
    for t in prime:
        logits = step(torch.full((n,), index[t], dtype=torch.long, device=device))
    ids = torch.empty(length, n, dtype=torch.long, device=device)
    for k in range(length):
        ids[k] = draw(logits)
        if k + 1 < length:
            logits = step(ids[k])
    return ids.t().tolist()


def main(opt: SampleOptions, out=None):
    err = sys.stderr
    check(opt, err)
    say = (lambda *a: print(*a, file=err)) if opt.verbose else (lambda *a: None)
    torch.set_num_threads(opt.threads)
    device = get_device(opt.gpuid)
    torch.manual_seed(opt.seed)
    model, vocab, joiner, unit, tokens = load_model(opt.model)
    model.to(device).eval()
    index = {t: i for i, t in enumerate(vocab)}
    prime = prime_tokens(opt.primetext, index, unit, tokens, err)
    if prime:
        say(f"seeding with {opt.primetext}\n{SEPARATOR}")
    else:
        say(f"missing seed text, using uniform probability over first character\n{SEPARATOR}")

    n, dtype = opt.num_samples, model.decoder.weight.dtype
    t0 = time.perf_counter()
    with torch.no_grad():
        step = stepper(model, n)
        uniform = torch.zeros(1, len(vocab), dtype=dtype, device=device)  # no primetext: a uniform first draw
        draw = Draws(n, len(vocab), opt.temperature or 1.0, bool(opt.sample), dtype=dtype, device=device)
        if n == 1:
            writer = TextOut(unit, joiner, out)
            generate_one(step, draw, uniform, prime, index, vocab, opt.length, writer)
            writer.close()
        else:
            samples = generate_batch(step, draw, uniform, prime, index, opt.length, n, device)
            for j, ids in enumerate(samples):
                writer = TextOut(unit, joiner, out, live=False)
                if j:
                    writer.stream.write(SEPARATOR + "\n")
                for t in prime + [vocab[i] for i in ids]:
                    writer.write(t)
                writer.close()
    dt = time.perf_counter() - t0
    what = "chars" if tokens == "char" else "tokens"
    say(f"{SEPARATOR}\nsampled {n} x {opt.length} {what} in {dt:.2f} s "
        f"({n * opt.length / max(dt, 1e-9):,.0f} {what}/s)")


if __name__ == "__main__":
    run(main, parse(SampleOptions))
