"""The ultralytics backend end to end on drawn images with a random-weights YOLO pose model:
schema, resuming after an interruption, torchrun-style rank sharding, stale and corrupt shards."""

from __future__ import annotations

from tests.conftest import save_random_pose_weights

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from pipeline import tables
from pipeline.pose_backends import yolo
from pipeline.pose_backends.shards import ShardStore

SIZES = [(160, 120), (120, 160), (200, 150), (96, 96), (150, 100)]  # (width, height)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A yolo11n-pose model with random (fixed) weights, saved once so every run uses the same."""
    return save_random_pose_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """Five drawn images (stick figures on plain backgrounds) and their images table."""
    root = tmp_path_factory.mktemp("dataset")
    (root / "images").mkdir()
    rows = []
    for i, (w, h) in enumerate(SIZES):
        img = Image.new("RGB", (w, h), (40 * i, 200 - 30 * i, 120))
        d = ImageDraw.Draw(img)
        cx = w // 2
        d.ellipse([cx - 8, 10, cx + 8, 26], fill=(20, 20, 20))
        d.line([cx, 26, cx, h * 0.6], fill=(20, 20, 20), width=4)
        d.line([cx - 20, 40, cx + 20, 40], fill=(20, 20, 20), width=4)
        d.line([cx, h * 0.6, cx - 15, h - 5], fill=(20, 20, 20), width=4)
        d.line([cx, h * 0.6, cx + 15, h - 5], fill=(20, 20, 20), width=4)
        name = f"img_{i:03d}"
        img.save(root / "images" / f"{name}.jpg")
        rows.append({"image_id": name, "split": "test", "file": f"images/{name}.jpg", "width": w, "height": h, "annotated": True})
    images = pd.DataFrame(rows).astype({"width": np.int32, "height": np.int32})
    tables.to_arrow(images, "images")
    return root, images


def config(weights: Path, **overrides: object) -> yolo.UltralyticsConfig:
    base = dict(weights=str(weights), device="cpu", batch=2, imgsz=64, conf=1e-6, max_det=3, shard_size=2, workers=1,
                trust_weights=True)  # our own random weights: not an official file
    return yolo.UltralyticsConfig(**{**base, **overrides})


def run(dataset, cfg, shards: Path, rank: int = 0, world: int = 1, limit: int | None = None):
    counts: Counter = Counter()
    root, images = dataset
    return yolo.run(images, root, cfg, shards, rank, world, limit, counts), counts


@pytest.fixture(scope="module")
def uninterrupted(weights, dataset, tmp_path_factory) -> pd.DataFrame:
    persons, counts = run(dataset, config(weights), tmp_path_factory.mktemp("full"))
    assert counts["images processed"] == len(SIZES)
    return persons


def test_schema_and_boxes(uninterrupted, dataset) -> None:
    persons = uninterrupted
    tables.to_arrow(persons, "persons")
    assert len(persons) > 0 and (persons["backend"] == "ultralytics").all()
    assert persons["keypoints"].notna().all() and persons["part_boxes"].isna().all()
    size = dataset[1].set_index("image_id").loc[persons["image_id"]]
    assert (persons["x1"] >= 0).all() and (persons["x2"].to_numpy() <= size["width"].to_numpy()).all()
    assert (persons["y2"].to_numpy() <= size["height"].to_numpy()).all()
    kp = np.stack(persons["keypoints"].to_numpy()).reshape(-1, 17, 3)
    assert ((kp[..., 2] >= 0) & (kp[..., 2] <= 1)).all()
    # images in table order, persons numbered within each image
    order = {i: k for k, i in enumerate(dataset[1]["image_id"])}
    assert persons["image_id"].map(order).is_monotonic_increasing
    assert (persons.groupby("image_id")["person"].apply(lambda p: list(p) == list(range(len(p))))).all()


def test_interrupted_run_resumes_and_equals_uninterrupted(weights, dataset, uninterrupted, tmp_path) -> None:
    cfg = config(weights)
    persons, counts = run(dataset, cfg, tmp_path, limit=2)
    assert persons is None and counts["images processed"] == 2
    store = ShardStore(tmp_path, cfg.settings())
    first = {p: p.stat().st_mtime_ns for p in store.covered()}
    assert store.done() == {"img_000", "img_001"}

    persons, counts = run(dataset, cfg, tmp_path)
    assert counts["images already in shards (skipped)"] == 2 and counts["images processed"] == 3
    assert all(p.stat().st_mtime_ns == t for p, t in first.items())  # old shards untouched
    pd.testing.assert_frame_equal(persons, uninterrupted)

    persons, counts = run(dataset, cfg, tmp_path)  # nothing left: merge only
    assert counts["images processed"] == 0
    pd.testing.assert_frame_equal(persons, uninterrupted)


def test_ranks_take_slices_and_last_one_merges(weights, dataset, uninterrupted, tmp_path) -> None:
    cfg = config(weights)
    persons, counts = run(dataset, cfg, tmp_path, rank=0, world=2)
    assert persons is None and counts["images processed"] == 3  # images 0, 2, 4
    assert ShardStore(tmp_path, cfg.settings()).done() == {"img_000", "img_002", "img_004"}
    persons, counts = run(dataset, cfg, tmp_path, rank=1, world=2)
    assert counts["images processed"] == 2
    pd.testing.assert_frame_equal(persons, uninterrupted, check_exact=False, rtol=1e-4)


def test_changed_settings_start_fresh_and_corrupt_shards_are_redone(weights, dataset, uninterrupted, tmp_path) -> None:
    old = config(weights, conf=0.5)
    run(dataset, old, tmp_path, limit=1)
    cfg = config(weights)
    store = ShardStore(tmp_path, cfg.settings())
    store.dir.mkdir(parents=True)
    (store.dir / "shard-000000000.parquet").write_bytes(b"garbage from elsewhere")
    persons, counts = run(dataset, cfg, tmp_path)
    assert counts["images processed"] == len(SIZES) and counts["stale shard folders removed"] == 1
    assert [p.name for p in tmp_path.iterdir()] == [store.fingerprint]
    pd.testing.assert_frame_equal(persons, uninterrupted)


def test_unreadable_image_is_counted_not_fatal(weights, dataset, tmp_path) -> None:
    root, images = dataset
    broken = images.copy()
    broken.loc[0, "file"] = "images/missing.jpg"
    counts: Counter = Counter()
    persons = yolo.run(broken, root, config(weights), tmp_path, 0, 1, None, counts)
    assert counts["unreadable images (no persons)"] == 1
    assert "img_000" not in set(persons["image_id"])


def test_resolve_weights() -> None:
    assert yolo.resolve_weights("yolo11x-pose.pt") == str(Path("models/pose/yolo11x-pose.pt"))
    assert yolo.resolve_weights("yolo11n-pose.yaml") == "yolo11n-pose.yaml"
    assert yolo.resolve_weights("some/dir/w.pt") == "some/dir/w.pt"
