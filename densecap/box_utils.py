"""Boxes as densecap keeps them: (xc, yc, w, h) in 1-indexed pixels of the resized image.

The R-CNN parameterization (ApplyBoxTransform / InvertBoxTransform in the original):
x = xa + tx*wa, y = ya + ty*ha, w = wa*exp(tw), h = ha*exp(th).
"""
import torch


def xcycwh_to_x1y1x2y2(b):
    xc, yc, w, h = b.unbind(-1)
    return torch.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], -1)


def x1y1x2y2_to_xcycwh(b):
    x1, y1, x2, y2 = b.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], -1)


def xcycwh_to_xywh(b):
    xc, yc, w, h = b.unbind(-1)
    return torch.stack([xc - w / 2, yc - h / 2, w, h], -1)


def xywh_to_xcycwh(b):
    x, y, w, h = b.unbind(-1)
    return torch.stack([x + w / 2, y + h / 2, w, h], -1)


def apply_box_transform(anchors, trans):
    """Anchors (N, 4) xcycwh moved by offsets (N, 4) (tx, ty, tw, th)."""
    xa, ya, wa, ha = anchors.unbind(-1)
    tx, ty, tw, th = trans.unbind(-1)
    return torch.stack([xa + tx * wa, ya + ty * ha, wa * tw.exp(), ha * th.exp()], -1)


def invert_box_transform(anchors, boxes):
    """The offsets that move `anchors` onto `boxes` (both xcycwh)."""
    xa, ya, wa, ha = anchors.unbind(-1)
    x, y, w, h = boxes.unbind(-1)
    return torch.stack([(x - xa) / wa, (y - ya) / ha, (w / wa).log(), (h / ha).log()], -1)


def iou(a, b):
    """Pairwise IoU (N, M) of xcycwh boxes, continuous coordinates (as the model's BoxIoU)."""
    a, b = xcycwh_to_x1y1x2y2(a), xcycwh_to_x1y1x2y2(b)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-12)


def clip_boxes(boxes, height, width):
    """Clip xcycwh boxes to the image [1, W] x [1, H]; also returns which were left with area."""
    b = xcycwh_to_x1y1x2y2(boxes)
    x1 = b[:, 0].clamp(1, width)
    y1 = b[:, 1].clamp(1, height)
    x2 = b[:, 2].clamp(1, width)
    y2 = b[:, 3].clamp(1, height)
    clipped = x1y1x2y2_to_xcycwh(torch.stack([x1, y1, x2, y2], -1))
    valid = (x2 > x1) & (y2 > y1)
    return clipped, valid


def inside_image(boxes, height, width):
    """Boxes (xcycwh) that lie within the image [1, W] x [1, H] (the sampler's out-of-bounds filter)."""
    b = xcycwh_to_x1y1x2y2(boxes)
    return (b[:, 0] >= 1) & (b[:, 1] >= 1) & (b[:, 2] <= width) & (b[:, 3] <= height)
