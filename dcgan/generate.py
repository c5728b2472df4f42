"""Generate images with a DCGAN generator, as dcgan.torch's generate.lua.

    gpu=0 batchSize=64 net=celebA_25_net_G.t7 python generate.py        # the original's style
    python generate.py -net checkpoints/experiment1_25_net_G.pt -imsize 4 -name big
    net=g.t7 noise_file=noise.t7 batchnorm=train python generate.py     # reproduce given noise

Writes <name>.png: (x + 1) / 2 laid out by image.toDisplayTensor (6 per row, no padding, min-max scaled).
"""
import sys

from common.cli import UserError
from common.device import seed_everything
from dcgan.checkpoints import load_generator
from dcgan.images import display_tensor, save_png
from dcgan.options import GenerateOptions, cli
from dcgan.sampling import check_memory, draw_noise, generate, pick_device, read_noise


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
