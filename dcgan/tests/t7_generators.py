"""Write dcgan.torch generators as .t7 files, for importer tests, and an independent numpy forward.

`layout="2015"` is the published December-2015 shape (biased convolutions, BatchNorm storing
`running_std`, an nn.View on top); `layout="today"` is main.lua's (no biases, `running_var`).
"""
import numpy as np

from common import t7
from common.testing import t7_writer

EPS = 1e-5


def make_generator(nz=8, ngf=4, nc=3, size=32, layout="2015", cudnn=False, cuda=False, seed=0):
    """-> (nn.Sequential TorchObject, list of per-layer numpy params)."""
    rng = np.random.default_rng(seed)
    prefix = "cudnn." if cudnn else "nn."
    tt = "torch.CudaTensor" if cuda else "torch.FloatTensor"
    T = lambda a: t7_writer.Tensor(np.asarray(a, np.float32), tt)  # noqa: E731
    n = int(np.log2(size)) - 2
    chans = [nz] + [ngf * 2 ** (n - 1 - i) for i in range(n)] + [nc]
    mods, params = [], []
    if layout == "2015":
        mods.append(t7.TorchObject(b"nn.View", {"size": T(np.array([nz, 1, 1]))}))
    for i in range(n + 1):
        cin, cout = chans[i], chans[i + 1]
        stride, pad = (1, 0) if i == 0 else (2, 1)
        w = rng.normal(0, 0.2, (cin, cout, 4, 4)).astype(np.float32)
        b = rng.normal(0, 0.1, cout).astype(np.float32) if layout == "2015" else None
        conv = {"nInputPlane": cin, "nOutputPlane": cout, "kW": 4, "kH": 4, "dW": stride, "dH": stride,
                "padW": pad, "padH": pad, "weight": T(w), "gradWeight": T(np.zeros_like(w))}
        if layout == "today":
            conv.update(adjW=0, adjH=0)
        if b is not None:
            conv["bias"] = T(b)
        mods.append(t7.TorchObject(f"{prefix}SpatialFullConvolution".encode(), conv))
        layer = {"w": w, "b": b, "stride": stride, "pad": pad}
        if i < n:
            gamma = rng.normal(1, 0.1, cout).astype(np.float32)
            beta = rng.normal(0, 0.1, cout).astype(np.float32)
            mean = rng.normal(0, 0.2, cout).astype(np.float32)
            var = rng.uniform(0.5, 2.0, cout).astype(np.float32)
            bn = {"eps": EPS, "momentum": 0.1, "affine": True, "train": True, "weight": T(gamma), "bias": T(beta),
                  "running_mean": T(mean)}
            if layout == "2015":
                bn["running_std"] = T(1 / np.sqrt(var + EPS))
            else:
                bn["running_var"] = T(var)
            mods.append(t7.TorchObject(f"{prefix}SpatialBatchNormalization".encode(), bn))
            mods.append(t7.TorchObject(f"{prefix}ReLU".encode(), {"inplace": True}))
            layer.update(gamma=gamma, beta=beta, mean=mean, var=var)
        else:
            mods.append(t7.TorchObject(f"{prefix}Tanh".encode(), {}))
        params.append(layer)
    return t7.TorchObject(b"nn.Sequential", {"modules": mods}), params


def conv_transpose(x, w, stride, pad):
    """Naive transposed convolution: every input pixel scatters w[c] into the output."""
    B, C, H, W = x.shape
    k = w.shape[2]
    full = np.zeros((B, w.shape[1], (H - 1) * stride + k, (W - 1) * stride + k))
    for i in range(H):
        for j in range(W):
            full[:, :, i * stride:i * stride + k, j * stride:j * stride + k] += np.einsum("bc,cokl->bokl", x[:, :, i, j], w)
    return full[:, :, pad:full.shape[2] - pad, pad:full.shape[3] - pad]


def reference_forward(params, z, batch_stats=False):
    """numpy float64 forward of the generator; BatchNorm with running or batch statistics."""
    x = np.asarray(z, np.float64)
    for layer in params:
        x = conv_transpose(x, layer["w"].astype(np.float64), layer["stride"], layer["pad"])
        if layer["b"] is not None:
            x = x + layer["b"][None, :, None, None]
        if "gamma" in layer:
            if batch_stats:
                mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
            else:
                mean, var = layer["mean"], layer["var"]
            x = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + EPS)
            x = np.maximum(x * layer["gamma"][None, :, None, None] + layer["beta"][None, :, None, None], 0)
    return np.tanh(x)
