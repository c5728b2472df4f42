"""The dense-captioning mAP of eval/eval_utils.lua (DenseCaptionEvaluator), step by step, and eval_split.

Per image: merge GT boxes that overlap by IoU >= 0.7 (greedily, biggest group first; the merged box
is the group's mean and keeps all its captions); walk the predictions by descending score, give each
its best-overlapping merged GT box (IoU with the +1-pixel convention) and claim that box whatever the
overlap. Over all images: sort by score; for IoU thresholds .3-.7 and METEOR thresholds 0-.25 a
prediction is a true positive iff overlap >= t, it claimed its box first and METEOR > m; AP is the
100-point max-interpolated precision. mAP averages the 30 APs; detmap uses METEOR threshold -1.

Quirk kept on purpose: a prediction that overlaps no GT box claims the image's LAST GT box (Lua's
`used[-1]` with jmax = -1), so a later real match of that box counts as a duplicate.
"""
import numpy as np
import torch
from tqdm import tqdm

from densecap.checkpoints import captions_of

MIN_OVERLAPS = (0.3, 0.4, 0.5, 0.6, 0.7)
MIN_SCORES = (-1, 0, 0.05, 0.1, 0.15, 0.2, 0.25)


def xcycwh_to_x1y1x2y2(b):
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], 1)


def iou_plus1(bb, gt):
    """IoU of one x1y1x2y2 box with each row of `gt`, VOC style (+1 pixel); 0 where they do not meet."""
    iw = np.minimum(bb[2], gt[:, 2]) - np.maximum(bb[0], gt[:, 0]) + 1
    ih = np.minimum(bb[3], gt[:, 3]) - np.maximum(bb[1], gt[:, 1]) + 1
    ua = (bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1) + (gt[:, 2] - gt[:, 0] + 1) * (gt[:, 3] - gt[:, 1] + 1) - iw * ih
    return np.where((iw > 0) & (ih > 0), iw * ih / np.where(ua == 0, 1, ua), 0.0)


def merge_boxes(boxes, thr=0.7):
    """box_utils.merge_boxes: groups (index arrays) of x1y1x2y2 boxes, the most-connected group first."""
    n = len(boxes)
    D = np.zeros((n, n))
    for i in range(n):
        D[i] = iou_plus1(boxes[i], boxes)
        D[i, i] = 1.0
    groups = []
    while True:
        good = D >= thr
        counts = good.sum(0)
        top = int(counts.argmax()) if n else 0
        if n == 0 or counts[top] == 0:
            return groups
        members = np.nonzero(good[top])[0]
        groups.append(members)
        D[members, :] = 0
        D[:, members] = 0


def average_precision(tp, npos):
    """tp: 0/1 per prediction in score order -> the 100-point max-interpolated AP of eval_utils.lua."""
    if len(tp) == 0 or npos == 0:
        return 0.0
    tp = np.asarray(tp, dtype=np.float64)
    ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
    rec = ctp / npos
    prec = ctp / (ctp + cfp)
    ap, apn, t = 0.0, 0, 0.0
    while t <= 1:  # Lua's `for t=0,1,0.01` accumulates in floating point: 100 points, 0 .. ~0.99
        ap += float((prec * (rec >= t)).max())
        apn += 1
        t += 0.01
    return ap / apn


class DenseCaptioningEvaluator:
    """add_result per image, then evaluate(). `meteor(candidates, references) -> list of floats` scores
    the matched predictions (default: pycocoevalcap's METEOR 1.5 through common.lang_eval)."""

    def __init__(self, meteor=None):
        self.meteor = meteor
        self.records, self.scores, self.npos = [], [], 0

    def add_result(self, scores, boxes, pred_text, gt_boxes, gt_text):
        """scores (N,), boxes (N, 4) and gt_boxes (M, 4) xcycwh; pred_text N strings; gt_text M strings."""
        boxes, gt = xcycwh_to_x1y1x2y2(boxes), xcycwh_to_x1y1x2y2(gt_boxes)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        groups = merge_boxes(gt, 0.7)
        merged = np.array([gt[g].mean(0) for g in groups]).reshape(-1, 4)
        merged_text = [[gt_text[j] for j in g] for g in groups]
        used = np.zeros(len(merged), dtype=bool)
        order = np.argsort(-scores, kind="stable")
        for i in order:
            ov = iou_plus1(boxes[i], merged) if len(merged) else np.zeros(0)
            jmax, ovmax = -1, 0.0
            for j in range(len(ov)):  # first strictly best, as the Lua loop
                if ov[j] > ovmax:
                    ovmax, jmax = ov[j], j
            ok = 0
            if len(merged) and not used[jmax]:  # jmax = -1 claims the last box (the Lua quirk)
                used[jmax] = True
                ok = 1
            self.records.append({"ok": ok, "ov": float(ovmax), "pred": pred_text[i],
                                 "gt": merged_text[jmax] if jmax >= 0 else None})
        self.scores.extend(scores[order].tolist())
        self.npos += len(merged)

    def evaluate(self, verbose=False):
        with_gt = [k for k, r in enumerate(self.records) if r["gt"] is not None]
        meteor = np.zeros(len(self.records))
        if with_gt and self.meteor is not False:
            score = self.meteor
            if score is None:
                from common.lang_eval import meteor_score_pairs as score
            meteor[with_gt] = score([self.records[k]["pred"] for k in with_gt],
                                    [self.records[k]["gt"] for k in with_gt])
        order = np.argsort(-np.asarray(self.scores), kind="stable")
        ap, det = {}, {}
        for min_overlap in MIN_OVERLAPS:
            for min_score in MIN_SCORES:
                if self.meteor is False and min_score != -1:
                    continue
                tp = [1 if (r["gt"] is not None and r["ov"] >= min_overlap and r["ok"] == 1
                            and meteor[k] > min_score) else 0
                      for k, r in ((k, self.records[k]) for k in order)]
                value = average_precision(tp, self.npos)
                if min_score == -1:
                    det[f"ov{min_overlap}"] = value
                else:
                    ap[f"ov{min_overlap}_score{min_score}"] = value
        out = {"detmap": float(np.mean(list(det.values()))), "det_breakdown": det}
        if ap:
            out.update(map=float(np.mean(list(ap.values()))), ap_breakdown=ap)
        return out


@torch.no_grad()
def eval_split(model, loader, split="val", max_images=-1, rpn_nms_thresh=0.7, final_nms_thresh=0.3,
               num_proposals=1000, meteor=None, idx_to_token=None, progress=True, clip_final_boxes=True,
               shapes=False):
    """Run the model over a split of a DataLoader and score it; -> dict with map (x100 as reported),
    detmap (x100), and the breakdowns. meteor=False skips captions (detmap only). shapes=True adds
    res["shapes"], the shapes world's shapes_caption_accuracy (GT phrases such as "a small red circle")."""
    was_training = model.training
    model.eval()
    ixs = loader.split_ix[split]
    if max_images > 0:
        ixs = ixs[:max_images]
    evaluator = DenseCaptioningEvaluator(meteor)
    idx_to_token = idx_to_token or loader.idx_to_token
    device = next(model.parameters()).device
    shape_images = []
    for ix in tqdm(ixs, desc=f"eval {split}", disable=not progress, leave=False):
        image, gt_boxes, gt_labels, _ = loader.get_image(ix)
        boxes, scores, seqs = model.forward_test(image.to(device), rpn_nms_thresh, final_nms_thresh,
                                                 num_proposals, clip_final_boxes=clip_final_boxes,
                                                 captions=meteor is not False or shapes)
        preds = captions_of(seqs.cpu(), idx_to_token) if seqs is not None else [""] * len(boxes)
        gt_text = captions_of(gt_labels, idx_to_token)
        evaluator.add_result(scores.cpu(), boxes.cpu(), preds, gt_boxes, gt_text)
        if shapes:
            gt = xcycwh_to_x1y1x2y2(gt_boxes)
            regions = [{"x": b[0], "y": b[1], "w": b[2] - b[0], "h": b[3] - b[1], "phrase": t} for b, t in zip(gt, gt_text)]
            shape_images.append({"det_boxes": xcycwh_to_x1y1x2y2(boxes.cpu()), "det_scores": scores.cpu().numpy(),
                                 "det_captions": preds, "regions": regions})
    model.train(was_training)
    res = evaluator.evaluate()
    if shapes:
        res["shapes"] = shapes_caption_accuracy(shape_images)
    res["detmap"] *= 100
    if "map" in res:
        res["map"] *= 100
    res["num_images"] = len(ixs)
    return res


def match_detections(det_boxes, det_scores, gt_boxes, iou_thresh=0.5):
    """One-to-one matching: each GT box (in order) takes the best-scoring detection not yet taken whose
    IoU with it is >= iou_thresh (torchvision's box_iou, x1y1x2y2 boxes). -> list, per GT box, of the
    detection index it took or -1."""
    from torchvision.ops import box_iou
    det = torch.as_tensor(det_boxes, dtype=torch.float64).reshape(-1, 4)
    gt = torch.as_tensor(gt_boxes, dtype=torch.float64).reshape(-1, 4)
    if len(gt) == 0:
        return []
    if len(det) == 0:
        return [-1] * len(gt)
    ious = box_iou(gt, det)                                              # (G, D)
    order = torch.as_tensor(det_scores, dtype=torch.float64).reshape(-1).argsort(descending=True, stable=True)
    taken, matches = set(), []
    for g in range(len(gt)):
        best = next((int(d) for d in order if int(d) not in taken and ious[g, d] >= iou_thresh), -1)
        if best >= 0:
            taken.add(best)
        matches.append(best)
    return matches


def shapes_caption_accuracy(images, iou_thresh=0.5):
    """The shapes world's region-caption score. `images`: per image a dict with det_boxes (N, 4) x1y1x2y2,
    det_scores (N,), det_captions (N strings) and regions [{x, y, w, h, phrase}] (the GT, pixels).

    accuracy: share of GT boxes matched (match_detections) by a detection whose caption names that shape
    (common.testing.shapes.phrase_names_region); precision: share of all detections that are such a
    match (so that spamming boxes cannot win). -> dict with both, the counts and detections per image."""
    from common.testing.shapes import phrase_names_region
    num_gt = num_det = correct = matched = 0
    for im in images:
        regions = im["regions"]
        gt = [[r["x"], r["y"], r["x"] + r["w"], r["y"] + r["h"]] for r in regions]
        matches = match_detections(im["det_boxes"], im["det_scores"], gt, iou_thresh)
        num_gt += len(regions)
        num_det += len(im["det_captions"])
        for r, d in zip(regions, matches):
            if d >= 0:
                matched += 1
                correct += phrase_names_region(im["det_captions"][d], r)
    return {"accuracy": correct / max(num_gt, 1), "precision": correct / max(num_det, 1),
            "correct": correct, "matched": matched, "num_gt": num_gt, "num_detections": num_det,
            "detections_per_image": num_det / max(len(images), 1), "num_images": len(images)}
