"""Pins of five details where the official evaluators' numbers depend on more than the rules
in words (issue 15): the 11-point thresholds k / 10 vs k * 0.1, V-COCO's float32 recall, the
pickle's own agent scores, detections outside the test split, and the order of tied scores.
Every expected value is derived by hand from evaluation-protocols.md in the comments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metrics_fixtures import H, O, gt_tables, hoi, predictions, shift
from pipeline.interop import vcoco_pickle
from pipeline.interop.image_keys import KeyMap
from pipeline.metrics import ap as apm
from pipeline.metrics.hico import ROUTES, HoiDetections, evaluate_hico, known_object_table
from pipeline.metrics.inputs import ImageIndex, pair_ground_truth
from pipeline.metrics.interactiveness_ap import PairScores, evaluate_interactiveness, interactiveness_ground_truth
from pipeline.metrics.vcoco import evaluate_vcoco
from pipeline.metrics.vcoco_data import detections_from_official, detections_from_predictions
from test_vcoco import ANNS, IN_VCOCO, LABELS, ap_of, box, det, write_vcoco

RIDE = hoi("ride", "bicycle")
FAR = shift(H, 5000)  # overlaps nothing


def hico(gt_rows, pred_rows, protocol=ROUTES["official"], ties="input_order"):
    images, inst, pairs = gt_tables(gt_rows, ["a", "b"])
    index = ImageIndex.of(images["image_id"])
    gt = pair_ground_truth(pairs, inst, index)
    res = evaluate_hico(HoiDetections.from_predictions(predictions(pred_rows), index), gt, 2, protocol,
                        known_object_table(2, gt), ties=ties)
    return res["default"].per_class.set_index("hoi_id").loc[RIDE]


def interactiveness(gt_rows, pair_rows, ties="input_order"):
    """pair_rows: (human, object, score) in image "a"."""
    images, inst, pairs = gt_tables(gt_rows, ["a", "b"])
    index = ImageIndex.of(["a", "b"])
    gt = interactiveness_ground_truth(pairs, inst, index, "hico-det")
    h, o, s = zip(*pair_rows)
    dets = PairScores(np.zeros(len(s), np.int64), np.array(h, float), np.array(o, float), np.array(s, float),
                      np.full((len(s), 6), np.nan))
    return evaluate_interactiveness(dets, gt, 2, ties=ties)["all"]


# --- 1, 2: 11-point thresholds --------------------------------------------------------------
# Ten ground-truth pairs, ten detections: the three best hit three of them, the other seven
# hit nothing. Ranks 1..3: precision 1, recall 0.1, 0.2, 0.3 (= 3/10, the double nearest 0.3);
# ranks 4..10: recall stays 3/10, precision 3/4 .. 3/10. At thresholds t = 0, .1, .2 the best
# precision with recall >= t is 1. At the fourth threshold:
#   TIN++/BPM calc_binary / calc_ap: t = 3 / 10.0 = 0.3 -> 3/10 >= t -> max precision 1;
#   ho-rcnn (Octave) / QPIC:         t = 3 * 0.1 = 0.30000000000000004 > 3/10 -> no point, 0.
# t >= 0.4: no point, 0. So AP = 4/11 with k/10 and 3/11 with k*0.1.
TEN_GT = [("a", shift(H, 100 * k), shift(O, 100 * k), RIDE) for k in range(10)]
THREE_HITS = [shift(H, 100 * k) for k in range(3)] + [FAR] * 7


def test_interactiveness_ap_uses_exact_tenths():
    res = interactiveness(TEN_GT, [(h, shift(O, 100 * k) if k < 3 else FAR, 1 - k / 20)
                                   for k, h in enumerate(THREE_HITS)])
    assert res.ap == 4 / 11
    assert res.max_recall == 0.3


def test_bpm_notebook_route_uses_exact_tenths_and_official_route_k_times_0_1():
    rows = [("a", h, shift(O, 100 * k) if k < 3 else FAR, RIDE, 1 - k / 20) for k, h in enumerate(THREE_HITS)]
    assert hico(TEN_GT, rows, ROUTES["bpm_notebook"]).ap == 4 / 11
    assert hico(TEN_GT, rows, ROUTES["official"]).ap == 3 / 11


def test_the_two_threshold_spellings_differ_exactly_at_three_six_and_seven_tenths():
    differ = np.flatnonzero(apm.TENTHS != apm.ELEVEN_POINT_THRESHOLDS)
    assert differ.tolist() == [3, 6, 7]
    assert (apm.TENTHS[differ] < apm.ELEVEN_POINT_THRESHOLDS[differ]).all()


# --- 3: V-COCO recall in float32 ----------------------------------------------------------------
# Three V-COCO persons, all standing (npos 3). Ranked agent detections: TP (person 101), FP (a
# box overlapping no one: assigned to person 101 with IoU 0), TP (person 102).
# vsrl_eval: cumulative tp = [1, 1, 2] (float32), rec = tp / 3.0 in float32:
#   r1 = float32(1/3) = 11184811 / 2**25, r2 = float32(2/3) = 11184811 / 2**24 = 2 r1;
#   prec = [1, 1/2, 2/3] (float64), envelope [1, 2/3, 2/3];
#   AP = r1 * 1 + (r2 - r1) * 2/3 = r1 * 5/3 = 0.55555557211..., not 5/9 (float64 recall).
THREE = [(101, 1, 1, 10, 10, 50, 100), (102, 1, 1, 200, 10, 50, 100), (103, 1, 1, 400, 10, 50, 100)]
STANDING = {("stand", a): [] for a in (101, 102, 103)}


def test_vcoco_recall_is_float32(tmp_path):
    gt = write_vcoco(tmp_path, THREE, [101, 102, 103], STANDING, images=(1,))
    dets = [det(1, box(101), stand_agent=0.9), det(1, [600.0, 300.0, 630.0, 400.0], stand_agent=0.8),
            det(1, box(102), stand_agent=0.7)]
    got = ap_of(evaluate_vcoco(detections_from_official(dets, gt), gt), "stand")
    r1 = 11184811 / 2**25
    assert np.float32(1 / 3) == r1
    assert got == pytest.approx(r1 * 5 / 3, abs=1e-15)
    assert abs(got - 5 / 9) > 1e-8


# --- 4: the pickle's own agent scores; detections outside the split -----------------------------
# Person 102 eats (npos 1, no role objects), person 101 is a V-COCO person who does not.
# d1 on 101: eat_agent 0.9, role scores 0.2; d2 on 102: eat_agent 0.1, role scores 0.8.
# vsrl_eval ranks agents by eat_agent: d1 (FP), d2 (TP): rec [0, 1], prec [0, 1/2];
# all-point AP = (1 - 0) * 1/2 = 0.5. (Agents rebuilt from the best role score would rank d2
# first: AP 1.) Role AP (Scenario 1, empty role boxes are right): d2 (0.8) TP first: AP 1.
# A detection on image 3, outside the test split, is never looked at by vsrl_eval.
def eat_pickle():
    return [det(1, box(101), eat_agent=0.9, eat_obj=[0.0, 0.0, 0.0, 0.0, 0.2], eat_instr=[np.nan] * 4 + [0.2]),
            det(1, box(102), eat_agent=0.1, eat_obj=[0.0, 0.0, 0.0, 0.0, 0.8], eat_instr=[np.nan] * 4 + [0.8]),
            det(3, box(101), eat_agent=0.95, eat_obj=[0.0, 0.0, 0.0, 0.0, 0.95], eat_instr=[np.nan] * 4 + [0.95])]


def test_vcoco_pickle_agent_scores_survive_import(tmp_path, capsys):
    gt = write_vcoco(tmp_path, ANNS, IN_VCOCO, LABELS)
    official = evaluate_vcoco(detections_from_official(eat_pickle(), gt), gt)
    assert ap_of(official, "eat") == 0.5 and ap_of(official, "eat", "obj") == 1.0
    keys = KeyMap([f"COCO_val2014_{i:012d}" for i in (1, 2)])  # the test split: image 3 is not in it
    table = vcoco_pickle.from_detections(eat_pickle(), keys, "dets.pkl")
    assert "1 detections on 1 images outside the image list" in capsys.readouterr().out
    imported = evaluate_vcoco(detections_from_predictions(table, gt), gt)
    assert ap_of(imported, "eat") == 0.5 and ap_of(imported, "eat", "obj") == 1.0
    pd.testing.assert_frame_equal(imported.table, official.table)


def test_vcoco_pickle_wholly_outside_the_split_is_refused():
    from model.common.errors import UserError

    with pytest.raises(UserError, match="none of its images"):
        vcoco_pickle.from_detections(eat_pickle()[2:], KeyMap(["COCO_val2014_000000000001"]), "dets.pkl")


# --- 5: ties keep the input order ---------------------------------------------------------------
# One ground-truth pair; two detections with the same score, the first given misses (FP), the
# second hits (TP). Stable sort (official): FP, TP -> precision 1/2 at recall 1 -> 11-point AP
# = 11 * (1/2) / 11 = 0.5; given the other way round TP, FP -> AP 1. The image_box rule orders
# by content (image, then human x1: H before FAR): TP first either way -> AP 1.
def test_hico_ties_keep_the_input_order():
    gt = [("a", H, O, RIDE)]
    miss_first = [("a", FAR, O, RIDE, 0.5), ("a", H, O, RIDE, 0.5)]
    assert hico(gt, miss_first).ap == 0.5
    assert hico(gt, miss_first[::-1]).ap == 1.0
    assert hico(gt, miss_first, ties="image_box").ap == hico(gt, miss_first[::-1], ties="image_box").ap == 1.0


def test_interactiveness_ties_keep_the_input_order():
    gt = [("a", H, O, RIDE)]
    miss_first = [(FAR, O, 0.5), (H, O, 0.5)]
    assert interactiveness(gt, miss_first).ap == 0.5
    assert interactiveness(gt, miss_first[::-1]).ap == 1.0
    assert interactiveness(gt, miss_first, ties="image_box").ap == 1.0


# V-COCO, three standing persons (npos 3), agent scores FP 0.5, TP 0.5, TP 0.4, TP 0.3 in that
# order. Input order: FP, TP, TP, TP: prec [0, 1/2, 2/3, 3/4], rec [0, r1, r2, 1] (float32),
# envelope 3/4 everywhere: AP = 3/4. With the two tied ones swapped: TP, FP, TP, TP: prec
# [1, 1/2, 2/3, 3/4], rec [r1, r1, r2, 1]: AP = r1 * 1 + (1 - r1) * 3/4 = 3/4 + r1/4.
def test_vcoco_ties_keep_the_input_order(tmp_path):
    gt = write_vcoco(tmp_path, THREE, [101, 102, 103], STANDING, images=(1,))
    fp = det(1, [600.0, 300.0, 630.0, 400.0], stand_agent=0.5)
    tps = [det(1, box(a), stand_agent=s) for a, s in ((101, 0.5), (102, 0.4), (103, 0.3))]
    r1 = 11184811 / 2**25
    assert ap_of(evaluate_vcoco(detections_from_official([fp, *tps], gt), gt), "stand") == pytest.approx(0.75, abs=1e-15)
    swapped = [tps[0], fp, *tps[1:]]
    assert ap_of(evaluate_vcoco(detections_from_official(swapped, gt), gt), "stand") == pytest.approx(0.75 + r1 / 4, abs=1e-15)


# --- the same rules on random, tie-heavy input with detections on images without ground truth --
def _coarse_synthetic():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("bench_eval", Path(__file__).parents[1] / "benchmarks" / "bench_eval.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    det, gt = bench.synthetic(n_images=80, per_image=40, seed=3)
    gt = gt.subset(np.isin(gt.label, np.unique(gt.label)[:40]) & (gt.image < 70))  # images 70..79: no GT
    det = det.subset(np.isin(det.hoi, gt.label))
    det = HoiDetections(det.image, det.human, det.obj, np.round(det.score * 4) / 4, det.hoi)  # 5 score values
    return bench, det, gt


def test_bpm_notebook_route_matches_a_calc_ap_like_loop_on_tied_scores():
    bench, det, gt = _coarse_synthetic()
    ko = known_object_table(80, gt)
    ours = evaluate_hico(det, gt, 80, ROUTES["bpm_notebook"], ko_table=ko)
    for mode, table in (("default", None), ("known_object", ko)):
        naive = bench.naive_hico(det, gt, table, plus_one=False, thresholds=apm.TENTHS)
        mine = ours[mode].per_class.set_index("hoi_id")
        for c, (ap, rec) in naive.items():
            assert abs(mine.loc[c, "ap"] - ap) < 1e-12 and abs(mine.loc[c, "recall"] - rec) < 1e-12


def _calc_binary_like(image, human, obj, score, gt_image, gt_boxes, npos):
    """TIN++/BPM's calc_binary written out, with a stable sort (ties in input order)."""
    def iou(a, b):
        iw, ih = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
        inter = max(iw, 0) * max(ih, 0)
        area = lambda x: max(x[2] - x[0], 0) * max(x[3] - x[1], 0)  # noqa: E731
        return 0.0 if inter <= 0 else inter / (area(a) + area(b) - inter)
    hit, used = [], set()
    for d in np.argsort(-score, kind="stable"):
        rows = np.flatnonzero(gt_image == image[d])
        maxi, k = 0.0, -1
        for r in rows:
            tmp = min(iou(human[d], gt_boxes[r, :4]), iou(obj[d], gt_boxes[r, 4:]))
            if maxi < tmp:
                maxi, k = tmp, r
        ok = k >= 0 and k not in used and maxi >= 0.5
        used |= {k} if ok else set()
        hit.append(ok)
    hit = np.cumsum(hit)
    rec, prec = hit / npos, hit / np.arange(1, len(hit) + 1)
    return sum(np.max(prec[rec >= i / 10.0]) / 11.0 for i in range(11) if (rec >= i / 10.0).any()), rec.max()


def test_interactiveness_matches_a_calc_binary_like_loop_on_tied_scores():
    from pipeline.metrics.inputs import PairGroundTruth

    _, det, gt = _coarse_synthetic()
    first = np.unique(np.c_[gt.image, gt.human, gt.obj], axis=0, return_index=True)[1]
    gt = gt.subset(np.sort(first))
    pairs = PairGroundTruth(gt.image, gt.human, gt.obj, gt.label, gt.verb)
    dets = PairScores(det.image, det.human, det.obj, det.score, np.full((len(det.score), 6), np.nan))
    res = evaluate_interactiveness(dets, pairs, 80)["all"]
    ap, rec = _calc_binary_like(det.image, det.human, det.obj, det.score, gt.image, np.c_[gt.human, gt.obj], len(gt.image))
    assert abs(res.ap - ap) < 1e-12 and abs(res.max_recall - rec) < 1e-12
