"""The dense-captioning mAP on cases small enough to work out by hand (see each comment)."""
import numpy as np
import pytest

from densecap.evaluation import (
    MIN_OVERLAPS,
    MIN_SCORES,
    DenseCaptioningEvaluator,
    average_precision,
    merge_boxes,
    xcycwh_to_x1y1x2y2,
)


def xc(*x1y1x2y2):
    """x1y1x2y2 corners -> the xcycwh boxes the evaluator takes."""
    b = np.array(x1y1x2y2, dtype=float).reshape(-1, 4)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)


A, B, C = (0, 0, 9, 9), (20, 20, 29, 29), (40, 40, 49, 49)
FAR = (100, 100, 109, 109)


def meteor_all(value):
    calls = []

    def score(cands, refs):
        calls.append((list(cands), [list(r) for r in refs]))
        return [value] * len(cands)
    score.calls = calls
    return score


def test_duplicate_detection_is_a_false_positive():
    # preds A (0.9), A again (0.8), B (0.7); GT A, B, C. TP FP TP: recall 1/3 1/3 2/3, precision 1 1/2 2/3.
    # AP: 34 thresholds t <= 1/3 see precision 1, 33 (0.34..0.66) see 2/3, 33 see nothing -> 0.56
    ev = DenseCaptioningEvaluator(meteor_all(1.0))
    ev.add_result([0.9, 0.8, 0.7], xc(A, A, B), ["p1", "p2", "p3"], xc(A, B, C), ["a", "b", "c"])
    res = ev.evaluate()
    assert res["detmap"] == pytest.approx(0.56)
    assert res["map"] == pytest.approx(0.56)   # METEOR 1.0 passes every threshold
    assert set(res["det_breakdown"]) == {"ov0.3", "ov0.4", "ov0.5", "ov0.6", "ov0.7"}
    assert len(res["ap_breakdown"]) == 30


def test_iou_plus_one_and_meteor_thresholds():
    # pred (0,0,9,4) on GT (0,0,9,9): 10x5 / 10x10 = IoU 0.5 with +1 pixels -> TP at .3 .4 .5 only: detmap 3/5.
    # METEOR 0.12 > 0, .05, .1 but not .15, .2, .25: 3 x 3 of the 30 (IoU, METEOR) pairs have AP 1 -> 0.3
    ev = DenseCaptioningEvaluator(meteor_all(0.12))
    ev.add_result([1.0], xc((0, 0, 9, 4)), ["a red circle"], xc(A), ["a red disc"])
    res = ev.evaluate()
    assert res["detmap"] == pytest.approx(0.6)
    assert res["map"] == pytest.approx(0.3)
    assert res["ap_breakdown"]["ov0.5_score0.1"] == 1.0 and res["ap_breakdown"]["ov0.5_score0.15"] == 0.0
    assert res["ap_breakdown"]["ov0.6_score0"] == 0.0


def test_meteor_zero_never_passes():
    # "score > min_score" is strict: METEOR 0 fails even the 0 threshold, so mAP is 0 while detmap is 1
    ev = DenseCaptioningEvaluator(meteor_all(0.0))
    ev.add_result([1.0], xc(A), ["x"], xc(A), ["y"])
    res = ev.evaluate()
    assert (res["detmap"], res["map"]) == (pytest.approx(1.0), 0.0)


def test_gt_boxes_overlapping_by_07_are_merged_with_all_captions():
    # (0,0,9,9) and (0,0,9,8): IoU 90/100 = 0.9 -> one merged box (the mean) with both captions; C stays alone
    gt = xcycwh_to_x1y1x2y2(xc(A, (0, 0, 9, 8), C))
    groups = merge_boxes(gt, 0.7)
    assert [sorted(g.tolist()) for g in groups] == [[0, 1], [2]]
    meteor = meteor_all(0.5)
    ev = DenseCaptioningEvaluator(meteor)
    ev.add_result([0.9], xc((0, 0, 9, 8.5)), ["pred"], xc(A, (0, 0, 9, 8), C), ["red", "a red one", "blue"])
    res = ev.evaluate()
    assert ev.npos == 2 and ev.records[0]["ov"] == pytest.approx(1.0)
    assert meteor.calls == [(["pred"], [["red", "a red one"]])]
    # one TP at recall 1/2: thresholds t <= 0.5 in Lua's accumulated float loop see precision 1
    n = 0
    t = 0.0
    while t <= 1:
        n += t <= 0.5
        t += 0.01
    assert res["detmap"] == pytest.approx(n / 100)


def test_lua_quirk_unmatched_prediction_claims_the_last_gt_box():
    # pred FAR (0.9) overlaps nothing: FP, and Lua's used[-1] marks C taken; pred C (0.8) is then a
    # duplicate (FP); pred A (0.7) is TP. recall 0 0 1/3, precision 0 0 1/3 -> AP = 34 * (1/3) / 100
    ev = DenseCaptioningEvaluator(meteor_all(1.0))
    ev.add_result([0.9, 0.8, 0.7], xc(FAR, C, A), ["x", "y", "z"], xc(A, B, C), ["a", "b", "c"])
    assert [r["ok"] for r in ev.records] == [1, 0, 1] and ev.records[0]["gt"] is None
    assert ev.evaluate()["detmap"] == pytest.approx(34 / 3 / 100)


def test_predictions_pooled_and_sorted_across_images():
    # image 1: a TP at score 0.5 (1 GT); image 2: a miss at 0.9 (2 GT). Global order FP, TP over 3 GT:
    # recall 0, 1/3; precision 0, 1/2 -> AP = 34 * 0.5 / 100 = 0.17
    ev = DenseCaptioningEvaluator(meteor_all(1.0))
    ev.add_result([0.5], xc(A), ["x"], xc(A), ["a"])
    ev.add_result([0.9], xc(FAR), ["y"], xc(A, B), ["a", "b"])
    assert ev.evaluate()["detmap"] == pytest.approx(0.17)


def test_average_precision_matches_direct_formula():
    rng = np.random.default_rng(0)
    for _ in range(20):
        tp = (rng.random(15) < 0.5).astype(int)
        npos = 7   # recalls j/7 never sit exactly on a k/100 threshold, so plain k/100 is the same loop
        rec = np.cumsum(tp) / npos
        prec = np.cumsum(tp) / np.arange(1, 16)
        direct = np.mean([max([p for p, r in zip(prec, rec) if r >= k / 100], default=0) for k in range(100)])
        assert average_precision(tp, npos) == pytest.approx(direct)
    assert average_precision([], 3) == 0.0


def test_detmap_only_skips_meteor():
    ev = DenseCaptioningEvaluator(meteor=False)
    ev.add_result([1.0], xc(A), [""], xc(A), ["a"])
    res = ev.evaluate()
    assert res["detmap"] == pytest.approx(1.0) and "map" not in res


def _lua_points_at_or_below(r):
    """How many of the AP loop's 100 recall thresholds (Lua's accumulated 0, 0.01, ...) are <= r."""
    n, t = 0, 0.0
    while t <= 1:
        n += t <= r
        t += 0.01
    return n


def test_map_with_the_real_meteor():
    """pycocoevalcap's METEOR 1.5 (the Java jar, as evaluate_model.py uses it; ~5-15 s to load its
    paraphrase tables, once per process) on three exact boxes:
      A: "a small red circle" for "a small red circle"  -> identical, METEOR 1: a hit at every threshold
      B: "a small red circle" for "a large blue square" -> only "a" shared, METEOR ~0.04: a hit at 0 only
      C: "two dogs" for "a green triangle"              -> nothing shared, METEOR 0: never a hit
    so detmap = 1; METEOR threshold 0 sees hits 1,1,0 (AP: precision 1 up to recall 2/3), thresholds
    .05-.25 see 1,0,0 (AP: precision 1 up to recall 1/3), the same at every IoU threshold."""
    ev = DenseCaptioningEvaluator()  # meteor=None: the real scorer through common.lang_eval
    ev.add_result([0.9, 0.8, 0.7], xc(A, B, C), ["a small red circle", "a small red circle", "two dogs"],
                  xc(A, B, C), ["a small red circle", "a large blue square", "a green triangle"])
    res = ev.evaluate()
    assert res["detmap"] == pytest.approx(1.0)
    at_0, above = _lua_points_at_or_below(2 / 3) / 100, _lua_points_at_or_below(1 / 3) / 100
    assert (at_0, above) == (0.67, 0.34)
    for ov in MIN_OVERLAPS:
        assert res["ap_breakdown"][f"ov{ov}_score0"] == pytest.approx(at_0)
        for m in MIN_SCORES[2:]:
            assert res["ap_breakdown"][f"ov{ov}_score{m}"] == pytest.approx(above)
    assert res["map"] == pytest.approx((at_0 + 5 * above) / 6)  # 0.395


def test_an_image_with_no_boxes_after_nms_counts_its_gt_as_missed():
    # image 1: no predictions at all (zero boxes after NMS); image 2: A found. 2 GT boxes, one TP first:
    # recall 1/2 at precision 1 -> the thresholds 0, 0.01, ... <= 1/2: 50 of them, as Lua accumulates 0.01
    # (its 51st is 0.5000000000000002) -> AP 0.50 at every threshold
    ev = DenseCaptioningEvaluator(meteor_all(1.0))
    ev.add_result(np.zeros(0), np.zeros((0, 4)), [], xc(B), ["b"])
    ev.add_result([0.5], xc(A), ["p"], xc(A), ["a"])
    res = ev.evaluate()
    assert _lua_points_at_or_below(0.5) == 50
    assert res["detmap"] == pytest.approx(0.50) and res["map"] == pytest.approx(0.50)
    nothing = DenseCaptioningEvaluator(meteor_all(1.0))
    nothing.add_result(np.zeros(0), np.zeros((0, 4)), [], xc(A), ["a"])
    assert nothing.evaluate()["map"] == 0 and nothing.evaluate()["detmap"] == 0
