"""Sample text from a trained model, as char-rnn's sample.lua; the text streams as it is generated.

    python sample.py cv/lm_lstm_epoch30.00_1.3950.pt -primetext "ROMEO:" -temperature 0.8 -length 500
    python sample.py lm_lstm_epoch17.33_1.5834.t7 -gpuid -1     # an original char-rnn checkpoint, no conversion
"""
import codecs
import sys

import torch

from charrnn.loader import tokenize
from charrnn.model import LanguageModel
from common import checkpoint
from common.cli import UserError, flag, options, parse, run
from common.device import get_device


@options
class SampleOptions:
    """Sample from a character-level language model (a .pt checkpoint or an original char-rnn .t7)."""
    model: str = flag(None, "model checkpoint to use for sampling (.pt, or char-rnn .t7)", positional=True)
    seed: int = flag(123, "random number generator's seed")
    sample: int = flag(1, "0 to use max at each timestep, 1 to sample at each timestep")
    primetext: str = flag("", "used as a prompt to \"seed\" the state of the LSTM using a given sequence, "
                              "before we sample")
    length: int = flag(2000, "number of characters (tokens) to sample after the primetext")
    temperature: float = flag(1.0, "temperature of sampling")
    gpuid: int = flag(0, "which gpu to use. -1 = use CPU")
    opencl: int = flag(0, "accepted for compatibility; OpenCL is not supported")
    verbose: int = flag(1, "set to 0 to ONLY print the sampled text, no diagnostics")


def load_model(path):
    """-> (model, vocab, joiner, unit, tokens) from our .pt or an original char-rnn .t7."""
    if path.endswith(".t7"):
        from charrnn.convert import load_t7
        model, vocab, _ = load_t7(path)  # float64, as the original evaluates CPU checkpoints
        return model, vocab, "", "byte", "char"
    ck = checkpoint.load(path, "charrnn")
    o = ck["opt"]
    model = LanguageModel(len(ck["vocab"]), o["rnn_size"], o["num_layers"], o["model"], 0.0, ck.get("wordvec_size", 0))
    model.load_state_dict(ck["model"])
    return model, ck["vocab"], ck.get("joiner", ""), ck.get("unit", "char"), ck.get("tokens", "char")


class TextOut:
    """Writes tokens to stdout as they come; byte vocabularies are decoded incrementally as UTF-8."""

    def __init__(self, unit, joiner, stream=None):
        self.stream = stream or sys.stdout
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace") if unit == "byte" else None
        self.joiner, self.prev = joiner, None

    def write(self, token):
        if self.decoder is not None:
            text = self.decoder.decode(token.encode("latin-1"))
        else:
            sep = self.joiner if self.joiner and self.prev not in (None, "\n") and token != "\n" else ""
            text = sep + token
        self.prev = token
        self.stream.write(text)
        self.stream.flush()

    def close(self):
        if self.decoder is not None:
            self.stream.write(self.decoder.decode(b"", final=True))
        self.stream.write("\n")
        self.stream.flush()


def main(opt: SampleOptions, out=None):
    if not opt.model:
        raise UserError("usage: python sample.py CHECKPOINT [-primetext TEXT] [-length N] ...")
    err = sys.stderr
    say = (lambda *a: print(*a, file=err)) if opt.verbose else (lambda *a: None)
    device = get_device(opt.gpuid)
    torch.manual_seed(opt.seed)
    model, vocab, joiner, unit, tokens = load_model(opt.model)
    model.to(device).eval()
    index = {t: i for i, t in enumerate(vocab)}
    writer = TextOut(unit, joiner, out)

    if unit == "byte":
        prime = list(opt.primetext.encode("utf-8").decode("latin-1"))
    else:
        prime = tokenize(opt.primetext, tokens)[0] if opt.primetext else []
    missing = sorted({t for t in prime if t not in index})
    if missing:
        shown = "".join(missing) if unit != "byte" else repr(bytes(ord(c) for c in missing))
        print(f"warning: primetext has {len(missing)} symbol(s) not in the model's vocabulary, skipped: {shown}",
              file=err)
    prime = [t for t in prime if t in index]

    state, logprobs = None, None
    with torch.no_grad():
        if prime:
            say(f"seeding with {opt.primetext}\n--------------------------")
            for t in prime:  # one token at a time, echoing it, as sample.lua does
                writer.write(t)
                logits, state = model(torch.tensor([[index[t]]], device=device), state)
                logprobs = torch.log_softmax(logits[0, -1].double(), -1)
        else:
            say("missing seed text, using uniform probability over first character\n--------------------------")
            logprobs = torch.full((len(vocab),), -torch.log(torch.tensor(float(len(vocab)))).item(),
                                  dtype=torch.float64, device=device)
        for _ in range(opt.length):
            if opt.sample == 0:
                nxt = int(torch.argmax(logprobs))
            else:
                probs = torch.softmax(logprobs / opt.temperature, -1)
                nxt = int(torch.multinomial(probs.float(), 1))
            writer.write(vocab[nxt])
            logits, state = model(torch.tensor([[nxt]], device=device), state)
            logprobs = torch.log_softmax(logits[0, -1].double(), -1)
    writer.close()


if __name__ == "__main__":
    run(main, parse(SampleOptions))
