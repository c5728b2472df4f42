"""Build char-rnn checkpoints the way train.lua saves them (nngraph gModules), for importer tests.

The graphs mirror model/LSTM.lua, GRU.lua and RNN.lua node for node (inputs split off an innode,
Identity per input, OneHot, Linears feeding CAddTables, gates, LogSoftMax decoder); `reference_logprobs`
is an independent numpy transcription of the same equations.
"""
import numpy as np

from common import t7


class _Builder:
    def __init__(self):
        self.nodes = []

    def node(self, typename=None, parents=(), weight=None, bias=None, **data):
        d = {"annotations": {}, **data}
        if typename:
            m = {} if weight is None else {"weight": weight, "bias": bias}
            d["module"] = t7.TorchObject(typename.encode(), m)
        n = t7.TorchObject(b"nngraph.Node", {"data": d, "children": [], "id": len(self.nodes) + 1})
        for p in parents:
            p._obj["children"].append(n)
        self.nodes.append(n)
        return n


def make_checkpoint(model, text, H, L, seed=0, scale=0.5):
    """-> (checkpoint table, weights dict, byte vocab list) for a char-rnn model over the bytes of `text`."""
    rng = np.random.default_rng(seed)
    vocab = sorted(set(text.encode()))
    V = len(vocab)
    b, W = _Builder(), {}

    def lin(parent, n_out, n_in, name):
        W[name] = (rng.uniform(-scale, scale, (n_out, n_in)), rng.uniform(-scale, scale, n_out))
        return b.node("nn.Linear", [parent], *W[name])

    innode = b.node()
    split = b.node(parents=[innode], nSplitOutputs=1 + (2 * L if model == "lstm" else L))
    n_inputs = 1 + (2 * L if model == "lstm" else L)
    inputs = [b.node("nn.Identity", [b.node(parents=[split], selectindex=k + 1)]) for k in range(n_inputs)]
    x = b.node("OneHot", [inputs[0]])
    n_in = V
    for layer in range(L):
        if model == "lstm":
            prev_c, prev_h = inputs[2 * layer + 1], inputs[2 * layer + 2]
            i2h, h2h = lin(x, 4 * H, n_in, f"i2h{layer}"), lin(prev_h, 4 * H, H, f"h2h{layer}")
            chunks = b.node(parents=[b.node("nn.SplitTable", [b.node("nn.Reshape", [b.node("nn.CAddTable", [i2h, h2h])])])],
                            nSplitOutputs=4)
            g = [b.node(parents=[chunks], selectindex=k + 1) for k in range(4)]
            in_g, f_g, o_g = (b.node("nn.Sigmoid", [n]) for n in g[:3])
            tr = b.node("nn.Tanh", [g[3]])
            next_c = b.node("nn.CAddTable", [b.node("nn.CMulTable", [f_g, prev_c]), b.node("nn.CMulTable", [in_g, tr])])
            x = b.node("nn.CMulTable", [o_g, b.node("nn.Tanh", [next_c])])
        elif model == "gru":
            prev_h = inputs[layer + 1]
            gates = {}
            for gname in ("z", "r"):
                add = b.node("nn.CAddTable", [lin(x, H, n_in, f"i2h_{gname}{layer}"), lin(prev_h, H, H, f"h2h_{gname}{layer}")])
                gates[gname] = b.node("nn.Sigmoid", [add])
            p2 = lin(b.node("nn.CMulTable", [gates["r"], prev_h]), H, H, f"p2{layer}")
            p1 = lin(x, H, n_in, f"p1{layer}")
            cand = b.node("nn.Tanh", [b.node("nn.CAddTable", [p1, p2])])
            zh = b.node("nn.CMulTable", [gates["z"], cand])
            one_minus_z = b.node("nn.AddConstant", [b.node("nn.MulConstant", [gates["z"]])])
            x = b.node("nn.CAddTable", [zh, b.node("nn.CMulTable", [one_minus_z, prev_h])])
        else:
            prev_h = inputs[layer + 1]
            x = b.node("nn.Tanh", [b.node("nn.CAddTable", [lin(x, H, n_in, f"i2h{layer}"), lin(prev_h, H, H, f"h2h{layer}")])])
        n_in = H
    b.node("nn.LogSoftMax", [lin(x, V, H, "decoder")])
    gmodule = t7.TorchObject(b"nn.gModule", {"forwardnodes": b.nodes, "innode": innode,
                                             "modules": [t7.get(t7.get(n, "data"), "module") for n in b.nodes
                                                         if t7.get(t7.get(n, "data"), "module") is not None]})
    ckpt = {"protos": {"rnn": gmodule, "criterion": t7.TorchObject(b"nn.ClassNLLCriterion", {})},
            "opt": {"model": model, "rnn_size": H, "num_layers": L, "dropout": 0, "seq_length": 50,
                    "batch_size": 50, "gpuid": 0},
            "vocab": {bytes([c]): i + 1 for i, c in enumerate(vocab)}, "val_loss": 2.5, "i": 100, "epoch": 1.0,
            "train_losses": [3.0, 2.9], "val_losses": {100: 2.5}}
    return ckpt, W, vocab


def reference_logprobs(model, W, V, H, L, ids, dtype=np.float64):
    """char-rnn's forward pass in numpy, one id at a time from a zero state -> (len(ids), V) log-probs."""
    sig = lambda a: 1 / (1 + np.exp(-a))
    W = {k: (w.astype(dtype).astype(np.float64), bb.astype(dtype).astype(np.float64)) for k, (w, bb) in W.items()}
    lin = lambda name, v: W[name][0] @ v + W[name][1]
    c = [np.zeros(H) for _ in range(L)]
    h = [np.zeros(H) for _ in range(L)]
    out = []
    for i in ids:
        x = np.zeros(V)
        x[i] = 1
        for layer in range(L):
            if model == "lstm":
                a = lin(f"i2h{layer}", x) + lin(f"h2h{layer}", h[layer])
                ig, fg, og, tr = sig(a[:H]), sig(a[H:2 * H]), sig(a[2 * H:3 * H]), np.tanh(a[3 * H:])
                c[layer] = fg * c[layer] + ig * tr
                h[layer] = og * np.tanh(c[layer])
            elif model == "gru":
                z = sig(lin(f"i2h_z{layer}", x) + lin(f"h2h_z{layer}", h[layer]))
                r = sig(lin(f"i2h_r{layer}", x) + lin(f"h2h_r{layer}", h[layer]))
                cand = np.tanh(lin(f"p1{layer}", x) + lin(f"p2{layer}", r * h[layer]))
                h[layer] = z * cand + (1 - z) * h[layer]
            else:
                h[layer] = np.tanh(lin(f"i2h{layer}", x) + lin(f"h2h{layer}", h[layer]))
            x = h[layer]
        logits = lin("decoder", x)
        out.append(logits - logits.max() - np.log(np.exp(logits - logits.max()).sum()))
    return np.array(out)
