"""Sampling a generator as generate.lua does: its noise modes, a noise file, and a memory check first."""
import os

import numpy as np
import torch

from common import t7
from common.cli import UserError
from common.device import get_device
from dcgan.model import batch_statistics, make_noise


def pick_device(gpu):
    return get_device(gpu - 1, "gpu=0") if gpu > 0 else torch.device("cpu")


def read_noise(path, nz):
    """A B x nz x h x w tensor from a .t7, .npy or .pt file."""
    if not os.path.isfile(path):
        raise UserError(f"noise_file={path}: no such file")
    try:
        if path.endswith(".t7"):
            z = np.array(t7.load(path), dtype=np.float32)
        elif path.endswith(".npy"):
            z = np.load(path).astype(np.float32)
        else:
            z = torch.load(path, map_location="cpu", weights_only=True)
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"noise_file={path}: cannot read a tensor from it ({type(e).__name__}: {str(e)[:80]})") from None
    z = torch.as_tensor(z, dtype=torch.float32) if not isinstance(z, torch.Tensor) else z.float()
    if z.dim() == 2:
        z = z[:, :, None, None]
    if z.dim() != 4 or z.shape[1] != nz:
        raise UserError(f"noise_file={path}: shape {tuple(z.shape)}, expected B x {nz} x h x w for this generator")
    return z


def draw_noise(opt, nz):
    """generate.lua's noise modes: random, line (across the batch), linefull1d / linefull (across space)."""
    B, s = opt.batchSize, opt.imsize
    if opt.noisemode in ("linefull", "linefull1d") and B != 1:
        raise UserError(f"noisemode={opt.noisemode} needs batchSize=1 (got {B}) and imsize > 1")
    noise = make_noise((B, nz, s, s), opt.noisetype)
    left, right = torch.rand(nz) * 2 - 1, torch.rand(nz) * 2 - 1
    if opt.noisemode == "line":
        for i, t in enumerate(torch.linspace(0, 1, B)):
            noise[i] = (left * t + right * (1 - t))[:, None, None]
    elif opt.noisemode == "linefull1d":
        noise = noise[:, :, :1].clone()
        for i, t in enumerate(torch.linspace(0, 1, s)):
            noise[0, :, 0, i] = left * t + right * (1 - t)
    elif opt.noisemode == "linefull":
        for i, t in enumerate(torch.linspace(0, 1, s)):
            noise[0, :, i, i] = left * t + right * (1 - t)
    return noise


def activation_bytes(G, noise_shape):
    """Peak bytes of a no-grad forward: the largest input + output pair of any layer, in float32."""
    shape, peak = tuple(noise_shape), 0
    for m in G.main:
        if isinstance(m, torch.nn.ConvTranspose2d):
            b, _, h, w = shape
            out = (b, m.out_channels, (h - 1) * m.stride[0] - 2 * m.padding[0] + m.kernel_size[0],
                   (w - 1) * m.stride[1] - 2 * m.padding[1] + m.kernel_size[1])
            peak = max(peak, 4 * (int(np.prod(shape)) + 2 * int(np.prod(out))))
            shape = out
    return peak, shape


def free_bytes(device):
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return info.get("MemAvailable", info.get("MemFree"))
    except (OSError, ValueError):
        return None


def check_memory(G, noise_shape, device):
    """One clear line, before anything is allocated, when the images cannot fit in memory."""
    need, shape = activation_bytes(G, noise_shape)
    free = free_bytes(device)
    if free is not None and need > 0.8 * free:
        raise UserError(f"{shape[0]} images of {shape[2]}x{shape[3]} need about {need / 2**30:.1f} GiB, only "
                        f"{free / 2**30:.1f} GiB is free on {device}; lower imsize or batchSize")
    return shape


def generate(G, noise, device, batchnorm="eval"):
    """-> images in [-1, 1] (CPU). BatchNorm uses running statistics, or each batch's own ('train')."""
    shape = check_memory(G, noise.shape, device)
    G = G.to(device)
    try:
        with torch.no_grad():
            if batchnorm == "train":
                with batch_statistics(G):
                    return G(noise.to(device)).float().cpu()
            return G(noise.to(device)).float().cpu()
    except (torch.OutOfMemoryError, MemoryError) as e:
        raise UserError(f"out of memory generating {tuple(shape)}: lower imsize or batchSize ({str(e)[:60]})") from None
