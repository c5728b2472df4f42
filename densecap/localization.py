"""The localization layer: RPN over conv features, box sampling for training, NMS and bilinear RoI features.

As LocalizationLayer.lua, with the original's 12 anchors, field centres (x0 = y0 = 8.5, stride 16,
1-indexed pixels), positive/negative score pairs per anchor and the (k, H, W) flattening order of
ReshapeBoxFeatures, so converted weights line up anchor for anchor.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import roi_align

from densecap import box_utils

ANCHORS = ((45, 90), (90, 45), (64, 64), (90, 180), (180, 90), (128, 128),
           (181, 362), (362, 181), (256, 256), (362, 724), (724, 362), (512, 512))


def make_anchors(feat_h, feat_w, sizes, x0=8.5, y0=8.5, stride=16.0):
    """(k*H*W, 4) xcycwh anchors, anchor-major then row then column (ReshapeBoxFeatures' order)."""
    sizes = torch.as_tensor(sizes, dtype=torch.float32)
    k = sizes.shape[0]
    ys = y0 + stride * torch.arange(feat_h, dtype=torch.float32)
    xs = x0 + stride * torch.arange(feat_w, dtype=torch.float32)
    yc = ys.view(1, feat_h, 1).expand(k, feat_h, feat_w)
    xc = xs.view(1, 1, feat_w).expand(k, feat_h, feat_w)
    w = sizes[:, 0].view(k, 1, 1).expand(k, feat_h, feat_w)
    h = sizes[:, 1].view(k, 1, 1).expand(k, feat_h, feat_w)
    return torch.stack([xc, yc, w, h], -1).reshape(-1, 4)


def reshape_box_features(x, k):
    """(1, k*D, H, W) conv output -> (k*H*W, D)."""
    _, kd, h, w = x.shape
    return x.view(k, kd // k, h, w).permute(0, 2, 3, 1).reshape(-1, kd // k)


class BoxSampler:
    """Training boxes for one image (BoxSampler.lua): positives IoU > high (and each GT box's best
    anchor), negatives IoU < low; min(batch/2, #pos) positives without replacement, the rest negatives
    (with replacement when there are too few)."""

    def __init__(self, batch_size=256, low_thresh=0.3, high_thresh=0.7):
        self.batch_size, self.low, self.high = batch_size, low_thresh, high_thresh

    def __call__(self, anchors, gt_boxes, bounds=None, generator=None):
        """Returns (pos_idx, pos_gt_idx, neg_idx) into anchors / gt_boxes."""
        n = anchors.shape[0]
        allowed = torch.ones(n, dtype=torch.bool) if bounds is None else box_utils.inside_image(anchors, *bounds)
        ious = box_utils.iou(anchors, gt_boxes)                      # (A, B)
        ious[~allowed] = -1.0
        max_iou, argmax = ious.max(1)
        pos = max_iou > self.high
        best = ious.argmax(0)                                        # each GT box's best anchor
        best = best[ious[best, torch.arange(len(best))] > 0]
        pos[best] = True
        argmax[best] = ious[best].argmax(1)
        neg = (max_iou < self.low) & (max_iou >= 0) & ~pos
        pos_all = pos.nonzero().squeeze(1)
        neg_all = neg.nonzero().squeeze(1)
        num_pos = min(self.batch_size // 2, len(pos_all))
        pos_idx = pos_all[torch.randperm(len(pos_all), generator=generator)[:num_pos]]
        num_neg = self.batch_size - num_pos
        if len(neg_all) == 0:
            neg_idx = neg_all
        elif len(neg_all) >= num_neg:
            neg_idx = neg_all[torch.randperm(len(neg_all), generator=generator)[:num_neg]]
        else:
            neg_idx = neg_all[torch.randint(len(neg_all), (num_neg,), generator=generator)]
        return pos_idx, argmax[pos_idx], neg_idx


def box_to_affine(boxes, height, width):
    """BoxToAffine: xcycwh boxes (1-indexed image pixels) -> (B, 2, 3) thetas in stnbhwd's (y, x) order."""
    xc, yc, w, h = boxes.unbind(-1)
    theta = boxes.new_zeros(boxes.shape[0], 2, 3)
    theta[:, 0, 0] = h / height
    theta[:, 0, 2] = (2 * yc - height - 1) / (height - 1)
    theta[:, 1, 1] = w / width
    theta[:, 1, 2] = (2 * xc - width - 1) / (width - 1)
    return theta


def _sample_points(boxes, height, width, feat_h, feat_w, out=7):
    """Where the original samples the feature map (0-indexed feature pixels): start + step * i."""
    theta = box_to_affine(boxes, height, width)
    # stnbhwd's grid runs -1..1 over `out` points, both ends included; -1/+1 are the first/last feature pixel
    y0 = theta[:, 0, 2] - theta[:, 0, 0]
    x0 = theta[:, 1, 2] - theta[:, 1, 1]
    sy = (feat_h - 1) / 2.0
    sx = (feat_w - 1) / 2.0
    ystart, xstart = (y0 + 1) * sy, (x0 + 1) * sx
    ystep = theta[:, 0, 0] * 2 / (out - 1) * sy
    xstep = theta[:, 1, 1] * 2 / (out - 1) * sx
    return xstart, ystart, xstep, ystep


def roi_features_grid(feats, boxes, height, width, out=7):
    """The original's bilinear sampler, literally: affine grids + grid_sample (zeros outside the map)."""
    theta = box_to_affine(boxes, height, width)
    # stnbhwd's theta maps (y, x, 1); F.affine_grid wants (x, y, 1): swap rows and columns
    theta_xy = theta[:, [1, 0]][:, :, [1, 0, 2]]
    grid = F.affine_grid(theta_xy, (boxes.shape[0], feats.shape[1], out, out), align_corners=True)
    x = feats.expand(boxes.shape[0], -1, -1, -1) if feats.shape[0] == 1 else feats
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def roi_features(feats, boxes, height, width, out=7):
    """Bilinear out x out RoI features of (1, C, Hf, Wf) `feats` for xcycwh `boxes` in image pixels.

    torchvision's roi_align (aligned=True, one sample per bin) samples the same points as the
    original whenever all of a box's points lie inside the feature map (it clamps instead of reading
    zeros at the border); those boxes go through roi_align without expanding the feature map per box,
    the rest through the literal affine_grid + grid_sample path.
    """
    if boxes.shape[0] == 0:
        return feats.new_zeros(0, feats.shape[1], out, out)
    fh, fw = feats.shape[-2:]
    xs, ys, dx, dy = _sample_points(boxes, height, width, fh, fw, out)
    eps = 1e-4
    inside = (xs >= -eps) & (ys >= -eps) & (xs + dx * (out - 1) <= fw - 1 + eps) & \
             (ys + dy * (out - 1) <= fh - 1 + eps) & (dx > 0) & (dy > 0)

    def aligned(i):  # bins of size step centred on the sample points; aligned=True subtracts half a pixel
        x1 = xs[i] - dx[i] / 2 + 0.5
        y1 = ys[i] - dy[i] / 2 + 0.5
        rois = torch.stack([torch.zeros_like(x1), x1, y1, x1 + dx[i] * out, y1 + dy[i] * out], 1)
        return roi_align(feats, rois, (out, out), spatial_scale=1.0, sampling_ratio=1, aligned=True)

    if inside.all():  # the usual case after clipping: no scatter into a second (N, C, 7, 7) tensor
        return aligned(slice(None))
    result = feats.new_empty(boxes.shape[0], feats.shape[1], out, out)
    if inside.any():
        i = inside.nonzero().squeeze(1)
        result[i] = aligned(i)
    if (~inside).any():
        j = (~inside).nonzero().squeeze(1)
        result[j] = roi_features_grid(feats, boxes[j], height, width, out)
    return result


class RPN(nn.Module):
    """3x3 conv + ReLU, then 1x1 convs to 4k box offsets and 2k (positive, negative) scores."""

    def __init__(self, input_dim=512, num_filters=256, anchors=ANCHORS, anchor_scale=1.0, std=0.01,
                 field_centers=(8.5, 8.5, 16.0, 16.0)):
        super().__init__()
        self.register_buffer("anchor_sizes", torch.tensor(anchors, dtype=torch.float32) * anchor_scale)
        self.k = len(anchors)
        self.field_centers = field_centers
        self.conv = nn.Conv2d(input_dim, num_filters, 3, padding=1)
        self.box_conv = nn.Conv2d(num_filters, 4 * self.k, 1)
        self.score_conv = nn.Conv2d(num_filters, 2 * self.k, 1)
        nn.init.normal_(self.conv.weight, 0, std)
        nn.init.zeros_(self.conv.bias)
        nn.init.zeros_(self.box_conv.weight)  # zero_box_conv: start at the anchors
        nn.init.zeros_(self.box_conv.bias)
        nn.init.normal_(self.score_conv.weight, 0, std)
        nn.init.zeros_(self.score_conv.bias)

    def forward(self, feats):
        """-> boxes (kHW, 4), anchors (kHW, 4), transforms (kHW, 4), scores (kHW, 2)."""
        h = F.relu(self.conv(feats))
        trans = reshape_box_features(self.box_conv(h), self.k)
        scores = reshape_box_features(self.score_conv(h), self.k)
        x0, y0, sx, _ = self.field_centers
        anchors = make_anchors(feats.shape[2], feats.shape[3], self.anchor_sizes, x0, y0, sx).to(feats)
        return box_utils.apply_box_transform(anchors, trans), anchors, trans, scores


class LocalizationLayer(nn.Module):
    def __init__(self, input_dim=512, rpn_num_filters=256, anchors=ANCHORS, anchor_scale=1.0, sampler_batch_size=256,
                 sampler_high_thresh=0.7, sampler_low_thresh=0.3, train_remove_outbounds_boxes=1,
                 mid_box_reg_weight=0.05, mid_objectness_weight=0.1, box_reg_decay=5e-5, output_size=7):
        super().__init__()
        self.rpn = RPN(input_dim, rpn_num_filters, anchors, anchor_scale)
        self.sampler = BoxSampler(sampler_batch_size, sampler_low_thresh, sampler_high_thresh)
        self.remove_outbounds = train_remove_outbounds_boxes
        self.mid_box_reg_weight = mid_box_reg_weight
        self.mid_objectness_weight = mid_objectness_weight
        self.box_reg_decay = box_reg_decay
        self.output_size = output_size

    def forward_train(self, feats, image_hw, gt_boxes, generator=None):
        """Sample 256 boxes against the GT; returns (roi_feats, roi_boxes, num_pos, pos_gt_idx, losses)."""
        height, width = image_hw
        boxes, anchors, trans, scores = self.rpn(feats)
        bounds = (height, width) if self.remove_outbounds else None
        with torch.no_grad():
            pos_idx, pos_gt_idx, neg_idx = self.sampler(anchors, gt_boxes.float(), bounds, generator)
        losses = {}
        w = self.mid_objectness_weight
        # OurCrossEntropyCriterion: positives (class 1) and negatives (class 2) averaged separately
        if len(pos_idx):
            losses["obj_loss_pos"] = w * F.cross_entropy(scores[pos_idx], scores.new_zeros(len(pos_idx), dtype=torch.long))
            target = box_utils.invert_box_transform(anchors[pos_idx], gt_boxes[pos_gt_idx].float())
            losses["box_reg_loss"] = self.mid_box_reg_weight * F.smooth_l1_loss(trans[pos_idx], target)
        if len(neg_idx):
            losses["obj_loss_neg"] = w * F.cross_entropy(scores[neg_idx], scores.new_ones(len(neg_idx), dtype=torch.long))
        # RegularizeLayer: an L2 pull of all box offsets toward the anchors
        losses["box_decay_loss"] = self.box_reg_decay * 0.5 * trans.pow(2).sum()
        # the RoI boxes are the RPN's predictions; gradients do not flow back into their coordinates
        roi_boxes = torch.cat([boxes[pos_idx], boxes[neg_idx]]).detach()
        roi_feats = roi_features(feats, roi_boxes, height, width, self.output_size)
        return roi_feats, roi_boxes, len(pos_idx), pos_gt_idx, losses

    @torch.no_grad()
    def forward_test(self, feats, image_hw, nms_thresh=0.7, max_proposals=1000, clip_boxes=True):
        """Clip, drop invalid boxes, NMS on the positive probability, keep the top max_proposals."""
        height, width = image_hw
        boxes, _, _, scores = self.rpn(feats)
        if clip_boxes:
            boxes, valid = box_utils.clip_boxes(boxes, height, width)
            boxes, scores = boxes[valid], scores[valid]
        prob = F.softmax(scores, 1)[:, 0]
        keep = box_utils.nms(boxes, prob, nms_thresh, max_proposals if max_proposals > 0 else -1)
        boxes = boxes[keep]
        return roi_features(feats, boxes, height, width, self.output_size), boxes, prob[keep]
