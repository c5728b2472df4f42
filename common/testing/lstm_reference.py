"""char-rnn's LSTM written per timestep as model/LSTM.lua does: the reference tests check the fused path against."""
import torch
from torch import nn

from common.lstm import torch_to_charrnn_gates


def charrnn_layer(lstm, layer):
    """The inverse of common.lstm.LSTM.load_charrnn_layer: (i2h_weight, i2h_bias, h2h_weight, h2h_bias)."""
    return tuple(torch_to_charrnn_gates(getattr(lstm.rnn, f"{n}_l{layer}").detach())
                 for n in ("weight_ih", "bias_ih", "weight_hh", "bias_hh"))


class CharRNNLSTMCell(nn.Module):
    """One timestep of char-rnn's LSTM, written as model/LSTM.lua does (reference implementation)."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.i2h = nn.Linear(input_size, 4 * hidden_size)
        self.h2h = nn.Linear(hidden_size, 4 * hidden_size)

    def forward(self, x, state):
        prev_c, prev_h = state
        in_gate, forget_gate, out_gate, in_transform = (self.i2h(x) + self.h2h(prev_h)).chunk(4, dim=-1)
        next_c = torch.sigmoid(forget_gate) * prev_c + torch.sigmoid(in_gate) * torch.tanh(in_transform)
        next_h = torch.sigmoid(out_gate) * torch.tanh(next_c)
        return next_c, next_h
