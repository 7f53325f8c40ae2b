"""Shared test settings: one torch thread (the CI machine has 2 cores), offline ultralytics,
the repository root as the working directory's reference, and the test folders on sys.path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

# Tests are mirrored on the code's folders (tests/model/, tests/pipeline/, tests/interop/,
# tests/metrics/, tests/cli/); the shared fixture modules at tests/ (train_fixtures,
# metrics_fixtures, ...) and test modules that reuse another's helpers are imported by name,
# so tests/ and every test folder are on sys.path whatever is collected first.
TEST_FOLDERS = [TESTS, *sorted(d for d in TESTS.rglob("*") if d.is_dir() and d.name not in ("__pycache__", "benchmarks"))]
for folder in reversed(TEST_FOLDERS):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

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
