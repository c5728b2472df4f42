"""The joint global/local colorization network of Iizuka, Simo-Serra and Ishikawa (SIGGRAPH 2016).

    luminance ─┬─ low-level ── mid-level ───────────────┐
               │                                         ├─ fusion ── colorization ── ab (H/2 x W/2, sigmoid)
    224x224 ───┴─ low-level ── global ── FC 512 ── 256 ──┘ (tiled over the H/8 x W/8 grid)
                                           └── classification (FC 256 ── n_classes)

The low-level network is shared (one set of weights) by the full-resolution and the 224x224 global paths.
Layer sizes are the paper's, so the published colornet.t7 maps one to one (see lua_checkpoint.py); `width`
divides every channel count and `global_size` shrinks the global input, for small test networks.
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ColorNetConfig:
    width: int = 1           # divide every channel count by this (1 = the paper's network)
    global_size: int = 224   # side of the global path's input (a multiple of 32)
    n_classes: int = 0       # classification head outputs (205 for Places); 0 = no head
    batch_norm: bool = False  # BatchNorm after each convolution (the paper trains with it)


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
                                   nn.Conv2d(c(32), 2, 3, 1, 1), nn.Sigmoid())

    def global_features(self, x_global, low=None):
        """(256-d global vector, 512-d feature the classifier reads) for a global_size x global_size input."""
        h = self.low(x_global) if low is None else low
        h = self.global_fc(self.global_conv(h).flatten(1))
        return self.global_out(h), h

    def forward(self, x, x_global=None, global_feats=None):
        """x: B x 1 x H x W luminance (H, W multiples of 8) -> (ab in [0, 1] at H/2 x W/2, class logits or None).

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
