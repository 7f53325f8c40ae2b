"""Interactiveness AP (TIN++ protocol): ground truth of decision 11, splits, parts."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics_fixtures import H, O, gt_tables, hoi, shift
from pipeline.metrics.inputs import ImageIndex
from pipeline.metrics.interactiveness_ap import (InteractivenessEvaluator, PairScores, evaluate_interactiveness,
                                              interactiveness_ground_truth, read_authors_ground_truth)

RIDE, HOLD, NO_INT = hoi("ride", "bicycle"), hoi("hold", "bicycle"), hoi("no_interaction", "bicycle")


def scores(rows, parts=None) -> PairScores:
    """rows: (image code, human, object, score)."""
    img, h, o, s = zip(*rows)
    p = np.asarray(parts, float) if parts is not None else np.full((len(rows), 6), np.nan)
    return PairScores(np.array(img), np.array(h, float), np.array(o, float), np.array(s, float), p)


def ground_truth(rows, images):
    images_df, inst, pairs = gt_tables(rows, images)
    index = ImageIndex.of(images)
    return interactiveness_ground_truth(pairs, inst, index, "hico-det"), index


def test_ground_truth_drops_no_interaction_and_merges_exact_duplicates_only():
    near = (10.0, 10.0, 60.0, 111.0)
    gt, _ = ground_truth([("a", H, O, RIDE), ("a", H, O, HOLD), ("a", near, O, HOLD), ("b", H, O, NO_INT)], ["a", "b"])
    assert len(gt.image) == 2  # ride/hold on identical boxes merged, near-duplicate kept, no_interaction gone
    np.testing.assert_array_equal(gt.human[1], near)


def test_vcoco_ground_truth_keeps_only_pairs_with_an_object():
    images_df, inst, pairs = gt_tables([("a", H, O, RIDE), ("a", shift(H, 100), O, RIDE)], ["a"])
    pairs.loc[1, "object"] = None
    gt = interactiveness_ground_truth(pairs, inst, ImageIndex.of(["a"]), "v-coco")
    assert len(gt.image) == 1


def test_perfect_ranking_scores_one_and_images_without_gt_give_false_positives():
    gt, index = ground_truth([("a", H, O, RIDE), ("b", H, O, RIDE)], ["a", "b", "c"])
    perfect = scores([(0, H, O, 0.9), (1, H, O, 0.8)])
    res = InteractivenessEvaluator(perfect, gt, 3).ap()
    assert (res.ap, res.max_recall) == (1.0, 1.0)
    extra = scores([(2, H, O, 0.95), (0, H, O, 0.9), (1, H, O, 0.8)])  # c has no ground truth
    assert InteractivenessEvaluator(extra, gt, 3).ap().ap == pytest.approx(2 / 3)  # FP, TP, TP


def test_continuous_iou_without_plus_one():
    gt, _ = ground_truth([("a", (0, 0, 9, 9), O, RIDE)], ["a"])
    res = InteractivenessEvaluator(scores([(0, (0, 0, 4, 9), O, 0.9)]), gt, 1).ap()
    assert res.ap == 0.0  # 36/81 < 0.5 without the +1 (0.5 with it)


def test_scene_split_restricts_detections_and_ground_truth():
    gt, _ = ground_truth([("a", H, O, RIDE), ("b", H, O, RIDE)], ["a", "b"])
    dets = scores([(0, H, O, 0.9), (1, shift(H, 200), O, 0.95)])  # b's detection misses
    crowded = np.array([False, True])
    out = evaluate_interactiveness(dets, gt, 2, {"crowded": crowded})
    assert out["not_crowded"].ap == 1.0 and out["not_crowded"].n_gt == 1
    assert out["crowded"].ap == 0.0 and out["crowded"].n_gt == 1
    assert out["all"].ap == pytest.approx(0.5 * 6 / 11)


def test_part_scores_rank_pairs_against_the_same_ground_truth():
    gt, _ = ground_truth([("a", H, O, RIDE)], ["a"])
    parts = [[0.9] + [0.1] * 5, [0.1] + [0.9] * 5]
    dets = scores([(0, H, O, 0.5), (0, shift(H, 200), O, 0.6)], parts)
    out = evaluate_interactiveness(dets, gt, 1, part_names=("foot", "leg", "hip", "hand", "arm", "head"))
    assert out["part/foot"].ap == 1.0  # the true pair ranks first by foot score
    assert out["part/hand"].ap == pytest.approx(0.5)


def test_reads_the_authors_ground_truth_pickle(tmp_path):
    path = tmp_path / "gt_binary.pkl"
    with open(path, "wb") as fh:
        pickle.dump({1: np.array([[*H, *O]]), 7: np.array([[*H, *O]])}, fh, protocol=2)
    index = ImageIndex.of(["HICO_test2015_00000001", "HICO_test2015_00000002"])
    gt = read_authors_ground_truth(path, index)
    assert gt.image.tolist() == [0] and gt.human.tolist() == [list(H)]


def test_pair_scores_from_a_table_drop_missing_objects():
    df = pd.DataFrame({"image_id": ["a", "a", "zz"], "query": [0, 1, 0], "hx1": 1.0, "hy1": 1.0, "hx2": 5.0, "hy2": 5.0,
                       "ox1": [1.0, np.nan, 1.0], "oy1": 1.0, "ox2": 5.0, "oy2": 5.0, "category_id": [3, None, 3],
                       "interactiveness": 0.5, "part_scores": [np.ones(6), np.ones(6), None]})
    dets = PairScores.from_pair_predictions(df, ImageIndex.of(["a"]))
    assert len(dets.image) == 1 and dets.parts.shape == (1, 6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_image_box_ties_do_not_depend_on_pair_order(seed):
    rng = np.random.default_rng(seed)
    corner = lambda: (float(rng.integers(0, 4)), float(rng.integers(0, 4)), 30.0, 40.0)  # noqa: E731
    gt, _ = ground_truth([(f"i{rng.integers(3)}", corner(), O, RIDE) for _ in range(6)], ["i0", "i1", "i2"])
    rows = [(int(rng.integers(3)), corner(), O, float(rng.choice([0.2, 0.5]))) for _ in range(20)]
    parts = rng.choice([0.1, 0.9], (20, 6))
    base = evaluate_interactiveness(scores(rows, parts), gt, 3, {"s": np.array([True, False, True])}, ("foot",),
                                    ties="image_box")
    perm = rng.permutation(20)
    other = evaluate_interactiveness(scores([rows[k] for k in perm], parts[perm]), gt, 3,
                                     {"s": np.array([True, False, True])}, ("foot",), ties="image_box")
    for key in base:
        np.testing.assert_array_equal([base[key].ap, base[key].max_recall], [other[key].ap, other[key].max_recall])
