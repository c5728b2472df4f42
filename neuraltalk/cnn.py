"""The CNN image encoder: an image batch -> `fc` (B, D) and `att` (B, S*S, C) features.

torchvision ResNets (fc = layer4 mean, att = layer4 pooled to S x S, as the modern repos' prepro_feats)
and VGG-16 (fc = relu7 output, as neuraltalk2; att = conv5 pooled to S x S); `small`, a 6-layer convnet for
64 x 64 synthetic images (the shapes world) whose weights come from `python -m neuraltalk.shapes_cnn` (it
learns which shape lies in each cell of an 8 x 8 grid): its fc is that grid flattened, so it keeps where
things are (a mean over the map, as the ResNets' fc, would not). Pretrained weights come
from `-cnn_weights`: a torchvision state_dict file, 'imagenet' (torchvision's download, needs the
network once), or '' for a random initialisation seeded by -seed (then say so: captions from random
features are only as good as colour and texture statistics allow).

Pixels: torchvision networks take RGB in [0, 1] normalised by ImageNet mean/std; the converted
neuraltalk2 VGG-16 (`preprocess='caffe'`) takes 0..255 RGB minus the VGG mean, as net_utils.prepro did.
"""
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from common.cli import UserError
from neuraltalk.choices import CNNS  # noqa: F401 (also imported from here)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG_MEAN = (123.68, 116.779, 103.939)


class ImageEncoder(nn.Module):
    def __init__(self, body: nn.Module, kind: str, fc_dim: int, att_dim: int, att_size=7, preprocess="torchvision",
                 fc_head: nn.Module = None):
        super().__init__()
        self.body, self.fc_head = body, fc_head
        self.kind, self.fc_dim, self.att_dim, self.att_size, self.preprocess = kind, fc_dim, att_dim, att_size, preprocess

    def normalize(self, images_uint8: torch.Tensor) -> torch.Tensor:
        x = images_uint8.float()
        if self.preprocess == "caffe":
            return x - torch.tensor(VGG_MEAN, device=x.device).view(1, 3, 1, 1)
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        return (x / 255.0 - mean) / std

    def forward(self, images_uint8):
        """(B, 3, H, W) uint8 RGB -> (fc (B, D), att (B, S*S, C) or None)."""
        x = self.normalize(images_uint8)
        if self.kind == "sequential":  # a converted Lua CNN: fc only
            return self.body(x), None
        conv = self.body(x)
        att = F.adaptive_avg_pool2d(conv, self.att_size).flatten(2).transpose(1, 2)
        fc = conv.mean((2, 3)) if self.fc_head is None else self.fc_head(conv)
        return fc, att


SMALL_GRID = 8  # the small CNN's output grid: 8 x 8 cells (8 pixels each on 64 x 64 images)


class CellPositions(nn.Module):
    """The last two channels are a place inside each cell (0..1); out, they are that place in the image (0..1):
    (column + x) / width, (row + y) / height. So each cell's feature says where its shape is."""

    def forward(self, x):
        h, w = x.shape[-2:]
        cols = torch.arange(w, device=x.device, dtype=x.dtype).view(1, w).expand(h, w)
        rows = torch.arange(h, device=x.device, dtype=x.dtype).view(h, 1).expand(h, w)
        return torch.cat([x[:, :-2], (x[:, -2:-1] + cols) / w, (x[:, -1:] + rows) / h], 1)


def small_cnn(width=16, att_size=8, out_channels=18) -> ImageEncoder:
    """conv3x3-BatchNorm-ReLU blocks (three halving the map, two keeping it) and a 1x1 conv to out_channels per
    cell: 64 x 64 images -> an 8 x 8 map, its last two channels the place of the cell's shape (CellPositions).
    fc is that map flattened."""
    chans = (3, width, 2 * width, 4 * width, 4 * width, 4 * width)
    layers = []
    for k, (cin, cout) in enumerate(zip(chans, chans[1:])):
        layers += [nn.Conv2d(cin, cout, 3, stride=2 if k < 3 else 1, padding=1, bias=False), nn.BatchNorm2d(cout),
                   nn.ReLU()]
    body = nn.Sequential(*layers, nn.Conv2d(chans[-1], out_channels, 1), CellPositions())
    head = nn.Sequential(nn.AdaptiveAvgPool2d(SMALL_GRID), nn.Flatten())
    return ImageEncoder(body, "small", SMALL_GRID * SMALL_GRID * out_channels, out_channels, att_size, fc_head=head)


def build_cnn(name: str, weights: str = "", att_size: int = 7, seed: int = 123) -> ImageEncoder:
    if name not in CNNS:
        raise UserError(f"-cnn {name}: unknown; choose one of {', '.join(CNNS)}")
    torch.manual_seed(seed)  # a random CNN must be the same one in prepro, train and eval
    if name == "small":
        enc = small_cnn(att_size=att_size)
        if weights:
            try:
                enc.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
            except FileNotFoundError:
                raise UserError(f"-cnn_weights {weights}: no such file") from None
            except (RuntimeError, KeyError, ValueError) as e:
                raise UserError(f"-cnn_weights {weights}: not small-CNN weights ({str(e).splitlines()[0][:100]})") \
                    from None
        else:
            print(f"note: the small CNN is randomly initialised (seed {seed}): pass -cnn_weights from "
                  f"python -m neuraltalk.shapes_cnn, or train it with the captioner (-finetune_cnn_after 0)",
                  file=sys.stderr)
        enc.eval()
        return enc
    net = getattr(torchvision.models, name)(weights=None)
    if weights == "imagenet":
        try:
            wenum = torchvision.models.get_model_weights(name).DEFAULT
            net.load_state_dict(wenum.get_state_dict(progress=True))
        except Exception as e:  # noqa: BLE001 - offline, proxy, bad cache: one line
            raise UserError(f"could not download ImageNet weights for {name} ({type(e).__name__}); pass "
                            f"-cnn_weights FILE.pth or -cnn_weights '' for a random CNN") from None
    elif weights:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            net.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        except FileNotFoundError:
            raise UserError(f"-cnn_weights {weights}: no such file") from None
        except (RuntimeError, KeyError, ValueError) as e:
            raise UserError(f"-cnn_weights {weights}: not {name} weights ({str(e).splitlines()[0][:100]})") from None
    else:
        print(f"note: {name} randomly initialised (seed {seed}): no -cnn_weights given; captions will be "
              f"weak (pass -cnn_weights imagenet or a .pth file for pretrained features)", file=sys.stderr)
    if name == "vgg16":
        body = net.features
        head = nn.Sequential(nn.Flatten(), *list(net.classifier.children())[:5])  # fc6 relu drop fc7 relu
        # classifier expects 7x7 input: the torchvision avgpool makes any size work
        head = nn.Sequential(net.avgpool, head)
        enc = ImageEncoder(body, name, 4096, 512, att_size, fc_head=head)
    else:
        body = nn.Sequential(*list(net.children())[:-2])
        enc = ImageEncoder(body, name, net.fc.in_features, net.fc.in_features, att_size)
    enc.eval()
    return enc


def fingerprint(cnn: nn.Module) -> float:
    """A number that changes with the weights: checks that train/eval rebuilt prepro's random CNN."""
    with torch.no_grad():
        return float(sum(p.double().abs().sum() for p in cnn.parameters()))


def to_tensor_batch(images):
    """list of (H, W, 3) uint8 arrays (same size) -> (B, 3, H, W) uint8 tensor."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
