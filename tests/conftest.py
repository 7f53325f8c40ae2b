"""Shared test settings: one torch thread (the CI machine has 2 cores), offline ultralytics,
and the repository root as the working directory's reference."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")
os.environ.setdefault("YOLO_CONFIG_DIR", str(ROOT / ".yolo"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a hard dependency, but keep collection alive
    pass


def save_random_pose_weights(folder: Path) -> Path:
    """A yolo11n-pose model with random, seeded weights saved under ``folder`` (no download)."""
    from model.torchvision_fallback import ensure_torchvision
    from pipeline.pose_backends import yolo

    yolo.set_ultralytics_env()
    ensure_torchvision()
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    path = folder / "random-pose.pt"
    YOLO("yolo11n-pose.yaml").save(path)
    return path
