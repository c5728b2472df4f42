"""FID and KID and their feature networks (fid.py and bench/dcgan_bench.py use them). The figures are
torchmetrics' FrechetInceptionDistance and KernelInceptionDistance, fed the features computed here.

The Inception weights cannot be downloaded on an offline machine, so the feature network is a choice
and every figure names the one it used: torchvision's Inception-v3 (2048-d pool features) when its
weights file is present; else a small digit classifier trained once on MNIST (128-d features), which
gives offline, repeatable figures for digit-like images (not comparable with Inception FIDs).
"""
import glob
import hashlib
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance
from tqdm import tqdm

from common import checkpoint
from common.cli import UserError
from common.images import open_rgb
from dcgan.data import find_images, read_idx_images, warn
from dcgan.model import batch_statistics, make_noise

HERE = os.path.dirname(os.path.abspath(__file__))
MNIST_ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data", "mnist_t10k"))
FEATURE_EPOCHS = 3
MNIST_TRAIN = 8000  # the feature net (and the benchmark's GANs) train on the first 8000; the last 2000 are held back


class DigitFeatures(nn.Module):
    """A small MNIST classifier; its 128-d penultimate layer is the feature space."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(128 * 16, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        return self.head(self.body(x))


class FeatureNet:
    """`name` (printed with every figure), input `size` and `channels`, and `__call__` on [0, 1] images."""

    def __init__(self, name, net, size, channels, mean=None, std=None, device="cpu"):
        self.name, self.net, self.size, self.channels = name, net.eval().to(device), size, channels
        self.mean, self.std, self.device = mean, std, device

    def prepare(self, x):
        """B x C x H x W in [0, 1] -> the net's input."""
        if x.shape[1] != self.channels:
            x = x.mean(1, keepdim=True) if self.channels == 1 else x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        if self.mean is not None:
            return (x - torch.tensor(self.mean).view(1, -1, 1, 1)) / torch.tensor(self.std).view(1, -1, 1, 1)
        return x * 2 - 1

    @torch.no_grad()
    def __call__(self, x):
        feats = self.net(self.prepare(x.float()).to(self.device))
        return feats.double().cpu()


def _sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:8]


def train_digit_features(root, out, epochs=None, seed=0):
    """Train DigitFeatures on the first MNIST_TRAIN images of `root` (IDX); keep the 2000 after them for
    accuracy. Deterministic for a given seed and torch build."""
    epochs = epochs or FEATURE_EPOCHS
    images = read_idx_images(root).float().div(255)
    labels_path = sorted(glob.glob(os.path.join(root, "*labels-idx1-ubyte*")))
    if not labels_path:
        raise UserError(f"{root}: no MNIST '*-labels-idx1-ubyte[.gz]' file to train the feature net with")
    import gzip
    opener = gzip.open if labels_path[0].endswith(".gz") else open
    with opener(labels_path[0], "rb") as f:
        labels = torch.from_numpy(np.frombuffer(f.read()[8:], dtype=np.uint8).astype(np.int64))
    x = F.interpolate(images, size=(32, 32), mode="bilinear", antialias=True, align_corners=False) * 2 - 1
    xtr, ytr, xte, yte = x[:MNIST_TRAIN], labels[:MNIST_TRAIN], x[MNIST_TRAIN:], labels[MNIST_TRAIN:]
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = DigitFeatures()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for epoch in range(epochs):
        perm = torch.randperm(len(xtr), generator=g)
        for i in tqdm(range(0, len(xtr), 128), desc=f"feature net epoch {epoch + 1}/{epochs}",
                      disable=not sys.stderr.isatty()):
            idx = perm[i:i + 128]
            loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(xte).argmax(1) == yte).float().mean().item() if len(xte) else float("nan")
    checkpoint.save(out, "dcgan_features", {"model": net.state_dict(), "accuracy": acc,
                                            "trained_on": f"{os.path.basename(root)}[:{MNIST_TRAIN}]"})
    print(f"trained the MNIST feature net: held-back accuracy {acc:.4f}; saved {out}", file=sys.stderr)
    return out


def default_inception_weights():
    hub = os.path.join(torch.hub.get_dir(), "checkpoints")
    found = sorted(glob.glob(os.path.join(hub, "inception_v3_google-*.pth")))
    return found[0] if found else ""


def feature_net(kind="auto", inception_weights="", feature_path="", mnist_root="", device="cpu"):
    inception_weights = inception_weights or default_inception_weights()
    if kind == "auto":
        kind = "inception" if inception_weights and os.path.isfile(inception_weights) else "mnist"
    if kind == "inception":
        if not inception_weights or not os.path.isfile(inception_weights):
            raise UserError("feature=inception needs torchvision's Inception-v3 weights: pass -inception_weights "
                            "inception_v3_google-0cc3c7bd.pth (or put it in the torch hub cache), or use -feature mnist")
        from torchvision.models import inception_v3
        net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        try:
            net.load_state_dict(torch.load(inception_weights, map_location="cpu", weights_only=True))
        except Exception as e:
            raise UserError(f"{inception_weights}: not torchvision Inception-v3 weights ({str(e)[:80]})") from None
        net.fc = nn.Identity()
        return FeatureNet(f"torchvision Inception-v3 pool features, 2048-d ({os.path.basename(inception_weights)} "
                          f"sha256 {_sha(inception_weights)})", net, 299, 3,
                          (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), device)
    net = DigitFeatures()
    if kind == "random":
        torch.manual_seed(0)
        net = DigitFeatures()
        return FeatureNet("untrained random CNN (seed 0), 128-d: for tests only", _body(net), 32, 1, device=device)
    path = feature_path or os.path.join(os.path.expanduser("~"), ".cache", "torch-classics", "dcgan",
                                        "mnist_features.pt")
    if not os.path.isfile(path):
        train_digit_features(mnist_root or MNIST_ROOT, path)
    ck = checkpoint.load(path, "dcgan_features")
    net.load_state_dict(ck["model"])
    return FeatureNet(f"MNIST digit classifier, 128-d ({ck['trained_on']}, held-back accuracy "
                      f"{ck['accuracy']:.3f}, sha256 {_sha(path)})", _body(net), 32, 1, device=device)


def _body(net):
    return net.body


def folder_features(folder, feats: FeatureNet, batch_size=100):
    """Features of every image under `folder` (an IDX file folder counts as its images)."""
    if os.path.isdir(folder) and glob.glob(os.path.join(folder, "*images-idx3-ubyte*")):
        return tensor_features(read_idx_images(folder).float().div(255), feats, batch_size)
    try:
        paths, _, _ = find_images(folder, what="folder")
    except UserError as e:
        raise UserError(str(e)) from None
    mode = "L" if feats.channels == 1 else "RGB"
    out, skipped = [], []
    for i in tqdm(range(0, len(paths), batch_size), desc=f"features {os.path.basename(folder.rstrip('/'))}",
                  disable=not sys.stderr.isatty()):
        batch = []
        for p in paths[i:i + batch_size]:
            try:  # EXIF orientation, 16-bit, alpha, palettes, CMYK as every experiment reads photos
                im = open_rgb(p)
            except UserError as e:  # e.g. a file cut short: its header opened, its pixels do not
                warn(f"skipping {e}")
                skipped.append(p)
                continue
            im = im.convert(mode).resize((feats.size, feats.size), Image.BILINEAR)
            a = np.asarray(im, dtype=np.float32) / 255
            batch.append(torch.from_numpy(a[None] if a.ndim == 2 else a.transpose(2, 0, 1).copy()))
        if batch:
            out.append(feats(torch.stack(batch)))
    if skipped:
        warn(f"{folder}: skipped {len(skipped)} unreadable image(s) of {len(paths)}")
    if not out:
        raise UserError(f"{folder}: none of its {len(paths)} image(s) could be read")
    return torch.cat(out)


def tensor_features(images, feats: FeatureNet, batch_size=100):
    """images: N x C x H x W in [0, 1]."""
    return torch.cat([feats(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def generator_features(G, feats: FeatureNet, n, batch_size=100, noisetype="normal", batchnorm="eval",
                       device="cpu"):
    G = G.to(device).eval()
    out = []
    with torch.no_grad():
        for i in range(0, n, batch_size):
            z = make_noise((min(batch_size, n - i), G.cfg.nz, 1, 1), noisetype).to(device)
            if batchnorm == "train":
                with batch_statistics(G):
                    x = G(z)
            else:
                x = G(z)
            out.append(feats((x.float().cpu() + 1) / 2))
    return torch.cat(out)


class GivenFeatures(nn.Module):
    """torchmetrics' `feature` extractor for features already computed: FeatureNet turns each image into its
    features once, and FID and KID (and the benchmark's several generators against one reference) share them."""

    def __init__(self, num_features):
        super().__init__()
        self.num_features = num_features

    def forward(self, features):
        return features


def _metric(cls, f1, f2, **kw):
    """A torchmetrics FID/KID fed `f2` as the real set and `f1` as the generated one."""
    f1, f2 = torch.as_tensor(np.asarray(f1, np.float64)), torch.as_tensor(np.asarray(f2, np.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # KID's note that it keeps every feature in memory
        m = cls(feature=GivenFeatures(f1.shape[1]), **kw)
    m.update(f2, real=True)
    m.update(f1, real=False)
    return m


def frechet_distance(f1, f2):
    """||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^1/2), in float64: torchmetrics' FrechetInceptionDistance on
    our features."""
    return float(_metric(FrechetInceptionDistance, f1, f2).compute())


def kernel_distance(f1, f2, subsets=100, subset_size=1000, seed=1):
    """KID: unbiased MMD^2 with the kernel (x.y / d + 1)^3, averaged over random subsets of min(subset_size,
    both sets) -> (mean, std): torchmetrics' KernelInceptionDistance, its subsets drawn from `seed`."""
    m = min(len(f1), len(f2), subset_size)
    kid = _metric(KernelInceptionDistance, f1, f2, subsets=subsets, subset_size=m)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = kid.compute()
    return float(mean), float(std)


def scores(f1, f2, subsets=100, subset_size=1000, seed=1):
    fid = frechet_distance(f1, f2)
    kid, kid_std = kernel_distance(f1, f2, subsets, subset_size, seed)
    return {"fid": fid, "kid": kid, "kid_std": kid_std, "n1": len(f1), "n2": len(f2)}
