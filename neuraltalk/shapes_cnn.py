"""Pre-train the small CNN (`prepro.py -cnn small`) on the shapes world: the demo's stand-in for ImageNet
pre-training, which cannot be downloaded here. A random-weight CNN's features hardly tell a red circle from a
red square; this one learns, for every cell of an 8 x 8 grid, which shape (colour and kind) has its centre
there, if any, and where in the cell, from the dataset's boxes (region_descriptions.json). Only the training
images are used.

    python -m neuraltalk.shapes_cnn -shapes_dir demo_out/neuraltalk/shapes -output small_cnn.pth
    python neuraltalk/prepro.py ... -cnn small -cnn_weights small_cnn.pth -image_size 64 -crop_size 64
"""
import json
import os
import time

from common.cli import UserError, flag, options, parse, run


@options
class ShapesCNNOptions:
    """Pre-train the small CNN on a shapes-world dataset (common/testing/shapes.py write_dataset)."""
    shapes_dir: str = flag("", "folder written by write_dataset (images/, region_descriptions.json, ...)")
    output: str = flag("small_cnn.pth", "where to write the CNN's state_dict (for prepro.py -cnn_weights)")
    max_iters: int = flag(400, "training iterations", min=1)
    batch_size: int = flag(32, "images per iteration", min=1)
    learning_rate: float = flag(3e-3, "Adam learning rate")
    seed: int = flag(123, "seed for the initialisation and the batch order")


# the heavy imports come after the options: `-h` is answered before them (common.cli.options)
import numpy as np
import torch
import torch.nn.functional as F

from common.testing.shapes import COLORS, KINDS
from neuraltalk.cnn import SMALL_GRID, small_cnn, to_tensor_batch
from neuraltalk.data import load_rgb

CLASSES = [f"{c} {k}" for c in COLORS for k in KINDS]  # + "nothing" = len(CLASSES)
IMAGE_SIZE = SMALL_GRID * 8  # 64: what the small CNN's 8 x 8 grid is made for


def _load(path):
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file (give -shapes_dir the folder write_dataset wrote)")
    with open(path) as f:
        return json.load(f)


def read_world(shapes_dir, split="train"):
    """-> (images uint8 (N, 3, 64, 64), classes (N, 8, 8) long, places (N, 2, 8, 8) float) of one split: each
    cell's shape (or "nothing") and where that shape's centre is in the image (x, y in 0..1)."""
    meta = {m["image_id"]: m for m in _load(os.path.join(shapes_dir, "image_data.json"))}
    regions = {r["id"]: r["regions"] for r in _load(os.path.join(shapes_dir, "region_descriptions.json"))}
    ids = _load(os.path.join(shapes_dir, "densecap_splits.json"))[split]
    G = SMALL_GRID
    images, classes, offsets = [], np.full((len(ids), G, G), len(CLASSES)), np.zeros((len(ids), 2, G, G), np.float32)
    for n, image_id in enumerate(ids):
        m = meta[image_id]
        img = load_rgb(os.path.join(shapes_dir, m["url"]), IMAGE_SIZE)
        if img is None:
            raise UserError(f"{m['url']}: cannot be read")
        images.append(img)
        for r in regions[image_id]:
            gx = (r["x"] + r["width"] / 2) / m["width"] * G
            gy = (r["y"] + r["height"] / 2) / m["height"] * G
            col, row = min(int(gx), G - 1), min(int(gy), G - 1)
            classes[n, row, col] = CLASSES.index(" ".join(r["phrase"].split()[-2:]))
            offsets[n, :, row, col] = (gx / G, gy / G)
    return to_tensor_batch(images), torch.from_numpy(classes), torch.from_numpy(offsets)


NOTHING_WEIGHT = 0.05  # most cells hold nothing: weighted less, or the CNN learns to say nothing everywhere


def grid_loss(out, classes, offsets):
    """Cross-entropy of each cell's class + squared error of the occupied cells' shape centres (x 10: they are
    fractions of the image, a cell is 1/8)."""
    n = len(CLASSES) + 1
    occupied = (classes < len(CLASSES)).unsqueeze(1).float()
    weight = torch.ones(n)
    weight[-1] = NOTHING_WEIGHT
    xe = F.cross_entropy(out[:, :n], classes, weight=weight)
    mse = ((10 * (out[:, n:] - offsets)) ** 2 * occupied).sum() / occupied.sum().clamp(min=1)
    return xe + mse


@torch.no_grad()
def shape_cell_accuracy(cnn, images, classes):
    """The share of cells holding a shape's centre whose class the CNN gets right, and of all cells."""
    cnn.eval()
    pred = cnn.body(cnn.normalize(images))[:, :len(CLASSES) + 1].argmax(1)
    occupied = classes < len(CLASSES)
    return float((pred == classes)[occupied].float().mean()), float((pred == classes).float().mean())


def main(opt: ShapesCNNOptions):
    if not opt.shapes_dir:
        raise UserError("give -shapes_dir (a folder written by common.testing.shapes.write_dataset)")
    images, classes, offsets = read_world(opt.shapes_dir, "train")
    val = read_world(opt.shapes_dir, "val")
    torch.manual_seed(opt.seed)
    cnn = small_cnn()
    adam = torch.optim.Adam(cnn.parameters(), opt.learning_rate)
    rng = np.random.default_rng(opt.seed)
    t0 = time.process_time()
    for it in range(1, opt.max_iters + 1):
        cnn.train()
        ixs = torch.from_numpy(rng.choice(len(images), min(opt.batch_size, len(images)), replace=False))
        loss = grid_loss(cnn.body(cnn.normalize(images[ixs])), classes[ixs], offsets[ixs])
        adam.zero_grad(set_to_none=True)
        loss.backward()
        adam.step()
        if it % 100 == 0 or it == opt.max_iters:
            print(f"iter {it}: loss {float(loss.detach()):.3f}")
    shapes_acc, cells_acc = shape_cell_accuracy(cnn, *val[:2])
    print(f"small CNN: {len(images)} training images, {opt.max_iters} iterations, {time.process_time() - t0:.0f} CPU s; "
          f"val cells holding a shape named right {shapes_acc:.3f} (all cells {cells_acc:.3f})")
    os.makedirs(os.path.dirname(os.path.abspath(opt.output)), exist_ok=True)
    torch.save(cnn.state_dict(), opt.output)
    print(f"wrote {opt.output}")
    return shapes_acc


if __name__ == "__main__":
    run(main, parse(ShapesCNNOptions))
