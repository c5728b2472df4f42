"""LSTM with char-rnn's parameter layout, run as PyTorch's fused `nn.LSTM`.

char-rnn (and neuraltalk2, densecap) compute per layer `all = i2h(x) + h2h(prev_h)` with
`i2h: Linear(in, 4H)`, `h2h: Linear(H, 4H)`, and split `all` into the in, forget and out gates and
the tanh transform, in that order. `nn.LSTM` computes the very same function with its gates ordered
in, forget, transform (g), out, so the original weights map one to one after swapping the last two
chunks. We keep `nn.LSTM` (one cuDNN/oneDNN call per sequence) as the only fast path and convert at
the boundary; `common.testing.lstm_reference.CharRNNLSTMCell` is the literal per-timestep port, kept
as the reference the fast path is tested against.
"""
import torch
import torch.nn as nn


def charrnn_to_torch_gates(t: torch.Tensor) -> torch.Tensor:
    """Reorder the 4H rows of an i2h/h2h weight or bias from (i, f, o, g) to nn.LSTM's (i, f, g, o)."""
    i, f, o, g = t.chunk(4, dim=0)
    return torch.cat([i, f, g, o], dim=0)


def torch_to_charrnn_gates(t: torch.Tensor) -> torch.Tensor:
    i, f, g, o = t.chunk(4, dim=0)
    return torch.cat([i, f, o, g], dim=0)


def lstm_cell(gates, c):
    """nn.LSTMCell's update from its summed input products (gates in PyTorch's order i, f, g, o) -> (h, c)."""
    i, f, g, o = gates.chunk(4, 1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class LSTM(nn.Module):
    """A stack of LSTM layers over (B, T, in) with char-rnn's init; state is a (h, c) pair of (L, B, H)."""

    def __init__(self, input_size, hidden_size, num_layers=1, dropout=0.0):
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        # nn.LSTM applies dropout to the outputs of every layer but the last, i.e. to the inputs of
        # layers 2..L: the same places char-rnn puts its nn.Dropout.
        self.rnn = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True,
                           dropout=dropout if num_layers > 1 else 0.0)
        self.reset_parameters()

    def reset_parameters(self, init_range=0.08, forget_bias=1.0):
        """char-rnn: uniform(-0.08, 0.08), then the forget-gate bias of every i2h set to 1."""
        H = self.hidden_size
        with torch.no_grad():
            for p in self.rnn.parameters():
                p.uniform_(-init_range, init_range)
            for layer in range(self.num_layers):
                getattr(self.rnn, f"bias_ih_l{layer}")[H:2 * H].fill_(forget_bias)

    def forward(self, x, state=None):
        return self.rnn(x, state)

    def load_charrnn_layer(self, layer, i2h_weight, i2h_bias, h2h_weight, h2h_bias):
        """Copy one layer's char-rnn i2h/h2h Linear parameters (out x in, gates i,f,o,g) in."""
        with torch.no_grad():
            for name, src in (("weight_ih", i2h_weight), ("bias_ih", i2h_bias),
                              ("weight_hh", h2h_weight), ("bias_hh", h2h_bias)):
                dst = getattr(self.rnn, f"{name}_l{layer}")
                src = torch.as_tensor(src, dtype=dst.dtype)
                if src.shape != dst.shape:
                    raise ValueError(f"layer {layer} {name}: shape {tuple(src.shape)} != {tuple(dst.shape)}")
                dst.copy_(charrnn_to_torch_gates(src))
