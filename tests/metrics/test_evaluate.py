"""evaluate(): tables in, flat metrics + curves out; report writing; NIS tuning."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from metrics_fixtures import H, O, gt_tables, hoi, predictions, shift
from model.label_space import for_format
from model.postprocess import Candidates, OutputSpace, PostprocessConfig
from pipeline.evaluate_core import EvaluateConfig, evaluate, tune_nis_threshold
from pipeline.metrics.report import text_report, write_outputs

RIDE, HOLD = hoi("ride", "bicycle"), hoi("hold", "bicycle")


def setup():
    gt = [("a", H, O, RIDE), ("b", H, O, HOLD), ("c", shift(H, 100), O, RIDE)]
    images, inst, pairs = gt_tables(gt, ["a", "b", "c", "d"])
    preds = predictions([("a", H, O, RIDE, 0.9), ("b", H, O, HOLD, 0.8), ("c", shift(H, 100), O, RIDE, 0.7),
                         ("d", H, O, RIDE, 0.95)])
    preds["interactiveness"] = [0.9, 0.8, 0.2, 0.1]
    scenes = pd.DataFrame({"image_id": ["a", "b", "c"], "crowded": [True, False, True], "tiny": False, "occluded": False})
    return images, inst, pairs, preds, scenes


def test_evaluate_returns_self_explaining_metrics_and_curves():
    images, inst, pairs, preds, scenes = setup()
    metrics, curves = evaluate(preds, images, inst, pairs, scenes, "hico-det", EvaluateConfig())
    assert metrics["hico/default/full_map"] == pytest.approx((2 / 3 + 1) / 2)  # ride: FP (d), TP, TP
    assert metrics["hico/known_object/full_map"] == 1.0  # d shows no bicycle
    assert metrics["hico/known_object/from_image_labels"] == 0.0
    assert metrics["interactiveness/ap"] == 1.0  # d, the only non-interactive pair, ranks last
    assert metrics["interactiveness/crowded/ap"] == 1.0 and metrics["interactiveness/not_crowded/n_gt"] == 1
    assert "interactiveness/part/hand/ap" in metrics and metrics["n_images"] == 4
    pr = curves["hico_default_pr"]
    assert list(pr.columns) == ["recall", "precision"] and len(pr) == 101
    assert "hico_known_object_per_class" in curves and "interactiveness_crowded_pr" in curves


def test_text_report_and_written_outputs(tmp_path):
    images, inst, pairs, preds, scenes = setup()
    metrics, curves = evaluate(preds, images, inst, pairs, scenes, "hico-det", EvaluateConfig())
    text = text_report(metrics)
    assert "Known Object" in text and "approximated" in text and "crowded" in text
    metrics["nan_metric"] = float("nan")
    written = write_outputs(metrics, curves, tmp_path / "metrics.json", tmp_path / "plots", tmp_path / "report.txt")
    assert json.loads((tmp_path / "metrics.json").read_text())["nan_metric"] is None
    assert (tmp_path / "plots" / "hico_default_pr.csv").exists() and len(written) == len(curves) + 2


def test_missing_scene_column_is_a_user_error():
    from model.common.errors import UserError

    images, inst, pairs, preds, scenes = setup()
    with pytest.raises(UserError, match="tiny"):
        evaluate(preds, images, inst, pairs, scenes.drop(columns="tiny"), "hico-det", EvaluateConfig())


def test_tune_nis_threshold_picks_the_tau_that_removes_false_positives():
    images, inst, pairs, _, _ = setup()
    space = OutputSpace.of(for_format("hico-det"))
    col = {c: i for i, c in enumerate(space.object_ids)}
    ride = 76  # verb index of "ride" (verb id 77)
    rows = [("a", H, 0.9, 0.9), ("c", shift(H, 100), 0.7, 0.8), ("d", H, 0.95, 0.1)]  # d: a confident FP
    n = len(rows)
    ids = ("a", "b", "c", "d")
    cands = Candidates(ids, np.array([ids.index(r[0]) for r in rows]), np.zeros(n, np.int64), np.full(n, ride),
                       np.full(n, col[2]), np.array([r[1] for r in rows], np.float32), np.array([O] * n, np.float32),
                       np.array([r[2] for r in rows], np.float32), np.array([r[3] for r in rows], np.float32),
                       np.full((n, 6), 0.5, np.float32))
    tuned = tune_nis_threshold(cands, space, PostprocessConfig(), images, inst, pairs, "test", thresholds=np.array([0.0, 0.5, 0.85]))
    assert tuned.threshold == 0.5  # 0.0 keeps the FP, 0.85 loses c's TP
    f1 = tune_nis_threshold(cands, space, PostprocessConfig(), images, inst, pairs, "test", objective="interactiveness_f1")
    assert 0.1 < f1.threshold <= 0.8  # keeps a and c, drops d (F1 0.8); ties: the smaller tau
    assert f1.table["objective"].max() == pytest.approx(0.8)
