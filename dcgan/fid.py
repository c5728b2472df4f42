"""FID and KID between two image folders, or between a generator's samples and a folder.

    python fid.py generated/ real/                          # two folders
    python fid.py checkpoints/mnist_25_net_G.pt real/       # nsamples drawn from the generator
    python fid.py -feature mnist samples/ ../../shared/data/mnist_t10k

The Inception weights cannot be downloaded on an offline machine, so the feature network is a choice
and every figure names the one it used: torchvision's Inception-v3 (2048-d pool features) when its
weights file is present; else a small digit classifier trained once on MNIST (128-d features), which
gives offline, repeatable figures for digit-like images (not comparable with Inception FIDs).
"""
import os

import torch

from common.cli import UserError
from common.device import get_device
from dcgan.checkpoints import load_generator
from dcgan.metrics import feature_net, folder_features, generator_features, scores
from dcgan.options import FidOptions, cli


def main(opt: FidOptions):
    if not opt.path1 or not opt.path2:
        raise UserError("usage: python fid.py <folder or generator.pt/.t7> <reference folder>")
    torch.manual_seed(opt.seed)
    device = get_device(opt.gpu - 1, "gpu=0") if opt.gpu > 0 else torch.device("cpu")
    feats = feature_net(opt.feature, opt.inception_weights, opt.feature_net, opt.mnist_root, device)
    if os.path.isfile(opt.path1) and opt.path1.endswith((".pt", ".t7")):
        G, _ = load_generator(opt.path1)
        f1 = generator_features(G, feats, opt.nsamples, opt.batchSize, opt.noisetype, opt.batchnorm, device)
    else:
        f1 = folder_features(opt.path1, feats, opt.batchSize)
    f2 = folder_features(opt.path2, feats, opt.batchSize)
    if min(len(f1), len(f2)) < 2:
        raise UserError("FID needs at least 2 images on each side")
    r = scores(f1, f2, opt.kid_subsets, opt.kid_subset_size, opt.seed)
    print(f"FID {r['fid']:.3f}  KID {r['kid']:.5f} ± {r['kid_std']:.5f}  ({r['n1']} vs {r['n2']} images; "
          f"features: {feats.name})")
    return r


if __name__ == "__main__":
    cli(main, FidOptions)
