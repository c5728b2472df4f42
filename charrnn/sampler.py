"""Generating text one token at a time, fast: a step written for one character, and exact draws.

`nn.LSTM` is the right tool for training (one fused call per sequence) but costs ~0.5 ms per call in
set-up and Python, which sampling pays once per character. `LSTMStep` does the same arithmetic with
a handful of in-place ops on preallocated buffers:
- layer 1's input is one-hot (or an embedding), so `W_ih x + b` is a row of a precomputed V x 4H table;
- the hidden states of all layers live side by side in one (B, L*H) buffer, so layer l's input and its
  own previous state, [h_{l-1} | h_l], are one contiguous slice and one matmul with [W_ih; W_hh];
- gates are kept in char-rnn's order (in, forget, out, transform): one sigmoid covers the first three.

Draws use the Gumbel-max trick: argmax(logits / T + G) with G = -log(Exp(1)) noise is an exact draw
from softmax(logits / T); the noise comes in blocks, so a draw is one add and one argmax.
"""
import codecs
import sys

import torch

from charrnn.lua_checkpoint import load_t7
from charrnn.model import Config, LanguageModel
from common import checkpoint
from common.lstm import LSTM, torch_to_charrnn_gates


def load_model(path):
    """-> (model, vocab, joiner, unit, tokens) from our .pt or an original char-rnn .t7."""
    if str(path).endswith(".t7"):
        model, vocab, _ = load_t7(path)  # float64, as the original evaluates CPU checkpoints
        return model, vocab, "", "byte", "char"
    ck = checkpoint.load(path, "charrnn")
    model = LanguageModel(Config.from_checkpoint(ck))  # older checkpoints: from their opt (see Config)
    model.load_state_dict(ck["model"])
    return model, ck["vocab"], ck.get("joiner", ""), ck.get("unit", "char"), ck.get("tokens", "char")


class LSTMStep:
    """One token in, next-token logits out, for a LanguageModel with an LSTM; B rows at once."""

    def __init__(self, model: LanguageModel, batch_size=1):
        rnn: LSTM = model.rnn
        H, L = rnn.hidden_size, rnn.num_layers
        p = {n: t.detach() for n, t in rnn.rnn.named_parameters()}
        w = lambda n, k: torch_to_charrnn_gates(p[f"{n}_l{k}"])  # (4H, in), gates i, f, o, g
        with torch.no_grad():
            first = w("weight_ih", 0).t()  # (V or wordvec, 4H)
            if model.embed is not None:
                first = model.embed.weight.detach() @ first
            self.table = (first + w("bias_ih", 0) + w("bias_hh", 0)).contiguous()  # (V, 4H): W_ih onehot + b
            self.w_hh0 = w("weight_hh", 0).t().contiguous()  # (H, 4H)
            self.w = [torch.cat([w("weight_ih", k), w("weight_hh", k)], 1).t().contiguous() for k in range(1, L)]
            self.b = [(w("bias_ih", k) + w("bias_hh", k)).contiguous() for k in range(1, L)]
            self.dec_w = model.decoder.weight.detach().t().contiguous()  # (H, V)
            self.dec_b = model.decoder.bias.detach().contiguous()
        dt, dev = self.table.dtype, self.table.device
        B = batch_size
        self.H, self.L, self.B = H, L, B
        self.h = torch.zeros(B, L * H, dtype=dt, device=dev)  # [h_1 | h_2 | ... | h_L]
        self.c = torch.zeros(L, B, H, dtype=dt, device=dev)
        self.gates = torch.empty(L, B, 4 * H, dtype=dt, device=dev)
        self.tanh_c = torch.empty(B, H, dtype=dt, device=dev)
        self.logits = torch.empty(B, self.dec_w.size(1), dtype=dt, device=dev)
        # views made once: per layer (gates, sigmoid part, i, f, o, g, c, own h slice, matmul input)
        self.views = []
        for k in range(L):
            g, own_h = self.gates[k], self.h[:, k * H:(k + 1) * H]
            below_and_own = self.h[:, (k - 1) * H:(k + 1) * H] if k else None
            self.views.append((g, g[:, :3 * H], g[:, :H], g[:, H:2 * H], g[:, 2 * H:3 * H], g[:, 3 * H:],
                               self.c[k], own_h, below_and_own))
        self.h_top = self.h[:, (L - 1) * H:]

    def __call__(self, tokens) -> torch.Tensor:
        """tokens: an int (B = 1) or a (B,) long tensor -> logits (B, V), a buffer reused by the next call."""
        for k, (g, sig, i, f, o, tr, c, h, inp) in enumerate(self.views):
            if k > 0:  # [h_{k-1} | h_k] @ [W_ih; W_hh] + b
                torch.addmm(self.b[k - 1], inp, self.w[k - 1], out=g)
            elif type(tokens) is int:  # table row + h_0 @ W_hh
                torch.addmm(self.table[tokens], h, self.w_hh0, out=g)
            else:
                torch.index_select(self.table, 0, tokens, out=g).addmm_(h, self.w_hh0)
            sig.sigmoid_()
            tr.tanh_()
            c.mul_(f).addcmul_(i, tr)
            torch.mul(o, torch.tanh(c, out=self.tanh_c), out=h)
        return torch.addmm(self.dec_b, self.h_top, self.dec_w, out=self.logits)


class ModuleStep:
    """The same interface over any LanguageModel (char-rnn's GRU and RNN): one forward call per token."""

    def __init__(self, model: LanguageModel, batch_size=1):
        self.model, self.state, self.B = model, None, batch_size
        self.device = next(model.parameters()).device

    def __call__(self, tokens) -> torch.Tensor:
        idx = torch.tensor([[tokens]], device=self.device) if isinstance(tokens, int) else tokens.view(-1, 1)
        logits, self.state = self.model(idx, self.state)
        return logits[:, -1]


def stepper(model: LanguageModel, batch_size=1):
    """The fastest step function for this model (LSTM: LSTMStep; GRU, RNN: the module itself)."""
    return LSTMStep(model, batch_size) if isinstance(model.rnn, LSTM) else ModuleStep(model, batch_size)


class Draws:
    """Picks the next token from logits (B, V): argmax, or an exact draw from softmax(logits / T).

    Gumbel-max: argmax(logits / T + G), G = -log(E), E ~ Exp(1) i.i.d., is distributed as
    softmax(logits / T). Noise for `block` steps is drawn at once from torch's generator (seeded), so
    a draw is one add and one argmax.
    """

    def __init__(self, batch_size, vocab_size, temperature=1.0, sample=True, block=256, dtype=torch.float32,
                 device="cpu"):
        block = max(1, min(block, 2**20 // (batch_size * vocab_size)))  # at most ~1M noise values held
        self.sample, self.scale, self.block = sample, 1.0 / temperature if sample else 1.0, block
        self.noise = torch.empty(block, batch_size, vocab_size, dtype=dtype, device=device)
        self.scores = torch.empty(batch_size, vocab_size, dtype=dtype, device=device)
        self.out = torch.empty(batch_size, dtype=torch.long, device=device)
        self.k = block

    def _gumbel(self):
        if self.k == self.block:
            self.noise.exponential_().log_().neg_()
            self.k = 0
        self.k += 1
        return self.noise[self.k - 1]

    def __call__(self, logits) -> torch.Tensor:
        """-> (B,) long tensor of token ids (a buffer reused by the next call)."""
        if not self.sample:
            return torch.argmax(logits, 1, out=self.out)
        torch.add(self._gumbel(), logits, alpha=self.scale, out=self.scores)
        return torch.argmax(self.scores, 1, out=self.out)


class TextOut:
    """Writes tokens as text; byte vocabularies are decoded incrementally as UTF-8.

    On a terminal every token is flushed as it comes (the text streams); to a file or a pipe the
    text is written in blocks, which is what makes `sample.py > out.txt` fast.
    """

    def __init__(self, unit, joiner, stream=None, live=None):
        self.stream = stream or sys.stdout
        self.live = live if live is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace") if unit == "byte" else None
        self.joiner, self.prev, self.pending = joiner, None, []

    def write(self, token):
        if self.decoder is not None:
            text = self.decoder.decode(token.encode("latin-1"))
        else:
            sep = self.joiner if self.joiner and self.prev not in (None, "\n") and token != "\n" else ""
            text = sep + token
        self.prev = token
        if self.live:
            self.stream.write(text)
            self.stream.flush()
        else:
            self.pending.append(text)
            if len(self.pending) >= 4096:
                self.flush()

    def flush(self):
        self.stream.write("".join(self.pending))
        self.pending.clear()
        self.stream.flush()

    def close(self):
        if self.decoder is not None:
            self.pending.append(self.decoder.decode(b"", final=True))
        self.pending.append("\n")
        self.flush()
