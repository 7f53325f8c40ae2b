"""The V-COCO route on the synthetic V-COCO data: synth -> ingest (QPIC files) -> predictions
built from the ingested ground truth -> role AP against the official evaluation files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import ingest, params, synth
from pipeline.evaluate_core import EvaluateConfig, evaluate


def perfect_predictions(instances: pd.DataFrame, pairs: pd.DataFrame, images: pd.DataFrame) -> pd.DataFrame:
    test = pairs[pairs["image_id"].isin(images.loc[images["split"] == "test", "image_id"])].reset_index(drop=True)
    inst = instances.set_index(["image_id", "index"])
    hum = inst.loc[list(zip(test["image_id"], test["subject"]))][["x1", "y1", "x2", "y2"]].to_numpy()
    has_obj = test["object"].notna().to_numpy()
    obj = np.full((len(test), 4), np.nan)
    keys = list(zip(test["image_id"][has_obj], test["object"][has_obj].astype(int)))
    obj[has_obj] = inst.loc[keys][["x1", "y1", "x2", "y2"]].to_numpy()
    cat = pd.array([None] * len(test), dtype="Int32")
    cat[has_obj] = inst.loc[keys]["category_id"].to_numpy()
    return pd.DataFrame({"image_id": test["image_id"], "query": np.arange(len(test)),
                         "hx1": hum[:, 0], "hy1": hum[:, 1], "hx2": hum[:, 2], "hy2": hum[:, 3],
                         "ox1": obj[:, 0], "oy1": obj[:, 1], "ox2": obj[:, 2], "oy2": obj[:, 3],
                         "category_id": cat, "verb_id": test["verb_id"], "hoi_id": None, "role": test["role"],
                         "score": 1.0, "interactiveness": 1.0,
                         "part_scores": [np.full(6, 0.5, np.float32)] * len(test)})


def test_ground_truth_detections_score_one_on_synthetic_vcoco(tmp_path):
    synth.generate(synth.tiny_config(), 0, tmp_path)
    root = tmp_path / "v-coco"
    result = ingest.ingest(params.DatasetConfig(name="synthetic", format="v-coco", root=root), ingest.IngestConfig())
    pred = perfect_predictions(result.instances, result.pairs, result.images)
    assert len(pred) > 0
    metrics, _ = evaluate(pred, result.images, result.instances, result.pairs, None, "v-coco", EvaluateConfig(),
                          dataset_root=root)
    assert metrics["vcoco/scenario2/role_map_25"] == pytest.approx(1.0)
    assert metrics["vcoco/scenario1/role_map_25"] == pytest.approx(1.0)
