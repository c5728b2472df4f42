"""The char-rnn language model: one-hot (or embedded) tokens -> LSTM / GRU / RNN stack -> logits.

Parameters follow char-rnn (model/LSTM.lua, GRU.lua, RNN.lua) so original checkpoints map onto them
one to one (see lua_checkpoint.py): the LSTM is common.lstm.LSTM (fused nn.LSTM), the vanilla RNN is
nn.RNN(tanh), and the GRU is char-rnn's own variant, which is not nn.GRU (reset gate applied before
the h2h map; h' = z * candidate + (1 - z) * h).

`Config` is what a model is: train.py builds it once from the options, every checkpoint stores it, and
sample.py and convert.py rebuild the model from it.
"""
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from common.lstm import LSTM

MODEL_TYPES = ("lstm", "gru", "rnn")


@dataclass
class Config:
    vocab_size: int
    rnn_size: int = 128
    num_layers: int = 2
    model: str = "lstm"  # lstm, gru or rnn (char-rnn's -model)
    dropout: float = 0.0
    wordvec_size: int = 0  # 0: one-hot input, as char-rnn; N: a learned N-dim embedding

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_checkpoint(cls, ck):
        """The checkpoint's `config`; a checkpoint written before there was one holds the same facts in its
        `opt` (rnn_size, num_layers, model, dropout), its vocabulary and its `wordvec_size` (what the model
        used: `opt` has 0 where -tokens word chose 256)."""
        if "config" in ck:
            return cls.from_dict(ck["config"])
        o = ck["opt"]
        return cls(len(ck["vocab"]), int(o["rnn_size"]), int(o["num_layers"]), o["model"], float(o.get("dropout", 0)),
                   int(ck.get("wordvec_size", o.get("wordvec_size", 0))))


class CharRNNGRU(nn.Module):
    """char-rnn's GRU stack. Input projections are computed for the whole sequence at once; only the
    h-dependent part runs per timestep."""

    def __init__(self, input_size, hidden_size, num_layers=1, dropout=0.0):
        super().__init__()
        self.hidden_size, self.num_layers, self.dropout = hidden_size, num_layers, dropout
        self.layers = nn.ModuleList()
        for L in range(num_layers):
            n_in = input_size if L == 0 else hidden_size
            self.layers.append(nn.ModuleDict({
                "i2h_z": nn.Linear(n_in, hidden_size), "h2h_z": nn.Linear(hidden_size, hidden_size),
                "i2h_r": nn.Linear(n_in, hidden_size), "h2h_r": nn.Linear(hidden_size, hidden_size),
                "p2": nn.Linear(hidden_size, hidden_size), "p1": nn.Linear(n_in, hidden_size)}))

    def forward(self, x, h0=None):
        if h0 is None:
            h0 = x.new_zeros(self.num_layers, x.size(0), self.hidden_size)
        next_h = []
        for L, m in enumerate(self.layers):
            if L > 0 and self.dropout > 0:
                x = F.dropout(x, self.dropout, self.training)
            xz, xr, xp = m["i2h_z"](x), m["i2h_r"](x), m["p1"](x)
            h, outs = h0[L], []
            for t in range(x.size(1)):
                z = torch.sigmoid(xz[:, t] + m["h2h_z"](h))
                r = torch.sigmoid(xr[:, t] + m["h2h_r"](h))
                candidate = torch.tanh(xp[:, t] + m["p2"](r * h))
                h = z * candidate + (1 - z) * h
                outs.append(h)
            x = torch.stack(outs, dim=1)
            next_h.append(h)
        return x, torch.stack(next_h)


class VanillaRNN(nn.Module):
    """char-rnn's RNN: next_h = tanh(i2h(x) + h2h(prev_h)), i.e. nn.RNN(nonlinearity='tanh')."""

    def __init__(self, input_size, hidden_size, num_layers=1, dropout=0.0):
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.rnn = nn.RNN(input_size, hidden_size, num_layers, nonlinearity="tanh", batch_first=True,
                          dropout=dropout if num_layers > 1 else 0.0)

    def forward(self, x, h0=None):
        return self.rnn(x, h0)


class LanguageModel(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.vocab_size, self.model_type, self.wordvec_size = cfg.vocab_size, cfg.model, cfg.wordvec_size
        # char-rnn feeds one-hot vectors (util/OneHot.lua); an embedding is the same map for large vocabularies
        self.embed = nn.Embedding(cfg.vocab_size, cfg.wordvec_size) if cfg.wordvec_size > 0 else None
        n_in = cfg.wordvec_size if cfg.wordvec_size > 0 else cfg.vocab_size
        cls = {"lstm": LSTM, "gru": CharRNNGRU, "rnn": VanillaRNN}.get(cfg.model)
        if cls is None:
            raise ValueError(f"unknown model type {cfg.model!r} (use lstm, gru or rnn)")
        self.rnn = cls(n_in, cfg.rnn_size, cfg.num_layers, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)
        self.decoder = nn.Linear(cfg.rnn_size, cfg.vocab_size)
        self.reset_parameters()

    def reset_parameters(self):
        """char-rnn: every parameter uniform(-0.08, 0.08), LSTM forget-gate biases (i2h) at 1."""
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-0.08, 0.08)
        if isinstance(self.rnn, LSTM):
            self.rnn.reset_parameters()

    def forward(self, idx, state=None):
        """idx: (B, T) token ids -> logits (B, T, V), next state (to carry to the next chunk)."""
        if self.embed is not None:
            x = self.embed(idx)
        else:
            x = F.one_hot(idx, self.vocab_size).to(self.decoder.weight.dtype)
        out, state = self.rnn(x, state)
        return self.decoder(self.drop(out)), state


def detach_state(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()

