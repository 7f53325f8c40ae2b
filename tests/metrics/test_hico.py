"""HICO-DET mAP: hand-built cases with known answers, the routes, and a cross-check against a
straightforward per-detection loop of the official protocol."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics_fixtures import H, O, gt_tables, hoi, predictions, shift
from model.common import labels
from pipeline.metrics.hico import (ROUTES, HoiDetections, HicoProtocol, evaluate_hico, known_object_table,
                                   read_hico_image_labels)
from pipeline.metrics.inputs import ImageIndex, PairGroundTruth, pair_ground_truth
from model.box_geometry import iou_np

RIDE_BIKE, HOLD_BIKE, BOARD_PLANE = hoi("ride", "bicycle"), hoi("hold", "bicycle"), hoi("board", "airplane")
_bench = importlib.util.spec_from_file_location("bench_eval", Path(__file__).parents[1] / "benchmarks" / "bench_eval.py")
bench = importlib.util.module_from_spec(_bench)
_bench.loader.exec_module(bench)


def run(gt_rows, images, pred_rows, protocol=ROUTES["official"], image_labels=None, class_set="with_gt",
        ties="input_order"):
    images_df, inst, pairs = gt_tables(gt_rows, images)
    index = ImageIndex.of(images_df["image_id"])
    gt = pair_ground_truth(pairs, inst, index)
    ko = known_object_table(len(index), gt, image_labels, index)
    dets = HoiDetections.from_predictions(predictions(pred_rows), index)
    return evaluate_hico(dets, gt, len(index), protocol, ko, class_set, ties=ties)


def per_class(result, mode="default"):
    return result[mode].per_class.set_index("hoi_id")


def test_perfect_detector_scores_one():
    gt = [("a", H, O, RIDE_BIKE), ("a", H, O, HOLD_BIKE), ("b", H, O, BOARD_PLANE), ("b", shift(H, 200), O, BOARD_PLANE)]
    res = run(gt, ["a", "b", "c"], [(i, h, o, c, 0.9) for i, h, o, c in gt])
    for mode in ("default", "known_object"):
        assert res[mode].means["full_map"] == 1.0
        assert res[mode].means["full_mrec"] == 1.0


def test_duplicate_detection_is_a_false_positive_without_retry():
    # two identical GT pairs: the best GT of every detection is the first one, so the second
    # detection is a duplicate (FP) although the other GT pair is still free
    gt = [("a", H, O, RIDE_BIKE), ("a", H, O, RIDE_BIKE)]
    res = run(gt, ["a"], [("a", H, O, RIDE_BIKE, 0.9), ("a", H, O, RIDE_BIKE, 0.8)])
    row = per_class(res).loc[RIDE_BIKE]
    assert (row.n_tp, row.n_detections, row.recall) == (1, 2, 0.5)
    assert row.ap == pytest.approx(6 / 11)  # precision 1 up to recall 0.5


def test_detection_on_an_image_without_ground_truth_is_a_false_positive():
    gt = [("a", H, O, RIDE_BIKE)]
    preds = [("empty", H, O, RIDE_BIKE, 0.9), ("a", H, O, RIDE_BIKE, 0.5)]
    official = per_class(run(gt, ["a", "empty"], preds)).loc[RIDE_BIKE]
    assert (official.n_detections, official.n_tp) == (2, 1)
    assert official.ap == pytest.approx(0.5)  # precision 1/2 at every recall
    qpic = per_class(run(gt, ["a", "empty"], preds, ROUTES["qpic"])).loc[RIDE_BIKE]
    assert (qpic.n_detections, qpic.ap) == (1, 1.0)  # QPIC never sees GT-less images


def test_known_object_drops_exactly_the_detections_in_images_without_the_object():
    gt = [("bike", H, O, RIDE_BIKE), ("plane", H, O, BOARD_PLANE)]
    preds = [("bike", H, O, RIDE_BIKE, 0.5), ("bike", shift(H, 300), O, HOLD_BIKE, 0.9),  # bike image: kept
             ("plane", H, O, RIDE_BIKE, 0.95), ("none", H, O, RIDE_BIKE, 0.8),  # no bicycle there: dropped
             ("plane", H, O, BOARD_PLANE, 0.7)]
    res = run(gt + [("bike", H, O, HOLD_BIKE)], ["bike", "plane", "none"], preds)
    default, ko = per_class(res), per_class(res, "known_object")
    assert default.loc[RIDE_BIKE, "n_detections"] == 3 and ko.loc[RIDE_BIKE, "n_detections"] == 1
    assert default.loc[RIDE_BIKE, "ap"] == pytest.approx(1 / 3) and ko.loc[RIDE_BIKE, "ap"] == 1.0
    # images with the object but not the class still give FPs in Known Object
    assert ko.loc[HOLD_BIKE, "n_detections"] == 1 and ko.loc[HOLD_BIKE, "n_tp"] == 0
    assert ko.loc[BOARD_PLANE, "n_detections"] == 1


def test_known_object_from_image_level_labels():
    gt = [("bike", H, O, RIDE_BIKE)]
    preds = [("bike", H, O, RIDE_BIKE, 0.5), ("none", H, O, RIDE_BIKE, 0.9)]
    approx = per_class(run(gt, ["bike", "none"], preds), "known_object").loc[RIDE_BIKE]
    assert approx.n_detections == 1
    # an image-level label says "none" shows a bicycle (e.g. an invisible box): its detection counts
    labels_df = pd.DataFrame({"image_id": ["bike", "none"], "hoi_id": [RIDE_BIKE, HOLD_BIKE]})
    exact = per_class(run(gt, ["bike", "none"], preds, image_labels=labels_df), "known_object").loc[RIDE_BIKE]
    assert (exact.n_detections, exact.ap) == (2, 0.5)  # the FP ranks first


def test_rare_and_non_rare_means():
    rare = sorted(labels.hico().rare_hoi_ids)[0]
    gt = [("a", H, O, rare), ("a", H, O, RIDE_BIKE), ("a", H, O, HOLD_BIKE)]
    preds = [("a", H, O, rare, 0.9), ("a", H, O, RIDE_BIKE, 0.9), ("a", shift(H, 300), O, HOLD_BIKE, 0.9)]
    means = run(gt, ["a"], preds)["default"].means
    assert means["rare_map"] == 1.0
    assert means["non_rare_map"] == 0.5  # ride 1.0, hold 0.0
    assert means["full_map"] == pytest.approx(2 / 3)
    all600 = run(gt, ["a"], preds, class_set="all")["default"]
    assert len(all600.per_class) == 600 and all600.means["full_map"] == pytest.approx(2 / 600)


def test_plus_one_convention_changes_iou_and_the_outcome():
    a, b = np.array([[0.0, 0.0, 9.0, 9.0]]), np.array([[0.0, 0.0, 4.0, 9.0]])
    assert iou_np(a, b, plus_one=True, clip_areas=False)[0] == pytest.approx(50 / 100)  # 5 x 10 of 10 x 10 pixels
    assert iou_np(a, b, plus_one=False, clip_areas=False)[0] == pytest.approx(36 / 81)
    gt = [("a", (0, 0, 9, 9), O, RIDE_BIKE)]
    preds = [("a", (0, 0, 4, 9), O, RIDE_BIKE, 0.9)]
    assert per_class(run(gt, ["a"], preds)).loc[RIDE_BIKE, "ap"] == 1.0  # IoU 0.5 with +1: TP
    assert per_class(run(gt, ["a"], preds, ROUTES["bpm_notebook"])).loc[RIDE_BIKE, "ap"] == 0.0  # 0.44: FP


def test_matlab_conversion_rounds_and_shifts_detections():
    gt = [("a", (0, 0, 9, 9), (20, 20, 29, 29), RIDE_BIKE)]
    exact = [("a", (0, 0, 9, 9), (20, 20, 29, 29), RIDE_BIKE, 0.9)]
    assert per_class(run(gt, ["a"], exact, ROUTES["matlab_conversion"])).loc[RIDE_BIKE, "ap"] == 1.0  # IoU 81/119
    # (0, 0, 4.4, 9): IoU 54/100 as given; rounded to x2 = 4 and shifted to (1, 1, 5, 10): 45/105
    off = [("a", (0, 0, 4.4, 9), (20, 20, 29, 29), RIDE_BIKE, 0.9)]
    assert per_class(run(gt, ["a"], off)).loc[RIDE_BIKE, "ap"] == 1.0
    assert per_class(run(gt, ["a"], off, ROUTES["matlab_conversion"])).loc[RIDE_BIKE, "ap"] == 0.0


def test_per_class_cap_and_per_image_top_k():
    gt = [("a", H, O, RIDE_BIKE)]
    preds = [("a", shift(H, 300 + k), O, RIDE_BIKE, 0.9 - k / 100) for k in range(3)] + [("a", H, O, RIDE_BIKE, 0.1)]
    assert per_class(run(gt, ["a"], preds)).loc[RIDE_BIKE, "n_tp"] == 1
    capped = per_class(run(gt, ["a"], preds, HicoProtocol(per_class_cap=3))).loc[RIDE_BIKE]
    assert (capped.n_detections, capped.n_tp) == (3, 0)
    topk = per_class(run(gt, ["a"], preds, HicoProtocol(per_image_top_k=2))).loc[RIDE_BIKE]
    assert (topk.n_detections, topk.n_tp) == (2, 0)


@pytest.mark.parametrize("ties", ["input_order", "image_box"])
@pytest.mark.parametrize("coarse", [False, True])
def test_agrees_with_a_per_detection_loop_on_random_data(ties, coarse):
    det, gt = bench.synthetic(n_images=60, per_image=40, seed=5)
    keep = np.isin(gt.label, np.unique(gt.label)[:40])  # a manageable class subset
    gt = gt.subset(keep)
    det = det.subset(np.isin(det.hoi, gt.label))
    if coarse:  # scores on a grid of 5 values: most detections are tied
        det = HoiDetections(det.image, det.human, det.obj, np.round(det.score * 4) / 4, det.hoi)
    ko = known_object_table(60, gt)
    ours = evaluate_hico(det, gt, 60, ko_table=ko, ties=ties)
    for mode, table in (("default", None), ("known_object", ko)):
        naive = bench.naive_hico(det, gt, table, ties=ties)
        mine = ours[mode].per_class.set_index("hoi_id")
        for c, (ap, rec) in naive.items():
            assert mine.loc[c, "ap"] == pytest.approx(ap, abs=1e-12)
            assert mine.loc[c, "recall"] == pytest.approx(rec, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_image_box_ties_do_not_depend_on_row_order(seed):
    rng = np.random.default_rng(seed)
    n_img, classes = 6, [RIDE_BIKE, HOLD_BIKE]
    corner = lambda: (float(rng.integers(0, 5)), float(rng.integers(0, 5)), 30.0, 40.0)  # noqa: E731
    gt_rows = [(f"i{rng.integers(n_img)}", corner(), O, int(rng.choice(classes))) for _ in range(8)]
    # few distinct scores: many ties, resolved by the content-based rule (ties="image_box")
    preds = [(f"i{rng.integers(n_img)}", corner(), O, int(rng.choice(classes)), float(rng.choice([0.3, 0.6, 0.9])))
             for _ in range(30)]
    images = [f"i{k}" for k in range(n_img)]
    base = run(gt_rows, images, preds, ties="image_box")
    perm = rng.permutation(len(preds))
    shuffled = run(gt_rows, images[::-1], [preds[k] for k in perm], ties="image_box")
    for mode in base:
        pd.testing.assert_frame_equal(base[mode].per_class, shuffled[mode].per_class)


def test_reads_image_level_labels_from_anno_mat(tmp_path):
    from scipy.io import savemat

    anno = np.full((600, 3), np.nan)
    anno[RIDE_BIKE - 1, 0] = 1
    anno[BOARD_PLANE - 1, 2] = 1
    anno[HOLD_BIKE - 1, 1] = -1  # negative: not a label
    names = np.array(["HICO_test2015_00000001.jpg", "HICO_test2015_00000002.jpg", "HICO_test2015_00000003.jpg"], dtype=object)
    savemat(tmp_path / "anno.mat", {"list_test": names.reshape(-1, 1), "anno_test": anno})
    got = read_hico_image_labels(tmp_path / "anno.mat")
    assert sorted(zip(got.image_id, got.hoi_id)) == [("HICO_test2015_00000001", RIDE_BIKE), ("HICO_test2015_00000003", BOARD_PLANE)]


def test_pair_ground_truth_names_a_missing_instance():
    images, inst, pairs = gt_tables([("a", H, O, RIDE_BIKE)], ["a"])
    from model.common.errors import UserError

    with pytest.raises(UserError, match="subject 5"):
        pair_ground_truth(pairs.assign(subject=5), inst, ImageIndex.of(["a"]))


def test_no_predictions_gives_zero_not_an_error():
    from pipeline import tables

    images_df, inst, pairs = gt_tables([("a", H, O, RIDE_BIKE)], ["a"])
    index = ImageIndex.of(["a"])
    gt = pair_ground_truth(pairs, inst, index)
    res = evaluate_hico(HoiDetections.from_predictions(tables.empty("predictions"), index), gt, 1,
                        ko_table=known_object_table(1, gt))
    assert res["default"].means["full_map"] == 0.0 and res["known_object"].means["full_mrec"] == 0.0


def test_hoi_class_from_verb_and_object_when_hoi_id_is_null():
    images_df, inst, pairs = gt_tables([("a", H, O, RIDE_BIKE)], ["a"])
    index = ImageIndex.of(["a"])
    pred = predictions([("a", H, O, RIDE_BIKE, 0.9)]).assign(hoi_id=None)
    dets = HoiDetections.from_predictions(pred, index)
    assert dets.hoi.tolist() == [RIDE_BIKE]
