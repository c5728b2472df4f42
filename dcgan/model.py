"""The DCGAN generator and discriminator of dcgan.torch's main.lua, for 32, 64 or 128 pixel images.

Both nets are one `nn.Sequential` in the Lua module order, so a `.t7` generator maps onto ours index by
index (see convert.py). The network grows by one up/down-sampling block per doubling of the image size
(main.lua hardwires 64: 1 -> 4 -> 8 -> 16 -> 32 -> 64).
"""
import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn as nn

SIZES = (32, 64, 128)


@dataclass
class GANConfig:
    nz: int = 100       # length of the noise vector
    ngf: int = 64       # generator filters in the last block
    ndf: int = 64       # discriminator filters in the first block
    nc: int = 3         # image channels (1 for MNIST)
    fineSize: int = 64  # image size: 32, 64 or 128
    bias: bool = False  # convolution biases: the published December-2015 generators had them


def _blocks(size):
    """Number of stride-2 layers between 4x4 and `size` x `size`."""
    if size not in SIZES:
        raise ValueError(f"fineSize must be one of {SIZES}, not {size}")
    return int(math.log2(size)) - 2


class Generator(nn.Module):
    """FullConv(nz->8g, 4x4) BN ReLU, then (FullConv stride 2, BN, ReLU) halving channels, FullConv -> nc, Tanh."""

    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.cfg = cfg
        n = _blocks(cfg.fineSize)
        ch = cfg.ngf * 2 ** (n - 1)
        layers = [nn.ConvTranspose2d(cfg.nz, ch, 4, 1, 0, bias=cfg.bias), nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=cfg.bias), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, cfg.nc, 4, 2, 1, bias=cfg.bias), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z):
        """z: B x nz x s x s noise (s = 1 for fineSize images; larger s gives 16(s+3) pixels at 64)."""
        return self.main(z)


class Discriminator(nn.Module):
    """Conv(nc->d) LReLU, then (Conv stride 2, BN, LReLU) doubling channels, Conv -> 1 logit per image.

    main.lua ends in Sigmoid + BCECriterion; we return the logit and use BCE-with-logits (the same loss,
    stable in mixed precision).
    """

    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.cfg = cfg
        n = _blocks(cfg.fineSize)
        ch = cfg.ndf
        layers = [nn.Conv2d(cfg.nc, ch, 4, 2, 1, bias=cfg.bias), nn.LeakyReLU(0.2, True)]
        for _ in range(n - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=cfg.bias), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)]
            ch *= 2
        layers += [nn.Conv2d(ch, 1, 4, 1, 0, bias=cfg.bias)]
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x).view(-1)


def weights_init(m):
    """main.lua's init: convolution weights N(0, 0.02) (no bias), BatchNorm gamma N(1, 0.02), beta 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def build(cfg: GANConfig):
    G, D = Generator(cfg), Discriminator(cfg)
    G.apply(weights_init)
    D.apply(weights_init)
    return G, D


@contextlib.contextmanager
def batch_statistics(net: nn.Module):
    """BatchNorm normalises with the batch's own statistics and leaves the running ones untouched.

    This is how generate.lua samples (it never calls net:evaluate()), and how the training sample
    grid is drawn without disturbing the statistics that `batchnorm=eval` will use later.
    """
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, m.track_running_stats) for m in bns]
    for m in bns:
        m.train()
        m.track_running_stats = False
    try:
        yield net
    finally:
        for m, (training, track) in zip(bns, saved):
            m.training, m.track_running_stats = training, track


def make_noise(shape, noise: str, generator=None, device="cpu"):
    """`normal` N(0, 1) or `uniform` U(-1, 1) noise, as main.lua's `noise` / generate.lua's `noisetype`."""
    if noise == "uniform":
        return torch.rand(shape, generator=generator, device=device) * 2 - 1
    if noise == "normal":
        return torch.randn(shape, generator=generator, device=device)
    raise ValueError(f"noise must be normal or uniform, not {noise!r}")
