"""Stage ``pose``: the images table -> the ``persons`` table (one row per person: box, score,
COCO-17 keypoints, and part boxes when the source supplies them), plus a summary of what was
read, written, skipped and why.

Backends (params ``pose.backend``):

- ``ultralytics``: YOLO pose inference on the images (batched, CPU/CUDA, resumable from shards,
  shardable under ``torchrun``): :mod:`pipeline.pose_backends.yolo`;
- ``alphapose``: AlphaPose's ``alphapose-results.json`` (17/26/133/136 keypoints), the default
  for the built-in synthetic dataset: :mod:`pipeline.pose_backends.alphapose`;
- ``coco``: COCO keypoint-result files: :mod:`pipeline.pose_backends.coco`;
- ``official``: the paper authors' part-box pickles: :mod:`pipeline.pose_backends.official`.

Paths of result files are relative to the dataset root (params ``dataset.root``).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Literal

import pandas as pd

from pipeline import tables
from pipeline.params import DEFAULT_PARAMS, DatasetConfig, Section, section
from pipeline.pose_backends import alphapose, coco, official, yolo
from pipeline.pose_backends.alphapose import AlphaPoseConfig
from pipeline.pose_backends.coco import CocoConfig
from pipeline.pose_backends.official import OfficialConfig
from pipeline.pose_backends.yolo import UltralyticsConfig

Backend = Literal["ultralytics", "alphapose", "coco", "official"]
PARAMS = ("dataset", "pose")  # the params keys this stage reads (dvc.yaml lists exactly these)


class PoseConfig(Section):
    """params ``pose``: the backend and each backend's own settings."""

    backend: Backend = "alphapose"
    # field names equal the backend modules' names: annotate with the imported classes
    ultralytics: UltralyticsConfig = UltralyticsConfig()
    alphapose: AlphaPoseConfig = AlphaPoseConfig()
    coco: CocoConfig = CocoConfig()
    official: OfficialConfig = OfficialConfig()


def dist_env() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) outside torchrun."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def detect(
    images: pd.DataFrame, root: Path, cfg: PoseConfig, shards: Path,
    rank: int = 0, world: int = 1, limit: int | None = None,
) -> tuple[pd.DataFrame | None, Counter]:
    """Persons of ``images`` with the configured backend, and counts by reason.

    Returns None for the table while the ultralytics backend has images left (other ranks not
    finished, or ``limit`` reached); the file backends are read by rank 0 only.
    """
    counts: Counter = Counter()
    if cfg.backend == "ultralytics":
        return yolo.run(images, root, cfg.ultralytics, shards, rank, world, limit, counts), counts
    if rank != 0:
        return None, counts
    reader = {"alphapose": alphapose.read, "coco": coco.read, "official": official.read}[cfg.backend]
    return reader(images, root, getattr(cfg, cfg.backend), counts), counts


def summary(images: pd.DataFrame, persons: pd.DataFrame, counts: Counter, backend: str) -> dict[str, int]:
    """Flat counts for the report: images, persons, and every skip/drop reason."""
    out = {
        "images": len(images),
        "images_with_persons": int(persons["image_id"].nunique()),
        "persons": len(persons),
        "persons_with_keypoints": int(persons["keypoints"].notna().sum()),
        "persons_with_part_boxes": int(persons["part_boxes"].notna().sum()),
    }
    for reason, n in sorted(counts.items()):
        out[_key(reason)] = int(n)
    return out


def _key(reason: str) -> str:
    return re.sub(r"[^a-z0-9/]+", "_", reason.lower().replace(": ", "/")).strip("_")


def run(
    params_path: str | Path, images_path: str | Path, out_path: str | Path,
    shards_path: str | Path, report_path: str | Path, limit: int | None = None,
) -> dict[str, int] | None:
    """Stage entry point: read params (dataset, pose) and the images table, detect persons,
    write the persons table and the summary JSON; print what happened."""
    dataset = section("dataset", DatasetConfig, params_path, keys=PARAMS)
    cfg = section("pose", PoseConfig, params_path, keys=PARAMS)
    images = tables.read(images_path, "images")
    rank, world = dist_env()
    persons, counts = detect(images, Path(dataset.root), cfg, Path(shards_path), rank, world, limit)
    tag = f"pose[{cfg.backend}]" + (f" rank {rank}/{world}" if world > 1 else "")
    if persons is None and cfg.backend != "ultralytics":
        print(f"{tag}: the {cfg.backend} backend reads its files on rank 0 only; nothing to do here")
        return None
    if persons is None:
        left = counts.get("images not yet covered (other ranks or --limit)", 0)
        print(f"{tag}: shards written to {shards_path}; {left} image(s) not covered yet "
              "(other ranks still running, or --limit reached): rerun to continue")
        return None
    tables.write(persons, "persons", out_path)
    result = summary(images, persons, counts, cfg.backend)
    tables.write_json(result, report_path)
    print(f"{tag}: {len(images)} images from {images_path} -> {len(persons)} persons in {out_path}")
    for key, value in result.items():
        print(f"  {key}: {value}")
    return result


def main() -> None:
    """The DVC stage's command (``python -m pipeline.stage pose``): default paths. The shards
    folder is a resumable cache of the ultralytics backend (fingerprinted by its settings), not
    a DVC output: the file backends write none."""
    run(DEFAULT_PARAMS, Path("data/processed/images.parquet"), Path("data/processed/persons.parquet"),
        Path("data/interim/pose_shards"), Path("reports/pose.json"))
