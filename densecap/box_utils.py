"""Boxes as densecap keeps them: (xc, yc, w, h) in 1-indexed pixels of the resized image.

The R-CNN parameterization (ApplyBoxTransform / InvertBoxTransform in the original):
x = xa + tx*wa, y = ya + ty*ha, w = wa*exp(tw), h = ha*exp(th).
"""
import torch
import torchvision


def xcycwh_to_x1y1x2y2(b):
    return torchvision.ops.box_convert(b, "cxcywh", "xyxy")


def xcycwh_to_xywh(b):
    """The original's xcycwh -> xywh for its outputs (run_model.lua's results.json), in inclusive pixels:
    x1 = xc - (w - 1) / 2, width unchanged."""
    xc, yc, w, h = b.unbind(-1)
    return torch.stack([xc - (w - 1) / 2, yc - (h - 1) / 2, w, h], -1)


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
    return torchvision.ops.box_iou(xcycwh_to_x1y1x2y2(a), xcycwh_to_x1y1x2y2(b))


def clip_boxes(boxes, height, width):
    """Clip xcycwh boxes exactly as box_utils.clip_boxes in Lua; also returns which were left with area.

    The original converts to inclusive corners (x1 = xc - (w - 1) / 2, x2 = xc + (w - 1) / 2), clamps
    x1 to [1, W-1] and x2 to [2, W] (y likewise), and converts back with w = x2 - x1 (not + 1): every
    clipped box comes back one pixel narrower and shorter, which the converted models' outputs keep."""
    xc, yc, w, h = boxes.unbind(-1)
    x1 = (xc - (w - 1) / 2).clamp(1, width - 1)
    x2 = (xc + (w - 1) / 2).clamp(2, width)
    y1 = (yc - (h - 1) / 2).clamp(1, height - 1)
    y2 = (yc + (h - 1) / 2).clamp(2, height)
    clipped = torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], -1)
    return clipped, (x2 > x1) & (y2 > y1)


def nms(boxes, scores, thresh, max_boxes=-1):
    """box_utils.nms in Lua: greedy by score, dropping boxes whose IoU with a kept one exceeds `thresh`.
    Its inclusive corners (xc -+ (w - 1) / 2) with areas (x2 - x1 + 1) * (y2 - y1 + 1) are the continuous
    box shifted by half a pixel, so its IoUs are torchvision's on the continuous boxes. xcycwh in;
    indices of the kept boxes, best first."""
    xyxy = xcycwh_to_x1y1x2y2(boxes.float())
    if max_boxes < 0 or max_boxes * 4 >= len(boxes):
        keep = torchvision.ops.nms(xyxy, scores.float(), thresh)
        return keep if max_boxes < 0 else keep[:max_boxes]
    return _nms_first(xyxy, scores.float(), thresh, max_boxes)


def _nms_first(xyxy, scores, thresh, max_boxes):
    """The first `max_boxes` that greedy NMS keeps, without running it over all boxes (the RPN's ~16,000
    at 720 px, of which it wants 1000). Greedy NMS decides a box by the better boxes alone, so NMS over
    the best m boxes keeps exactly the first boxes NMS over all of them keeps: start with m = 4 x
    max_boxes and, while that keeps too few, retry with m scaled by the shortfall (torchvision's kernel
    only, so these are the boxes torchvision.ops.nms over all keeps, in order)."""
    order = scores.argsort(descending=True, stable=True)
    m = min(len(order), 4 * max_boxes)
    while True:
        idx = order[:m]
        # rank by position in `order` (the kernel never re-sorts ties differently)
        keep = torchvision.ops.nms(xyxy[idx], -torch.arange(m, dtype=torch.float32), thresh)
        if len(keep) >= max_boxes or m == len(order):
            return idx[keep[:max_boxes]]
        m = min(len(order), int(1.2 * m * max_boxes / max(len(keep), 1)) + 1)


def inside_image(boxes, height, width):
    """Boxes (xcycwh) that lie within the image [1, W] x [1, H] (the sampler's out-of-bounds filter)."""
    b = xcycwh_to_x1y1x2y2(boxes)
    return (b[:, 0] >= 1) & (b[:, 1] >= 1) & (b[:, 2] <= width) & (b[:, 3] <= height)
