"""Original char-rnn checkpoints (.t7, CPU or GPU) -> our LanguageModel.

char-rnn saves an nngraph gModule per model type (model/LSTM.lua, GRU.lua, RNN.lua). Rather than
trusting module order (nngraph stores its nodes topologically sorted, not in creation order), each
nn.Linear is identified by where it sits in the graph: what feeds it and what it feeds. The vocabulary
of a char-rnn checkpoint is UTF-8 *bytes*; we keep each byte as a one-character string (latin-1) and
mark the checkpoint `unit = "byte"` so sampling turns bytes back into text.
"""
from collections import defaultdict

import torch

from charrnn.model import Config, LanguageModel
from common import t7
from common.cli import UserError


def _children(node):
    ch = t7.get(node, "children") or []
    items = ch.items() if isinstance(ch, dict) else enumerate(ch, 1)
    return [v for k, v in items if isinstance(k, int) and isinstance(v, t7.TorchObject)]


class _Graph:
    def __init__(self, gmodule):
        self.nodes = list(t7.get(gmodule, "forwardnodes"))
        self.parents = defaultdict(list)
        for n in self.nodes:
            for c in _children(n):
                self.parents[id(c)].append(n)

    @staticmethod
    def module(node):
        return t7.get(t7.get(node, "data"), "module")

    def kind(self, node):
        m = self.module(node)
        return t7.typename(m) if m is not None else None

    def children(self, node):
        return _children(node)

    def inputs(self):
        """{k: node carrying the k-th graph input}: the selectindex nodes under the graph's input split."""
        return {int(t7.get(t7.get(n, "data"), "selectindex")): n for n in self.nodes
                if t7.get(t7.get(n, "data"), "selectindex") is not None
                and all(self._is_input_split(p) for p in self.parents[id(n)])}

    def _is_input_split(self, split):
        # the graph's own input split hangs directly off the innode (no module, no parents)
        return self.kind(split) is None and all(self.kind(p) is None and not self.parents[id(p)]
                                                for p in self.parents[id(split)])

    def linears_fed_by(self, node):
        """Linear nodes reachable from `node` through pass-through nodes (Identity, OneHot, input splits)."""
        found = []
        for c in self.children(node):
            k = self.kind(c)
            if k == "nn.Linear":
                found.append(c)
            elif k in (None, "nn.Identity"):
                found.extend(self.linears_fed_by(c))
        return found

    def other_parent(self, node, not_this):
        return next(p for p in self.parents[id(node)] if p is not not_this)

    def params(self, linear):
        m = self.module(linear)
        return torch.from_numpy(t7.get(m, "weight").astype("float64")), \
            torch.from_numpy(t7.get(m, "bias").astype("float64"))


def load_t7(path):
    """-> (LanguageModel in float64 with the checkpoint's weights, vocab list, options dict)."""
    ck = t7.load(path)
    protos, opt_t7 = t7.get(ck, "protos"), t7.get(ck, "opt")
    rnn = t7.get(protos, "rnn") if protos is not None else None
    if rnn is None or opt_t7 is None or t7.get(ck, "vocab") is None or t7.typename(rnn) != "nn.gModule":
        raise UserError(f"{path}: not a char-rnn checkpoint (expected protos.rnn, opt and vocab, as train.lua "
                        f"saves)")
    opt = {t7.text(k): (t7.text(v) if isinstance(v, bytes) else v) for k, v in opt_t7.items()}
    model_type, H, L = opt["model"], int(opt["rnn_size"]), int(opt["num_layers"])
    vocab_map = t7.get(ck, "vocab")
    vocab = [None] * len(vocab_map)
    for ch, idx in vocab_map.items():
        b = ch if isinstance(ch, bytes) else str(ch).encode()
        vocab[int(idx) - 1] = b.decode("latin-1")  # one byte -> one char; see module doc
    V = len(vocab)
    g = _Graph(rnn)
    inputs = g.inputs()
    decoder = next(n for n in g.nodes if g.kind(n) == "nn.Linear"
                   and any(g.kind(c) == "nn.LogSoftMax" for c in g.children(n)))
    model = LanguageModel(Config(V, H, L, model_type, float(opt.get("dropout", 0)))).double()
    sd = {}
    for layer in range(L):
        prev_h = inputs[2 * layer + 3] if model_type == "lstm" else inputs[layer + 2]
        h_linears = g.linears_fed_by(prev_h)
        if model_type in ("lstm", "rnn"):
            (h2h,) = h_linears
            i2h = g.other_parent(g.children(h2h)[0], h2h)
            (wi, bi), (wh, bh) = g.params(i2h), g.params(h2h)
            if model_type == "lstm":
                model.rnn.load_charrnn_layer(layer, wi, bi, wh, bh)
            else:
                for name, src in (("weight_ih", wi), ("bias_ih", bi), ("weight_hh", wh), ("bias_hh", bh)):
                    sd[f"rnn.rnn.{name}_l{layer}"] = src
        else:  # char-rnn GRU: two gate sums, then p2(reset * h) + p1(x)
            gates = {}
            for h2h in h_linears:
                add = g.children(h2h)[0]
                sig = g.children(add)[0]
                update = any(g.kind(c) == "nn.MulConstant" for c in g.children(sig))
                gates["z" if update else "r"] = (g.other_parent(add, h2h), h2h, sig)
            i2h_r, h2h_r, sig_r = gates["r"]
            gated = next(c for c in g.children(sig_r) if g.kind(c) == "nn.CMulTable")
            p2 = next(c for c in g.children(gated) if g.kind(c) == "nn.Linear")
            p1 = g.other_parent(g.children(p2)[0], p2)
            named = {"i2h_z": gates["z"][0], "h2h_z": gates["z"][1], "i2h_r": i2h_r, "h2h_r": h2h_r,
                     "p2": p2, "p1": p1}
            for name, node in named.items():
                w, b = g.params(node)
                sd[f"rnn.layers.{layer}.{name}.weight"], sd[f"rnn.layers.{layer}.{name}.bias"] = w, b
    sd["decoder.weight"], sd["decoder.bias"] = g.params(decoder)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if unexpected or [k for k in missing if not (model_type == "lstm" and k.startswith("rnn.rnn."))]:
        raise UserError(f"{path}: its graph does not match char-rnn's {model_type} ({(missing + unexpected)[:3]})")
    model.eval()
    opt["unit"] = "byte"
    opt["val_loss"] = float(t7.get(ck, "val_loss") or float("nan"))
    return model, vocab, opt
