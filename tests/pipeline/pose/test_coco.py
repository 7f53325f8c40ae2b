"""The COCO keypoint-results backend: image-id mapping (int / stem / file, per-split files),
COCO's bbox field, category filtering."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from model.common.errors import UserError
from pipeline.pose_backends import coco
from pipeline.tables import to_arrow

IDS = ["HICO_train2015_00000007", "HICO_test2015_00000007", "HICO_test2015_00000012"]


def images_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "image_id": IDS, "split": ["train", "test", "test"], "file": [f"images/{i}.jpg" for i in IDS],
        "width": np.int32(320), "height": np.int32(240), "annotated": True,
    })


def entry(image_id: object, x: float, score: float = 0.9, width: float = 2, **extra: object) -> dict:
    kp = np.tile([[x, 100.0, 0.8]], (17, 1))
    kp[:, 0] += np.arange(17) * width  # x from x to x + 16 * width
    kp[:, 1] += np.arange(17) * 5  # y from 100 to 180
    return {"image_id": image_id, "category_id": 1, "keypoints": kp.reshape(-1).tolist(), "score": score, **extra}


def write(tmp_path, name: str, entries: list) -> str:
    (tmp_path / name).write_text(json.dumps(entries))
    return name


def test_int_ids_per_split_file(tmp_path) -> None:
    cfg = coco.CocoConfig.model_validate({"files": [
        {"path": write(tmp_path, "train.json", [entry(7, 10, bbox=[5, 6, 100, 200])]), "split": "train"},
        {"path": write(tmp_path, "test.json", [entry("7", 20), entry(12, 30), entry(99, 40),
                                              entry(12, 50, category_id=2)]), "split": "test"},
    ]})
    counts: Counter = Counter()
    persons = coco.read(images_frame(), tmp_path, cfg, counts)
    to_arrow(persons, "persons")
    assert persons["image_id"].tolist() == IDS
    assert persons["backend"].unique().tolist() == ["coco"]
    first, second = persons.iloc[0], persons.iloc[1]
    assert (first.x1, first.y1, first.x2, first.y2) == (5, 6, 105, 206)  # COCO bbox x, y, w, h
    assert (second.x1, second.y1, second.x2, second.y2) == (20, 100, 52, 180)  # keypoints' extent
    assert counts["skipped: unknown image id"] == 1 and counts["skipped: category is not person"] == 1


def test_box_from_keypoint_extent_needs_area(tmp_path) -> None:
    # keypoints on a vertical line have no width: such persons are dropped and counted
    cfg = coco.CocoConfig.model_validate({"files": [{"path": write(tmp_path, "r.json", [entry(12, 30, width=0)]), "split": "test"}]})
    counts: Counter = Counter()
    assert len(coco.read(images_frame(), tmp_path, cfg, counts)) == 0
    assert counts["dropped: empty box after clipping to the image"] == 1


def test_stem_and_file_modes(tmp_path) -> None:
    e1 = entry("HICO_test2015_00000012", 30, bbox=[0, 0, 50, 50])
    e2 = entry("HICO_train2015_00000007.jpg", 30, bbox=[0, 0, 50, 50])
    for mode in ("stem", "file"):
        cfg = coco.CocoConfig.model_validate({"files": [{"path": write(tmp_path, "r.json", [e1, e2])}], "image_id": mode})
        persons = coco.read(images_frame(), tmp_path, cfg, Counter())
        assert sorted(persons["image_id"]) == ["HICO_test2015_00000012", "HICO_train2015_00000007"]


def test_ambiguous_int_ids_without_split(tmp_path) -> None:
    cfg = coco.CocoConfig.model_validate({"files": [{"path": write(tmp_path, "r.json", [entry(7, 10)])}]})
    with pytest.raises(UserError, match="split"):
        coco.read(images_frame(), tmp_path, cfg, Counter())
