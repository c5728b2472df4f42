"""Reading the published colornet.t7 / colornet_imagenet.t7 into our ColorNet (used by pipeline.py and convert.py).

The .t7 holds `{mean = <number>, model = nn.gModule}`. Instead of trusting node numbers (colorize.lua's
`forwardnodes[9]`), the converter finds the JoinTable where the two paths meet and walks the graph:
  the path that carries the Replicate nodes is the global one (low-level, global convs, FC 1024/512/256),
  the other is the full-resolution one (low-level, mid-level); the low-level weights appear on both and
  must agree (they are shared); below the join come fusion and colorization; a branch leaving the global
  path before the Replicates, if present, is the classification head.
The parameter-carrying leaves of each path (convolutions, BatchNorm, Linear) are copied in order into the
matching layers of model.py, checking every shape. BatchNorm saved with `running_std` (torch/nn before
2016) becomes running_var = running_std^-2 - eps, as nn.BatchNormalization:read does. Float, Double and
CUDA storages all load (common.t7 reads them as numpy arrays).
"""
from collections import defaultdict

import numpy as np
import torch

from colorize.model import ColorNet, ColorNetConfig
from common import t7
from common.cli import UserError

CONV = {"nn.SpatialConvolution", "nn.SpatialConvolutionMM", "cudnn.SpatialConvolution"}
BN = {"nn.SpatialBatchNormalization", "nn.BatchNormalization", "cudnn.SpatialBatchNormalization",
      "cudnn.BatchNormalization"}
PARAM = CONV | BN | {"nn.Linear"}
CONTAINERS = {"nn.Sequential", "nn.Concat", "nn.gModule"}


def _items(table):
    if not isinstance(table, (dict, list, tuple)):
        return []
    items = table.items() if isinstance(table, dict) else enumerate(table, 1)
    return sorted(((k, v) for k, v in items if isinstance(k, int)), key=lambda kv: kv[0])


class _Graph:
    def __init__(self, gmodule):
        self.nodes = list(t7.get(gmodule, "forwardnodes") or [])
        self.parents = defaultdict(list)
        for n in self.nodes:
            for _, c in _items(t7.get(n, "children")):
                self.parents[id(c)].append(n)

    @staticmethod
    def module(node):
        return t7.get(t7.get(node, "data"), "module")

    def children(self, node):
        return [c for _, c in _items(t7.get(node, "children"))]

    def chain_up(self, node):
        """Nodes from the graph input down to `node` (each has one parent on these paths)."""
        chain = []
        while node is not None and self.module(node) is not None:
            chain.append(node)
            ps = self.parents[id(node)]
            node = ps[0] if len(ps) == 1 else None
        return chain[::-1]

    def chain_down(self, node):
        chain = []
        while True:
            kids = self.children(node)
            if len(kids) != 1 or self.module(kids[0]) is None:
                return chain
            node = kids[0]
            chain.append(node)


def leaves(module):
    name = t7.typename(module)
    if name in CONTAINERS:
        return [leaf for _, m in _items(t7.get(module, "modules")) for leaf in leaves(m)]
    return [module]


def _kinds(mods):
    return [t7.typename(m) for m in mods]


def param_leaves(nodes):
    return [m for n in nodes for m in leaves(_Graph.module(n)) if t7.typename(m) in PARAM]


def _arr(module, key, path):
    a = t7.get(module, key)
    if a is None:
        raise UserError(f"{path}: {t7.typename(module)} has no {key}")
    return torch.from_numpy(np.asarray(a, dtype=np.float64).copy()).float()


def copy_into(layers, t7_mods, where, path, permute_fusion=None):
    """Copy the t7 modules' parameters into our layers (same order), checking kinds and shapes."""
    if len(layers) != len(t7_mods):
        raise UserError(f"{path}: the {where} path has {len(t7_mods)} parameter layers ({', '.join(_kinds(t7_mods))}),"
                        f" colornet's has {len(layers)}; not a colornet model")
    for ours, m in zip(layers, t7_mods):
        kind = t7.typename(m)
        if isinstance(ours, torch.nn.BatchNorm2d):
            if kind not in BN:
                raise UserError(f"{path}: expected BatchNorm in the {where} path, found {kind}")
            eps = float(t7.get(m, "eps") or 1e-5)
            mean = _arr(m, "running_mean", path)
            if t7.get(m, "running_var") is not None:
                var = _arr(m, "running_var", path)
            else:  # 2015-era BatchNorm stores running_std = 1/sqrt(var + eps)
                var = _arr(m, "running_std", path).double().pow(-2).sub(eps).float()
            params = {"running_mean": mean, "running_var": var}
            if t7.get(m, "weight") is not None:
                params.update(weight=_arr(m, "weight", path), bias=_arr(m, "bias", path))
            ours.eps = eps
        else:
            if kind not in CONV | {"nn.Linear"}:
                raise UserError(f"{path}: expected a convolution or Linear in the {where} path, found {kind}")
            w = _arr(m, "weight", path)
            if isinstance(ours, torch.nn.Conv2d) and kind in CONV:
                stride = (int(t7.get(m, "dH", 1)), int(t7.get(m, "dW", 1)))
                if stride != ours.stride:
                    raise UserError(f"{path}: {where} convolution has stride {stride}, colornet's {ours.stride}")
            if w.numel() != ours.weight.numel():
                raise UserError(f"{path}: {where} layer {kind} has {tuple(w.shape)} weights, colornet expects "
                                f"{tuple(ours.weight.shape)}")
            w = w.reshape(ours.weight.shape)  # SpatialConvolutionMM keeps nOut x (nIn*kH*kW); fusion may be Linear
            if permute_fusion is not None:
                half = w.shape[1] // 2
                w = torch.cat([w[:, half:], w[:, :half]], 1)
            params = {"weight": w, "bias": _arr(m, "bias", path).reshape(ours.bias.shape)}
        for k, v in params.items():
            getattr(ours, k).data.copy_(v)


def load_t7(path):
    """-> (ColorNet with the .t7's weights, in eval mode, the stored mean)."""
    d = t7.load(path)
    gm, mean = t7.get(d, "model"), t7.get(d, "mean")
    if gm is None or t7.typename(gm) != "nn.gModule" or mean is None:
        raise UserError(f"{path}: not a colornet model (expected a table {{mean, model = nn.gModule}} as "
                        f"colornet.t7)")
    g = _Graph(gm)
    joins = [n for n in g.nodes if g.module(n) is not None and t7.typename(g.module(n)) == "nn.JoinTable"]
    if len(joins) != 1:
        raise UserError(f"{path}: expected one JoinTable fusing the global and local paths, found {len(joins)}")
    join = joins[0]
    order = [v for _, v in _items(t7.get(t7.get(join, "data"), "mapindex"))]
    parents = sorted(g.parents[id(join)], key=lambda p: next((i for i, v in enumerate(order)
                                                              if v is t7.get(p, "data")), 0))
    chains = [g.chain_up(p) for p in parents]
    has_rep = ["nn.Replicate" in _kinds(m for n in c for m in leaves(g.module(n))) for c in chains]
    if len(chains) != 2 or sum(has_rep) != 1:
        raise UserError(f"{path}: the JoinTable should join a local path and a Replicate-tiled global path")
    gi = has_rep.index(True)
    global_chain, local_chain = chains[gi], chains[1 - gi]
    g_params, l_params = param_leaves(global_chain), param_leaves(local_chain)
    on_path = {id(n) for n in global_chain}
    head = []  # the classification branch: a chain leaving the global path
    for n in global_chain[:-1]:
        for c in g.children(n):
            if id(c) not in on_path and g.module(c) is not None:
                head = [c] + g.chain_down(c)
    c_params = param_leaves(head)
    out_params = param_leaves(g.chain_down(join))

    first = g_params[0]
    c64 = int(np.asarray(t7.get(first, "weight")).shape[0])
    width = 64 // c64
    has_bn = any(t7.typename(m) in BN for m in l_params)
    n_low = 12 if has_bn else 6
    fc1 = next(m for m in g_params if t7.typename(m) == "nn.Linear")
    side = int(round((np.asarray(t7.get(fc1, "weight")).shape[1] / (512 // width)) ** 0.5))
    n_classes = int(np.asarray(t7.get(c_params[-1], "weight")).shape[0]) if c_params else 0
    net = ColorNet(ColorNetConfig(width=width, global_size=32 * side, n_classes=n_classes, batch_norm=has_bn))

    for a, b in zip(g_params[:n_low], l_params[:n_low]):
        if not np.allclose(np.asarray(t7.get(a, "weight")), np.asarray(t7.get(b, "weight"))):
            raise UserError(f"{path}: the two low-level networks have different weights (they should be shared)")
    copy_into(net.param_layers("low"), l_params[:n_low], "low-level", path)
    copy_into(net.param_layers("mid"), l_params[n_low:], "mid-level", path)
    copy_into(net.param_layers("global_conv") + net.param_layers("global_fc") + net.param_layers("global_out"),
              g_params[n_low:], "global", path)
    if n_classes:
        copy_into(net.param_layers("classifier"), c_params, "classification", path)
    ours = net.param_layers("fusion") + net.param_layers("color")
    copy_into(ours[:1], out_params[:1], "fusion", path, permute_fusion=True if gi == 0 else None)
    copy_into(ours[1:], out_params[1:], "colorization", path)
    return net.eval(), float(mean)
