"""Vector arithmetic in noise space (dcgan.torch's arithmetic.lua, without the Qt window).

    net=celebA_25_net_G.t7 gpu=0 python arithmetic.py                     # 1) writes arithmetic_batch.png
    net=celebA_25_net_G.t7 gpu=0 A=3,9,40 B=5,12,33 C=7,21,60 python arithmetic.py   # 2) arithmetic.png

The batch is drawn from a fixed seed (1, as arithmetic.lua), so step 2 sees the samples numbered in
step 1. The result is arithmetic.lua's 7-wide grid: the three chosen samples of A, B and C in columns
1, 3 and 5, their means on row 4, then "-", "+", "=" and mean(A) - mean(B) + mean(C). BatchNorm is in
eval mode (arithmetic.lua calls net:evaluate()).
"""
import torch
from PIL import Image, ImageDraw

from common.cli import UserError
from common.device import seed_everything
from dcgan.checkpoints import load_generator
from dcgan.images import display_tensor, save_png
from dcgan.model import make_noise
from dcgan.options import ArithmeticOptions, cli
from dcgan.sampling import check_memory, generate, pick_device


def draw_text(img, text, size, color=(255, 0, 0)):
    """C x H x W in [0, 1] with `text` drawn at (3, 3), as image.drawText."""
    c, h, w = img.shape
    a = (img.clamp(0, 1).expand(3, h, w) * 255).round().byte().permute(1, 2, 0).numpy().copy()
    pil = Image.fromarray(a)
    ImageDraw.Draw(pil).text((3, 3), text, fill=color, font_size=size)
    return torch.from_numpy(__import__("numpy").asarray(pil).copy()).permute(2, 0, 1).float() / 255


def parse_choice(name, value, n):
    try:
        picks = [int(v) for v in value.split(",")]
    except ValueError:
        picks = []
    if len(picks) != 3 or not all(1 <= p <= n for p in picks):
        raise UserError(f"{name}={value!r}: give three sample numbers between 1 and {n}, e.g. {name}=1,5,9")
    return [p - 1 for p in picks]


def arithmetic_grid(G, noise, A, B, C, device):
    """arithmetic.lua's layout: 4 rows x 7 columns, returned as 28 images in [0, 1]."""
    mean = {k: noise[ix].mean(0) for k, ix in (("A", A), ("B", B), ("C", C))}
    z = noise[:28].clone() if len(noise) >= 28 else noise[:1].repeat(28, 1, 1, 1)
    for col, k, ix in ((0, "A", A), (2, "B", B), (4, "C", C)):
        for row in range(3):
            z[row * 7 + col] = noise[ix[row]]
        z[21 + col] = mean[k]
    z[27] = mean["A"] - mean["B"] + mean["C"]
    images = (generate(G, z, device) + 1) / 2
    for i in (1, 3, 5, 6, 8, 10, 12, 13, 15, 17, 19, 20):  # empty cells
        images[i] = 0
    for i, sym in ((22, "-"), (24, "+"), (26, "=")):
        images[i] = draw_text(torch.zeros_like(images[i]), sym, images.shape[-1] // 2)[: images.shape[1]]
    return images


def main(opt: ArithmeticOptions):
    seed_everything(opt.seed)
    G, cfg = load_generator(opt.net)
    device = pick_device(opt.gpu)
    check_memory(G, (opt.batchSize, cfg.nz, opt.imsize, opt.imsize), device)
    noise = make_noise((opt.batchSize, cfg.nz, opt.imsize, opt.imsize), opt.noisetype)
    if not (opt.A and opt.B and opt.C):
        images = (generate(G, noise, device) + 1) / 2
        numbered = torch.stack([draw_text(im, str(i + 1), 10)[: im.shape[0]] for i, im in enumerate(images)])
        path = save_png(f"{opt.name}_batch.png", display_tensor(numbered, nrow=8))
        print(f"saved {path}: choose three samples each for A, B and C and run again with "
              f"A=i,j,k B=... C=... (same seed={opt.seed}, net and batchSize)")
        return path
    A, B, C = (parse_choice(k, v, opt.batchSize) for k, v in (("A", opt.A), ("B", opt.B), ("C", opt.C)))
    images = arithmetic_grid(G, noise, A, B, C, device)
    path = save_png(f"{opt.name}.png", display_tensor(images, nrow=7, scaleeach=True))
    print(f"saved {path}: mean(A) - mean(B) + mean(C) in the bottom-right cell")
    return path


if __name__ == "__main__":
    cli(main, ArithmeticOptions)
