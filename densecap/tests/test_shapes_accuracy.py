"""The shapes caption accuracy (evaluation.shapes_caption_accuracy) on detections made by hand: which GT box
each detection is matched to is worked out in the comments."""
import pytest
import torch

from densecap.evaluation import match_detections, shapes_caption_accuracy

RED = {"x": 10, "y": 10, "w": 20, "h": 20, "phrase": "a small red circle"}      # box (10, 10, 30, 30)
BLUE = {"x": 60, "y": 60, "w": 40, "h": 40, "phrase": "a large blue square"}    # box (60, 60, 100, 100)
ON_RED = (10, 10, 30, 30)
NEAR_RED = (12, 10, 30, 30)      # IoU 18*20 / 400 = 0.9
HALF_RED = (20, 10, 30, 30)      # IoU 200 / 400 = 0.5: matches (>= 0.5)
LESS_RED = (21, 10, 30, 30)      # IoU 180 / 400 = 0.45: does not
ON_BLUE = (60, 60, 100, 100)


def image(dets, regions):
    return {"det_boxes": [d[0] for d in dets], "det_scores": [d[1] for d in dets],
            "det_captions": [d[2] for d in dets], "regions": regions}


def test_each_gt_box_takes_the_best_scoring_unmatched_detection_at_iou_half():
    # RED: NEAR_RED (0.9) outscores ON_RED (0.5); HALF_RED is exactly 0.5 IoU; LESS_RED never matches
    assert match_detections([ON_RED, NEAR_RED], [0.5, 0.9], [ON_RED]) == [1]
    assert match_detections([HALF_RED], [0.1], [ON_RED]) == [0]
    assert match_detections([LESS_RED], [0.1], [ON_RED]) == [-1]
    # one to one: the one detection goes to the first GT box, the identical second GT box gets nothing
    assert match_detections([ON_RED], [1.0], [ON_RED, ON_RED]) == [0, -1]
    assert match_detections([ON_RED, ON_RED], [0.2, 0.3], [ON_RED, ON_RED]) == [1, 0]
    assert match_detections([], [], [ON_RED]) == [-1] and match_detections([ON_RED], [1.0], []) == []


def test_accuracy_counts_gt_boxes_named_by_their_match_and_precision_counts_detections():
    # image 1: RED matched by NEAR_RED (score 0.9, right caption); the lower-scoring ON_RED with a wrong
    # caption is unmatched; BLUE matched by ON_BLUE whose caption has the wrong size -> 1 of 2 GT right.
    # image 2: RED matched only by the best-scoring box, whose caption names the wrong colour; a
    # right-captioned ON_RED scores lower and is not taken -> 0 of 1. Totals: 1 of 3 GT boxes, 1 of 5
    # detections, 3 of 3 GT boxes have a box at IoU >= 0.5.
    images = [image([(ON_RED, 0.5, "a small yellow circle"), (NEAR_RED, 0.9, "a small red circle"),
                     (ON_BLUE, 0.7, "a small blue square")], [RED, BLUE]),
              image([(NEAR_RED, 0.8, "a small green circle"), (ON_RED, 0.3, "a red circle")], [RED])]
    s = shapes_caption_accuracy(images)
    assert s["accuracy"] == pytest.approx(1 / 3) and s["precision"] == pytest.approx(1 / 5)
    assert (s["correct"], s["matched"], s["num_gt"], s["num_detections"]) == (1, 3, 3, 5)
    assert s["detections_per_image"] == pytest.approx(2.5)


def test_a_caption_without_the_size_word_counts_and_spamming_boxes_lowers_precision():
    right = image([(ON_RED, 1.0, "a red circle"), (ON_BLUE, 0.9, "a large blue square")], [RED, BLUE])
    assert shapes_caption_accuracy([right])["accuracy"] == 1.0
    assert shapes_caption_accuracy([right])["precision"] == 1.0
    spam = image([(ON_RED, 1.0, "a red circle"), (ON_BLUE, 0.9, "a large blue square")]
                 + [((0, 0, 5 + k, 5 + k), 0.1, "a red circle") for k in range(8)], [RED, BLUE])
    s = shapes_caption_accuracy([spam])
    assert s["accuracy"] == 1.0 and s["precision"] == pytest.approx(2 / 10)
    assert shapes_caption_accuracy([image([], [RED])])["accuracy"] == 0.0


@pytest.fixture(scope="module")
def loader(tmp_path_factory):
    from common.cli import parse
    from common.testing.shapes import write_dataset
    from densecap import preprocess
    from densecap.loader import DataLoader
    d = tmp_path_factory.mktemp("shapes")
    paths = write_dataset(d / "shapes", 10, seed=1, size=64, val_frac=0.5, test_frac=0.0)
    preprocess.main(parse(preprocess.PreprocessOptions, [
        "--region_data", paths["region_descriptions"], "--image_dir", paths["images"], "--split_json",
        paths["splits_json"], "--h5_output", str(d / "s.h5"), "--json_output", str(d / "s.json"),
        "--image_size", "64", "--min_token_instances", "1"]))
    return DataLoader(str(d / "s.h5"), str(d / "s.json"))


class GTEcho(torch.nn.Module):
    """A stand-in model whose detections are each val image's GT boxes (shifted by `shift` px) and phrases."""

    def __init__(self, loader, shift=0.0, wrong_colour=False):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.gt = [loader.get_image(ix)[1:3] for ix in loader.split_ix["val"]]
        self.calls, self.shift = 0, shift
        ids = [int(k) for k, v in loader.idx_to_token.items() if v in ("red", "green", "blue", "yellow", "purple")]
        self.swap = dict(zip(ids, ids[1:] + ids[:1])) if wrong_colour else {}  # each colour word -> another

    def forward_test(self, image, *a, **k):
        boxes, labels = self.gt[self.calls]
        self.calls += 1
        labels = labels.clone().apply_(lambda t: self.swap.get(t, t))
        return boxes + torch.tensor([self.shift, 0, 0, 0]), torch.linspace(1, 0, len(boxes)), labels


def test_eval_split_scores_the_model_detections_against_the_gt_phrases(loader):
    from densecap.evaluation import eval_split
    n = sum(len(b) for b, _ in GTEcho(loader).gt)
    run = lambda m: eval_split(m, loader, "val", meteor=False, progress=False, shapes=True)["shapes"]  # noqa: E731
    exact = run(GTEcho(loader))
    assert (exact["accuracy"], exact["precision"], exact["num_gt"], exact["num_images"]) == (1.0, 1.0, n, 5)
    assert run(GTEcho(loader, wrong_colour=True))["accuracy"] == 0.0   # every box found, every colour wrong
    far = run(GTEcho(loader, shift=64.0))                              # every box a whole image off
    assert far["matched"] == 0 and far["accuracy"] == 0.0
