"""NIS modes (threshold | product | both), the rule for stage-2 pairs that no stage-1 pair
describes, and the bundle's choice of mode and tau (issue 13), on hand-built cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from metrics_fixtures import H, O, shift
from model.postprocess import Candidates, PostprocessConfig, apply_nis, build_candidates, match_stage1_overlap
from pipeline.bundle import pick_nis, unmatched_share
from pipeline.evaluate_core import NisTuning, tune_nis_threshold
from test_evaluate import setup
from test_postprocess import HICO, cxcywh, outputs

NAN = float("nan")


def _cands(score, inter, overlap):
    n = len(score)
    return Candidates(("a",), np.zeros(n, np.int64), np.arange(n), np.zeros(n, np.int64), np.zeros(n, np.int64),
                      np.array([[0, 0, 10, 10]] * n, np.float32), np.array([[20, 20, 30, 30]] * n, np.float32),
                      np.array(score, np.float32), np.array(inter, np.float32), np.full((n, 6), 0.5, np.float32),
                      np.array(overlap, np.float32))


def test_both_filters_then_multiplies() -> None:
    c = _cands([0.8, 0.6, 0.4], [0.9, 0.2, NAN], [0.9, 0.9, NAN])
    keep, score = apply_nis(c, PostprocessConfig(nis="both", nis_threshold=0.3))
    assert keep.tolist() == [True, False, True]
    assert score.tolist() == pytest.approx([0.72, 0.12, 0.4])  # NaN (no stage 1) keeps its score


@pytest.mark.parametrize("rule, expected_keep, expected_score", [
    ("zero", [True, False, True], [0.72, 0.0, 0.4]),
    ("one", [True, True, True], [0.72, 0.6, 0.4]),
    ("keep_best", [True, True, True], [0.72, 0.54, 0.4]),
])
def test_unmatched_rule(rule, expected_keep, expected_score) -> None:
    # pair 1's nearest stage-1 pair overlaps it by 0.3 < 0.5: no stage-1 pair describes it
    c = _cands([0.8, 0.6, 0.4], [0.9, 0.9, NAN], [0.5, 0.3, NAN])
    keep, _ = apply_nis(c, PostprocessConfig(nis="threshold", nis_threshold=0.5, unmatched=rule))
    assert keep.tolist() == expected_keep
    _, score = apply_nis(c, PostprocessConfig(nis="product", unmatched=rule))
    assert score.tolist() == pytest.approx(expected_score)
    assert unmatched_share(c, PostprocessConfig()) == pytest.approx(1 / 3)


def test_overlap_is_the_min_of_the_two_ious_of_the_matched_pair() -> None:
    h2 = torch.tensor([[[0, 0, 10, 10]]], dtype=torch.float)
    o2 = torch.tensor([[[20, 20, 30, 30]]], dtype=torch.float)
    h1 = torch.tensor([[[0, 0, 10, 10], [0, 0, 10, 5]]], dtype=torch.float)  # IoU_h 1 and 0.5
    o1 = torch.tensor([[[20, 20, 30, 25], [20, 20, 30, 30]]], dtype=torch.float)  # IoU_o 0.5 and 1
    idx, overlap = match_stage1_overlap(h2, o2, h1, o1)
    assert idx.tolist() == [[0]] and overlap[0].tolist() == pytest.approx([0.5])  # tie: the lower index
    col = {c: i for i, c in enumerate(HICO.object_ids)}
    s2 = outputs(HICO, [cxcywh(0, 0, 10, 10)], [cxcywh(20, 20, 30, 30)], [col[2]])
    s1 = {"pred_sub_boxes": torch.tensor([[cxcywh(0, 0, 10, 5)]]), "pred_obj_boxes": torch.tensor([[cxcywh(20, 20, 30, 30)]]),
          "pred_int_logits": torch.tensor([[0.0]]), "pred_part_scores": torch.full((1, 1, 6), 0.5)}
    c = build_candidates(s2, s1, torch.tensor([[100, 100]]), ["img"], HICO)
    assert np.allclose(c.overlap, 0.5)


def _tuning(rows):
    return NisTuning(rows[0][0], pd.DataFrame(rows, columns=["threshold", "objective"]))


def test_pick_nis_best_objective_ties_to_the_earlier_mode_and_smaller_tau() -> None:
    t = {"threshold": _tuning([(0.0, 0.40), (0.3, 0.45)]), "product": _tuning([(0.0, 0.50)]),
         "both": _tuning([(0.0, 0.50), (0.2, 0.50)])}
    assert pick_nis(t) == ("product", 0.0, 0.50)
    t["both"] = _tuning([(0.0, 0.48), (0.2, 0.55), (0.4, 0.55)])
    assert pick_nis(t) == ("both", 0.2, 0.55)


def test_tuning_per_mode_on_validation_tables() -> None:
    images, inst, pairs, _, _ = setup()
    from model.label_space import for_format
    from model.postprocess import OutputSpace
    space = OutputSpace.of(for_format("hico-det"))
    col = {c: i for i, c in enumerate(space.object_ids)}
    rows = [("a", H, 0.9, 0.9), ("c", shift(H, 100), 0.7, 0.8), ("d", H, 0.95, 0.1)]  # d: a confident FP
    ids, n = ("a", "b", "c", "d"), len(rows)
    cands = Candidates(ids, np.array([ids.index(r[0]) for r in rows]), np.zeros(n, np.int64), np.full(n, 76),
                       np.full(n, col[2]), np.array([r[1] for r in rows], np.float32), np.array([O] * n, np.float32),
                       np.array([r[2] for r in rows], np.float32), np.array([r[3] for r in rows], np.float32),
                       np.full((n, 6), 0.5, np.float32), np.ones(n, np.float32))
    args = (cands, space, PostprocessConfig(), images, inst, pairs, "test")
    grid = np.array([0.0, 0.5])
    tunings = {m: tune_nis_threshold(*args, thresholds=grid, mode=m) for m in ("threshold", "product", "both")}
    assert len(tunings["product"].table) == 1  # no tau to tune
    # product alone ranks the FP (0.95 x 0.1) last, so it already reaches the mAP that threshold 0.5 gets
    assert tunings["product"].table["objective"].iloc[0] == pytest.approx(tunings["threshold"].table["objective"].iloc[1])
    assert pick_nis(tunings)[0] == "threshold"  # equal objectives: the earlier mode
