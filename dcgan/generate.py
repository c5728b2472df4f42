"""Generate images with a DCGAN generator, as dcgan.torch's generate.lua.

    gpu=0 batchSize=64 net=celebA_25_net_G.t7 python generate.py        # the original's style
    python generate.py -net checkpoints/experiment1_25_net_G.pt -imsize 4 -name big
    net=g.t7 noise_file=noise.t7 batchnorm=train python generate.py     # reproduce given noise

Writes <name>.png: (x + 1) / 2 laid out by image.toDisplayTensor (6 per row, no padding, min-max scaled).
"""
import os
import sys

import numpy as np
import torch

from common import t7
from common.cli import UserError
from common.device import get_device, seed_everything
from dcgan.convert import load_generator
from dcgan.images import display_tensor, save_png
from dcgan.model import batch_statistics, make_noise
from dcgan.options import GenerateOptions, cli


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


def main(opt: GenerateOptions):
    if opt.seed:
        seed_everything(opt.seed)
    G, cfg = load_generator(opt.net)
    if opt.nz != cfg.nz and opt.nz != 100:
        raise UserError(f"nz={opt.nz} but {opt.net} takes {cfg.nz}-dimensional noise; leave nz unset")
    if opt.imsize < 1 or opt.batchSize < 1:
        raise UserError("imsize and batchSize must be at least 1")
    device = pick_device(opt.gpu)
    if not opt.noise_file:
        check_memory(G, (opt.batchSize, cfg.nz, opt.imsize, opt.imsize), device)
    noise = read_noise(opt.noise_file, cfg.nz) if opt.noise_file else draw_noise(opt, cfg.nz)
    images = generate(G, noise, device, opt.batchnorm)
    print(f"{tuple(images.shape)}", file=sys.stderr)
    images = (images + 1) * 0.5
    print(f"min {images.min():.4f} max {images.max():.4f} mean {images.mean():.4f} std {images.std():.4f}")
    path = save_png(f"{opt.name}.png", display_tensor(images))
    print(f"saved {path}")
    return images


if __name__ == "__main__":
    cli(main, GenerateOptions)
