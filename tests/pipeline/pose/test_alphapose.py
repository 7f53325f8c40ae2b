"""The AlphaPose backend: every keypoint layout, score recovery, missing boxes, clipping, and
the records it skips."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from model.common.errors import UserError
from pipeline.pose_backends import alphapose
from pipeline.pose_backends.persons import LAYOUTS
from pipeline.tables import to_arrow

IDS = ["HICO_train2015_00000001", "HICO_test2015_00000001"]


def images_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "image_id": IDS, "split": ["train", "test"],
        "file": ["images/train2015/HICO_train2015_00000001.jpg", "images/test2015/HICO_test2015_00000001.jpg"],
        "width": np.int32(640), "height": np.int32(480), "annotated": True,
    })


def body17(seed: int) -> np.ndarray:
    """A COCO-17 pose [17, 3] inside a 640 x 480 image."""
    rng = np.random.default_rng(seed)
    kp = np.empty((17, 3))
    kp[:, 0] = rng.uniform(100, 300, 17)
    kp[:, 1] = rng.uniform(50, 400, 17)
    kp[:, 2] = rng.uniform(0.05, 0.95, 17)
    return kp


def entry(kp17: np.ndarray, k: int, image: str, det: float = 0.7, box: list | None = None) -> dict:
    """An AlphaPose result entry with K points: the COCO-17 body first, then other points."""
    extra = np.tile([[9999.0, -9999.0, 1.0]], (k - 17, 1))  # feet/face/hands: must be ignored
    kp = np.concatenate([kp17, extra])
    score = det + kp[:, 2].mean() + 1.25 * kp[:, 2].max()  # AlphaPose's writer
    out = {"image_id": image, "category_id": 1, "keypoints": kp.reshape(-1).tolist(), "score": score}
    if box is not None:
        out["box"] = box
    return out


@pytest.mark.parametrize("k", [17, 26, 133, 136])
def test_each_layout_maps_to_coco17(tmp_path, k: int) -> None:
    kp = body17(k)
    entries = [entry(kp, k, "HICO_train2015_00000001.jpg", det=0.6, box=[10, 20, 300, 400])]
    (tmp_path / "alphapose-results.json").write_text(json.dumps(entries))
    counts: Counter = Counter()
    persons = alphapose.read(images_frame(), tmp_path, alphapose.AlphaPoseConfig(), counts)
    to_arrow(persons, "persons")
    assert len(persons) == 1
    row = persons.iloc[0]
    np.testing.assert_allclose(row.keypoints.reshape(17, 3), kp, rtol=1e-6)
    assert (row.x1, row.y1, row.x2, row.y2) == (10, 20, 310, 420)  # [x, y, w, h] -> x1y1x2y2
    assert row.score == pytest.approx(0.6, abs=1e-5)  # detector score recovered
    assert counts[f"layout {LAYOUTS[k]}"] == 1


def test_score_as_is_and_box_from_keypoints(tmp_path) -> None:
    kp = body17(1)
    kp[3, 2] = 0.0  # an unseen joint far away must not widen the box
    kp[3, :2] = (600, 10)
    e = entry(kp, 17, "HICO_test2015_00000001.jpg")
    e["score"] = 0.42
    (tmp_path / "alphapose-results.json").write_text(json.dumps([e]))
    cfg = alphapose.AlphaPoseConfig(score="as_is")
    row = alphapose.read(images_frame(), tmp_path, cfg, Counter()).iloc[0]
    seen = np.delete(kp, 3, axis=0)
    expected = [seen[:, 0].min(), seen[:, 1].min(), seen[:, 0].max(), seen[:, 1].max()]
    np.testing.assert_allclose([row.x1, row.y1, row.x2, row.y2], expected, rtol=1e-6)
    assert row.score == pytest.approx(0.42)


def test_boxes_clipped_and_bad_records_counted(tmp_path) -> None:
    kp = body17(2)
    entries = [
        entry(kp, 17, "HICO_train2015_00000001.jpg", box=[-50, -10, 800, 600]),  # clipped to the image
        entry(kp, 17, "HICO_train2015_00000001.jpg", box=[700, 10, 50, 50]),  # fully outside -> dropped
        entry(kp, 17, "HICO_train2015_99999999.jpg"),  # unknown image
        {**entry(kp, 17, "HICO_train2015_00000001.jpg"), "keypoints": [1.0] * 30},  # 10 points
        {**entry(kp, 17, "HICO_train2015_00000001.jpg"), "category_id": 3},  # not a person
        {"image_id": "HICO_train2015_00000001.jpg"},  # no keypoints
        {**entry(kp, 17, "HICO_train2015_00000001.jpg"), "keypoints": ["a"] * 51},
    ]
    (tmp_path / "alphapose-results.json").write_text(json.dumps(entries))
    counts: Counter = Counter()
    persons = alphapose.read(images_frame(), tmp_path, alphapose.AlphaPoseConfig(), counts)
    assert len(persons) == 1
    assert tuple(persons.iloc[0][["x1", "y1", "x2", "y2"]]) == (0, 0, 640, 480)
    assert counts == Counter({
        "layout coco17": 2, "dropped: empty box after clipping to the image": 1,
        "skipped: unknown image id": 1, "bad record: keypoint count not 17, 26, 133 or 136": 1,
        "skipped: category is not person": 1, "bad record: not an entry with image_id and keypoints": 1,
        "bad record: keypoints not numeric": 1,
    })


def test_missing_or_malformed_file(tmp_path) -> None:
    with pytest.raises(UserError, match="not found"):
        alphapose.read(images_frame(), tmp_path, alphapose.AlphaPoseConfig(), Counter())
    (tmp_path / "alphapose-results.json").write_text('{"not": "a list"}')
    with pytest.raises(UserError, match="expected a JSON list"):
        alphapose.read(images_frame(), tmp_path, alphapose.AlphaPoseConfig(), Counter())


def test_running_alphapose_needs_the_package(tmp_path, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "alphapose", None)  # not importable, even if installed
    cfg = alphapose.AlphaPoseConfig(cfg="configs/x.yaml", checkpoint="x.pth")
    with pytest.raises(UserError, match="AlphaPose"):
        alphapose.read(images_frame(), tmp_path, cfg, Counter())
