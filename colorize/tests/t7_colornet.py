"""Write colornet.t7-shaped files (`{mean, model = nn.gModule}`) at small sizes, and run them in plain numpy.

The graph follows what colorize.lua and the fine-tuning scripts show of the published model: two graph
inputs (X1 224x224 for the global path, X2 full size), a low-level nn.Sequential on each (weights shared),
mid-level on X2, the global conv + FC stack ending at 512 on X1, then a Sequential of Linear(512, 256),
ReLU and two nn.Replicate (the nodes colorize.lua resizes), a JoinTable, fusion and the colorization
Sequential ending in a Sigmoid; optionally a classification branch off the 512-d output and BatchNorm
(with 2015's running_std). `reference_forward` is an independent numpy transcription of that network.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from common import t7

LOW = [(1, 64, 2), (64, 128, 1), (128, 128, 2), (128, 256, 1), (256, 256, 2), (256, 512, 1)]
MID = [(512, 512, 1), (512, 256, 1)]
GLOBAL = [(512, 512, 2), (512, 512, 1), (512, 512, 2), (512, 512, 1)]
COLOR = [(256, 128, 1), "up", (128, 64, 1), (64, 64, 1), "up", (64, 32, 1)]


def T(name, **fields):
    return t7.TorchObject(name.encode(), fields)


class _Graph:
    def __init__(self):
        self.nodes = []

    def node(self, module=None, parents=(), **data):
        n = t7.TorchObject(b"nngraph.Node", {"data": {"annotations": {}, "module": module, **data},
                                             "children": [], "id": len(self.nodes) + 1})
        if module is None:
            del n._obj["data"]["module"]
        for p in parents:
            p._obj["children"].append(n)
        self.nodes.append(n)
        return n


class _Weights:
    def __init__(self, rng, width, bn, running_std, mm):
        self.rng, self.width, self.bn, self.running_std, self.mm = rng, width, bn, running_std, mm

    def c(self, n):
        return max(1, n // self.width) if n > 2 else n

    def conv(self, cin, cout, stride=1, k=3, relu=True, bn=None):
        cin, cout = self.c(cin), self.c(cout)
        w = self.rng.normal(0, (2 / (cin * k * k)) ** 0.5, (cout, cin, k, k))
        b = self.rng.normal(0, 0.05, cout)
        spec = {"kind": "conv", "w": w, "b": b, "stride": stride, "relu": relu}
        fields = dict(weight=w.reshape(cout, -1) if self.mm else w, bias=b, dW=stride, dH=stride, kW=k, kH=k,
                      padW=k // 2, padH=k // 2, nInputPlane=cin, nOutputPlane=cout)
        mods = [T("nn.SpatialConvolutionMM" if self.mm else "nn.SpatialConvolution", **fields)]
        specs = [spec]
        if self.bn if bn is None else bn:
            mean, var = self.rng.normal(0, 0.1, cout), self.rng.uniform(0.5, 2, cout)
            gamma, beta, eps = self.rng.uniform(0.5, 1.5, cout), self.rng.normal(0, 0.1, cout), 1e-5
            stats = {"running_std": 1 / np.sqrt(var + eps)} if self.running_std else {"running_var": var}
            mods.append(T("nn.SpatialBatchNormalization", weight=gamma, bias=beta, running_mean=mean, eps=eps,
                          **stats))
            specs.append({"kind": "bn", "mean": mean, "var": var, "gamma": gamma, "beta": beta, "eps": eps})
            spec["relu"] = False
            specs[-1]["relu"] = relu
        if relu:
            mods.append(T("nn.ReLU", inplace=True))
        return mods, specs

    def linear(self, nin, nout, relu=True, scale_out=True):
        nin, nout = self.c(nin), self.c(nout) if scale_out else nout
        w, b = self.rng.normal(0, (2 / nin) ** 0.5, (nout, nin)), self.rng.normal(0, 0.05, nout)
        mods = [T("nn.Linear", weight=w, bias=b)] + ([T("nn.ReLU")] if relu else [])
        return mods, [{"kind": "fc", "w": w, "b": b, "relu": relu}]


def _seq(parts):
    mods, specs = [], []
    for m, s in parts:
        mods += m
        specs += s
    return T("nn.Sequential", modules=mods), specs


def make_colornet(width=16, global_size=32, n_classes=0, bn=False, running_std=False, mm=False,
                  global_first=False, mean=0.4512, seed=0):
    """-> (the .t7 table {mean, model}, spec dict for reference_forward)."""
    W = _Weights(np.random.default_rng(seed), width, bn, running_std, mm)
    low, low_spec = _seq([W.conv(*s) for s in LOW])
    low_copy = T("nn.Sequential", modules=t7.get(low, "modules"))  # a clone sharing the weights, as :clone('weight', 'bias')
    mid, mid_spec = _seq([W.conv(*s) for s in MID])
    g = global_size // 32
    gparts = [W.conv(*s) for s in GLOBAL]
    gparts.append(([T("nn.View", size=[-1])], []))
    gparts += [_fc_flat(W, 512, g, 1024), W.linear(1024, 512)]
    glob, glob_spec = _seq(gparts)
    out_mods, out_spec = W.linear(512, 256)
    tile = T("nn.Sequential", modules=out_mods + [T("nn.Replicate", nfeatures=1, dim=3, ndim=1),
                                                  T("nn.Replicate", nfeatures=1, dim=4, ndim=2)])
    fusion, fusion_spec = _seq([W.conv(512, 256, k=1, bn=False)])
    cparts = [([T("nn.SpatialUpSamplingNearest", scale_factor=2)], [{"kind": "up"}]) if s == "up"
              else W.conv(*s) for s in COLOR]
    w_out = W.rng.normal(0, 0.3, (2, W.c(32), 3, 3))
    b_out = W.rng.normal(0, 0.05, 2)
    cparts.append(([T("nn.SpatialConvolution", weight=w_out, bias=b_out, dW=1, dH=1, kW=3, kH=3, padW=1, padH=1,
                      nInputPlane=W.c(32), nOutputPlane=2), T("nn.Sigmoid")],
                   [{"kind": "conv", "w": w_out, "b": b_out, "stride": 1, "relu": False}, {"kind": "sigmoid"}]))
    color, color_spec = _seq(cparts)

    G = _Graph()
    innode = G.node()
    split = G.node(parents=[innode], nSplitOutputs=2)
    x1 = G.node(T("nn.Identity"), [G.node(parents=[split], selectindex=1)])
    x2 = G.node(T("nn.Identity"), [G.node(parents=[split], selectindex=2)])
    low1, low2 = G.node(low_copy, [x1]), G.node(low, [x2])
    m = G.node(mid, [low2])
    gl = G.node(glob, [low1])
    rep = G.node(tile, [gl])
    spec = {"mean": mean, "low": low_spec, "mid": mid_spec, "global": glob_spec, "out": out_spec,
            "fusion": fusion_spec, "color": color_spec, "global_first": global_first, "cls": None}
    if n_classes:
        cls, spec["cls"] = _seq([W.linear(512, 256), W.linear(256, n_classes, relu=False, scale_out=False)])
        G.node(T("nn.LogSoftMax"), [G.node(cls, [gl])])
    ins = [rep, m] if global_first else [m, rep]
    join = G.node(T("nn.JoinTable", dimension=2, nInputDims=3), ins,
                  mapindex=[t7.get(n, "data") for n in ins])
    out = G.node(color, [G.node(fusion, [join])])
    G.node(parents=[out])  # the graph's output node
    gmod = T("nn.gModule", forwardnodes=G.nodes, modules=[low_copy, mid, glob, tile, fusion, color])
    return {"mean": mean, "model": gmod}, spec


def _fc_flat(W, c, g, nout):
    nin = W.c(c) * g * g
    w, b = W.rng.normal(0, (2 / nin) ** 0.5, (W.c(nout), nin)), W.rng.normal(0, 0.05, W.c(nout))
    return [T("nn.Linear", weight=w, bias=b), T("nn.ReLU")], [{"kind": "fc", "w": w, "b": b, "relu": True}]


# ---------------------------------------------------------------- numpy reference

def _conv(x, w, b, stride):
    k = w.shape[-1]
    xp = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2)))
    win = sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    return np.einsum("chwij,ocij->ohw", win, w) + b[:, None, None]


def _run(specs, x):
    for s in specs:
        if s["kind"] == "conv":
            x = _conv(x, s["w"], s["b"], s["stride"])
        elif s["kind"] == "bn":
            sh = (-1,) + (1,) * (x.ndim - 1)
            x = (x - s["mean"].reshape(sh)) / np.sqrt(s["var"].reshape(sh) + s["eps"]) * s["gamma"].reshape(sh) \
                + s["beta"].reshape(sh)
        elif s["kind"] == "fc":
            x = s["w"] @ x.reshape(-1) + s["b"]
        elif s["kind"] == "up":
            x = x.repeat(2, 1).repeat(2, 2)
        elif s["kind"] == "sigmoid":
            x = 1 / (1 + np.exp(-x))
        if s.get("relu"):
            x = np.maximum(x, 0)
    return x


def reference_forward(spec, x1, x2):
    """numpy: X1 (S x S), X2 (H x W) -> (ab 2 x H/2 x W/2, class log-probs or None)."""
    low1, low2 = _run(spec["low"], x1[None]), _run(spec["low"], x2[None])
    h512 = _run(spec["global"], low1)
    g = _run(spec["out"], h512)
    mid = _run(spec["mid"], low2)
    tiled = np.broadcast_to(g[:, None, None], (g.shape[0],) + mid.shape[1:])
    fused = _run(spec["fusion"], np.concatenate([tiled, mid] if spec["global_first"] else [mid, tiled]))
    ab = _run(spec["color"], fused)
    logp = None
    if spec["cls"]:
        z = _run(spec["cls"], h512)
        logp = z - z.max() - np.log(np.exp(z - z.max()).sum())
    return ab, logp
