"""Original dcgan.torch generators (.t7) -> our Generator (convert.py, generate.py and fid.py read them here).

Handles the published December-2015 generators (biased convolutions, BatchNorm storing `running_std`,
sometimes a leading nn.View) and today's main.lua layout (no biases, `running_var`), with nn or cudnn
module classes and float or CUDA storages. nn.SpatialFullConvolution stores its weight as
nIn x nOut x kH x kW, exactly ConvTranspose2d's layout, so it is copied as is. Checked against files
written by the original code (tests/fixtures, tests/lua/README.md).
"""
import numpy as np
import torch

from common import t7
from common.cli import UserError
from dcgan.model import SIZES, GANConfig, Generator


def _kind(m):
    name = t7.typename(m)
    return name.split(".", 1)[-1] if name.startswith(("nn.", "cudnn.")) else name


def _tensor(m, key):
    a = t7.get(m, key)
    return None if a is None or (isinstance(a, np.ndarray) and a.size == 0) else torch.from_numpy(np.array(a, np.float32))


def generator_from_t7(obj, where="net"):
    """A torchfile-loaded nn.Sequential generator -> (Generator in eval mode, GANConfig)."""
    if t7.typename(obj) != "nn.Sequential" or not isinstance(t7.get(obj, "modules"), list):
        raise UserError(f"{where}: not a DCGAN generator (a {t7.typename(obj)}, expected the nn.Sequential "
                        f"that main.lua saves as <name>_<epoch>_net_G.t7)")
    mods = list(t7.get(obj, "modules"))
    if mods and _kind(mods[0]) == "View":  # older models had an nn.View on top (generate.lua drops it)
        mods = mods[1:]
    kinds = [_kind(m) for m in mods]
    convs = [m for m in mods if _kind(m) == "SpatialFullConvolution"]
    expected = ["SpatialFullConvolution", "SpatialBatchNormalization", "ReLU"] * (len(convs) - 1) + \
               ["SpatialFullConvolution", "Tanh"]
    size = 4 * 2 ** (len(convs) - 1)
    if kinds != expected or size not in SIZES:
        what = "a discriminator" if "SpatialConvolution" in kinds else "not a DCGAN generator"
        raise UserError(f"{where}: {what} (modules {', '.join(kinds[:6])}{' ...' if len(kinds) > 6 else ''}); "
                        f"expected a generator saved by dcgan.torch")
    w0 = _tensor(convs[0], "weight")
    cfg = GANConfig(nz=w0.shape[0], ngf=_tensor(convs[-1], "weight").shape[0], nc=_tensor(convs[-1], "weight").shape[1],
                    fineSize=size, bias=_tensor(convs[0], "bias") is not None)
    G = Generator(cfg)
    ours = list(G.main)
    if len(ours) != len(mods):
        raise UserError(f"{where}: unexpected generator shape ({len(mods)} modules)")
    with torch.no_grad():
        for theirs, mine in zip(mods, ours):
            k = _kind(theirs)
            if k == "SpatialFullConvolution":
                w = _tensor(theirs, "weight")
                if w.shape != mine.weight.shape:
                    raise UserError(f"{where}: layer weight {tuple(w.shape)} does not fit {tuple(mine.weight.shape)}")
                mine.weight.copy_(w)
                stride = (int(t7.get(theirs, "dH", 1)), int(t7.get(theirs, "dW", 1)))
                pad = (int(t7.get(theirs, "padH", 0)), int(t7.get(theirs, "padW", 0)))
                adj = (int(t7.get(theirs, "adjH", 0) or 0), int(t7.get(theirs, "adjW", 0) or 0))
                if stride != mine.stride or pad != mine.padding or adj != (0, 0):
                    raise UserError(f"{where}: a transposed convolution with stride {stride}, padding {pad}, "
                                    f"adj {adj} is not DCGAN's")
                b = _tensor(theirs, "bias")
                if b is not None:
                    mine.bias.copy_(b)
            elif k == "SpatialBatchNormalization":
                eps = float(t7.get(theirs, "eps", 1e-5))
                mine.eps = eps
                mine.momentum = float(t7.get(theirs, "momentum", 0.1))
                w, b = _tensor(theirs, "weight"), _tensor(theirs, "bias")
                mine.weight.copy_(w if w is not None else torch.ones_like(mine.weight))
                mine.bias.copy_(b if b is not None else torch.zeros_like(mine.bias))
                mean, var, std = (_tensor(theirs, n) for n in ("running_mean", "running_var", "running_std"))
                if var is None and std is not None:  # nn before 2016 kept the inverse standard deviation
                    var = std.pow(-2) - eps
                mine.running_mean.copy_(mean if mean is not None else torch.zeros_like(mine.running_mean))
                mine.running_var.copy_(var if var is not None else torch.ones_like(mine.running_var))
    return G.eval(), cfg


def load_t7(path):
    return generator_from_t7(t7.load(path), path)
