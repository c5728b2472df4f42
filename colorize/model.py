"""The joint global/local colorization network of Iizuka, Simo-Serra and Ishikawa (SIGGRAPH 2016).

    luminance ─┬─ low-level ── mid-level ───────────────┐
               │                                         ├─ fusion ── colorization ── ab (H/2 x W/2, sigmoid)
    224x224 ───┴─ low-level ── global ── FC 512 ── 256 ──┘ (tiled over the H/8 x W/8 grid)
                                           └── classification (FC 256 ── n_classes)

The low-level network is shared (one set of weights) by the full-resolution and the 224x224 global paths.
Layer sizes are the paper's, so the published colornet.t7 maps one to one (see lua_checkpoint.py); `width`
divides every channel count and `global_size` shrinks the global input, for small test networks.
New (`ab_grid`): the last layer can instead give one logit per in-gamut ab bin (Zhang, Isola and Efros,
ECCV 2016); `decode` turns them into ab by the annealed mean, which stays muted where the net is unsure.
"""
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ColorNetConfig:
    width: int = 1           # divide every channel count by this (1 = the paper's network)
    global_size: int = 224   # side of the global path's input (a multiple of 32)
    n_classes: int = 0       # classification head outputs (205 for Places); 0 = no head
    batch_norm: bool = False  # BatchNorm after each convolution (the paper trains with it)
    ab_grid: int = 0         # 0 = regress ab (the paper's sigmoid); N = classify into in-gamut ab bins N apart
    temperature: float = 0.38  # annealed-mean temperature decoding a classifying net (Zhang et al.; 1 = the mean)


def ab_bins(grid):
    """Centres (K x 2, Lab a and b) of the ab grid cells `grid` apart whose centre is a displayable sRGB colour
    at some lightness (grid 10: 226 bins; Zhang et al. keep 313, counting cells that are partly in gamut)."""
    r = np.arange(-110, 111, grid, dtype=np.float64)
    ab = np.stack(np.meshgrid(r, r, indexing="ij"), -1).reshape(-1, 2)
    fy = (np.linspace(0, 100, 201)[:, None] + 16) / 116                   # every L, every (a, b): Lab -> XYZ
    f = np.stack([fy + ab[:, 0] / 500, np.broadcast_to(fy, (201, len(ab))), fy - ab[:, 1] / 200], -1)
    xyz = np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * np.array([0.95047, 1.0, 1.08883])
    rgb = xyz @ np.array([[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560],
                          [0.0556434, -0.2040259, 1.0572252]]).T            # linear sRGB, in [0, 1] iff in gamut
    inside = ((rgb >= 0) & (rgb <= 1)).all(-1).any(0)
    return ab[inside].astype(np.float32)


def conv(cin, cout, stride=1, bn=False, kernel=3):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers, nn.ReLU(inplace=True))


def fc(cin, cout, relu=True):
    return nn.Sequential(nn.Linear(cin, cout), nn.ReLU(inplace=True)) if relu else nn.Linear(cin, cout)


class ColorNet(nn.Module):
    def __init__(self, config: ColorNetConfig = ColorNetConfig()):
        super().__init__()
        if config.global_size % 32:
            raise ValueError(f"global_size must be a multiple of 32, got {config.global_size}")
        self.config = config
        c = lambda n: max(1, n // config.width)  # noqa: E731
        bn = config.batch_norm
        self.low = nn.Sequential(conv(1, c(64), 2, bn), conv(c(64), c(128), 1, bn), conv(c(128), c(128), 2, bn),
                                 conv(c(128), c(256), 1, bn), conv(c(256), c(256), 2, bn),
                                 conv(c(256), c(512), 1, bn))
        self.mid = nn.Sequential(conv(c(512), c(512), 1, bn), conv(c(512), c(256), 1, bn))
        g = config.global_size // 32
        self.global_conv = nn.Sequential(conv(c(512), c(512), 2, bn), conv(c(512), c(512), 1, bn),
                                         conv(c(512), c(512), 2, bn), conv(c(512), c(512), 1, bn))
        self.global_fc = nn.Sequential(fc(c(512) * g * g, c(1024)), fc(c(1024), c(512)))
        self.global_out = fc(c(512), c(256))
        self.classifier = (nn.Sequential(fc(c(512), c(256)), fc(c(256), config.n_classes, relu=False))
                           if config.n_classes else None)
        self.fusion = conv(c(256) + c(256), c(256), kernel=1)  # concat(mid, tiled global) -> per-pixel FC
        self.color = nn.Sequential(conv(c(256), c(128), 1, bn), nn.Upsample(scale_factor=2, mode="nearest"),
                                   conv(c(128), c(64), 1, bn), conv(c(64), c(64), 1, bn),
                                   nn.Upsample(scale_factor=2, mode="nearest"), conv(c(64), c(32), 1, bn),
                                   *self.head(c(32)))

    def head(self, cin):
        """The last layer: 2 channels through a sigmoid (ab / 200 + 0.5), or one logit per ab bin (a 1x1
        convolution, as Zhang et al.'s; a 3x3 one into 226 channels would cost 9x as much)."""
        if not self.config.ab_grid:
            return [nn.Conv2d(cin, 2, 3, 1, 1), nn.Sigmoid()]
        self.register_buffer("ab_bins", torch.from_numpy(ab_bins(self.config.ab_grid)))  # saved with the weights
        return [nn.Conv2d(cin, len(self.ab_bins), 1)]

    def decode(self, out, temperature=0.0):
        """forward's first output -> ab in [0, 1] (B x 2 x h x w): a regressing net's as it is; a classifying
        net's annealed mean, softmax(log p / T) = softmax(logits / T) times the bin centres. T = 1 is the mean
        of the predicted distribution: an unsure pixel (probability spread over opposite colours) comes out
        muted; lower T moves towards the most likely bin (more vivid, and bolder where it is wrong)."""
        if not self.config.ab_grid:
            return out
        p = torch.softmax(out.float() / (temperature or self.config.temperature), 1)
        return torch.einsum("bkhw,kc->bchw", p, self.ab_bins.float()) / 200 + 0.5

    def global_features(self, x_global, low=None):
        """(256-d global vector, 512-d feature the classifier reads) for a global_size x global_size input."""
        h = self.low(x_global) if low is None else low
        h = self.global_fc(self.global_conv(h).flatten(1))
        return self.global_out(h), h

    def forward(self, x, x_global=None, global_feats=None):
        """x: B x 1 x H x W luminance (H, W multiples of 8) -> (ab in [0, 1] at H/2 x W/2, or ab-bin logits with
        ab_grid (see decode), and class logits or None).

        x_global (B x 1 x S x S, S = global_size) defaults to x itself when x is S x S (training: the low-level
        features are then computed once) or x resized to S x S; global_feats overrides both (-style_image).
        """
        S = self.config.global_size
        low = self.low(x)
        logits = None
        if global_feats is None:
            if x_global is None and x.shape[-2:] == (S, S):
                global_feats, h512 = self.global_features(None, low)
            else:
                if x_global is None:
                    x_global = F.interpolate(x, size=(S, S), mode="bilinear", align_corners=False, antialias=True)
                global_feats, h512 = self.global_features(x_global)
            logits = self.classifier(h512) if self.classifier is not None else None
        mid = self.mid(low)
        tiled = global_feats[:, :, None, None].expand(-1, -1, mid.shape[2], mid.shape[3])
        fused = self.fusion(torch.cat([mid, tiled], 1))
        return self.color(fused), logits

    def param_layers(self, part):
        """Conv2d / BatchNorm2d / Linear modules of one part, in forward order (for the .t7 converter)."""
        kinds = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)
        return [m for m in getattr(self, part).modules() if isinstance(m, kinds)] if getattr(self, part) else []
