"""Evaluate a DenseCap model on a split: dense-captioning mAP (METEOR, as eval_utils.lua) and detmap.

    python evaluate_model.py -checkpoint checkpoint.pt -data_h5 data/VG-regions.h5 -data_json data/VG-regions-dicts.json
    python evaluate_model.py -checkpoint checkpoint.pt -metric detmap -baseline random   # + a random-box baseline
    python evaluate_model.py -checkpoint shapes.pt -metric detmap -shapes_accuracy 1   # the shapes world's demo score

Unlike the original (which passed `max_proposals` where `num_proposals` was meant, so the flag was
silently ignored), -num_proposals is honoured.
"""
import json
import sys

from common.cli import UserError, flag, options, parse, run


@options
class EvalOptions:
    """Score a DenseCap checkpoint on a split of preprocess.py's data."""
    checkpoint: str = flag("data/models/densecap/densecap-pretrained-vgg16.t7", "checkpoint (.pt or .t7)")
    data_h5: str = flag("", "HDF5 from preprocess.py ('' = the one the checkpoint was trained on)")
    data_json: str = flag("", "JSON from preprocess.py ('' = the one the checkpoint was trained on)")
    gpu: int = flag(0, "GPU to use; -1 = CPU")
    use_cudnn: int = flag(1, "accepted for compatibility")
    split: str = flag("val", "train, val or test", choices=["train", "val", "test"])
    max_images: int = flag(-1, "evaluate at most this many images (-1 = all)")
    rpn_nms_thresh: float = flag(0.7, "RPN NMS threshold", min=0.0, max=1.0)
    final_nms_thresh: float = flag(0.3, "final NMS threshold", min=0.0, max=1.0)
    num_proposals: int = flag(1000, "RPN proposals per image", min=1)
    metric: str = flag("map", "new: map (METEOR via pycocoevalcap; needs Java) or detmap (boxes only)",
                       choices=["map", "detmap"])
    baseline: str = flag("", "new: 'random' also scores random boxes (as many per image as the model gives)")
    seed: int = flag(123, "new: seed of the random baseline")
    output_json: str = flag("", "new: write the results here")
    shapes_accuracy: int = flag(0, "new: 1 = also print the shapes world's caption accuracy (share of GT boxes "
                                   "matched at IoU 0.5 by a detection naming the shape) and precision")


# the heavy imports come after the options: `-h` is answered before them (common.cli.options)
import numpy as np
import torch

from common.device import get_device
from densecap.checkpoints import load_model
from densecap.evaluation import DenseCaptioningEvaluator, eval_split
from densecap.loader import DataLoader


def random_box_baseline(model_boxes_per_image, loader, split, image_ixs, seed):
    """detmap of uniformly random boxes with random scores, as many per image as the model produced."""
    rng = np.random.default_rng(seed)
    ev = DenseCaptioningEvaluator(meteor=False)
    for ix, n in zip(image_ixs, model_boxes_per_image):
        _, gt_boxes, gt_labels, info = loader.get_image(ix)
        H, W = info["height"], info["width"]
        x1, x2 = np.sort(rng.uniform(1, W, (2, n)), 0)
        y1, y2 = np.sort(rng.uniform(1, H, (2, n)), 0)
        boxes = np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1)
        ev.add_result(rng.random(n), boxes, [""] * n, gt_boxes.numpy(), [""] * len(gt_boxes))
    return 100 * ev.evaluate()["detmap"]


def main(opt: EvalOptions, out=None):
    out = out or sys.stdout
    device = get_device(opt.gpu, "-gpu -1")
    model, idx_to_token, ckpt = load_model(opt.checkpoint, device)
    trained_on = ckpt.get("opt", {}) if isinstance(ckpt, dict) else {}
    data_h5 = opt.data_h5 or trained_on.get("data_h5", "")
    data_json = opt.data_json or trained_on.get("data_json", "")
    if not data_h5 or not data_json:
        raise UserError("give -data_h5 and -data_json (the checkpoint does not name its data)")
    loader = DataLoader(data_h5, data_json)
    if {str(k): v for k, v in loader.idx_to_token.items()} != idx_to_token:
        print("warning: the data's vocabulary differs from the model's; captions are decoded with the model's",
              file=sys.stderr)
    ixs = loader.split_ix[opt.split]
    if len(ixs) == 0:
        raise UserError(f"{data_h5}: no {opt.split} images")
    if opt.max_images > 0:
        ixs = ixs[:opt.max_images]
    counts = []
    real_forward = model.forward_test

    def counting_forward(*a, **k):  # remember how many boxes per image, for the random baseline
        r = real_forward(*a, **k)
        counts.append(len(r[0]))
        return r
    model.forward_test = counting_forward
    res = eval_split(model, loader, opt.split, opt.max_images, opt.rpn_nms_thresh, opt.final_nms_thresh,
                     opt.num_proposals, meteor=None if opt.metric == "map" else False, idx_to_token=idx_to_token,
                     progress=sys.stderr.isatty(), shapes=bool(opt.shapes_accuracy))
    model.forward_test = real_forward
    line = f"{opt.split} ({res['num_images']} images): "
    if "map" in res:
        line += f"mAP {res['map']:.2f}, "
    line += f"detmap {res['detmap']:.2f}"
    if opt.baseline == "random":
        res["random_detmap"] = random_box_baseline(counts, loader, opt.split, ixs, opt.seed)
        line += f"; random boxes: detmap {res['random_detmap']:.2f}"
    print(line, file=out)
    if opt.shapes_accuracy:
        s = res["shapes"]
        print(f"shapes caption accuracy: {s['accuracy']:.3f} ({s['correct']} of {s['num_gt']} GT boxes; "
              f"{s['matched']} have a detection at IoU >= 0.5); precision {s['precision']:.3f} "
              f"({s['correct']} of {s['num_detections']} detections, {s['detections_per_image']:.2f} per image)",
              file=out)
    if opt.output_json:
        with open(opt.output_json, "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    run(main, parse(EvalOptions))
