"""Speed of the ultralytics pose backend on CPU: images per second for the smallest and largest
YOLO11 pose models, built from their .yaml (random weights: speed only, no download).

    .venv/bin/python tests/benchmarks/bench_pose.py [--images 8] [--batch 4] [--imgsz 640]
        [--threads 1] [--models yolo11n-pose.yaml yolo11x-pose.yaml] [--device cpu]

Runs the whole backend (image decoding threads, batched inference, shard writing, merge) on
drawn 640 x 480 JPEGs in a temporary folder; model building is timed apart;
the first batch (warm-up) is included in the throughput.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.pose_backends import yolo  # noqa: E402


def draw_images(root: Path, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    rows = []
    for i in range(n):
        img = Image.new("RGB", (640, 480), tuple(int(v) for v in rng.integers(0, 255, 3)))
        d = ImageDraw.Draw(img)
        for _ in range(3):
            x, y = rng.integers(50, 590), rng.integers(40, 300)
            d.ellipse([x - 10, y - 10, x + 10, y + 10], fill=(0, 0, 0))
            d.line([x, y, x, y + 120], fill=(0, 0, 0), width=6)
        name = f"bench_{i:05d}"
        img.save(root / "images" / f"{name}.jpg")
        rows.append({"image_id": name, "split": "test", "file": f"images/{name}.jpg",
                     "width": 640, "height": 480, "annotated": True})
    return pd.DataFrame(rows)


def bench(model: str, images: pd.DataFrame, root: Path, args: argparse.Namespace) -> tuple[float, float]:
    """(seconds to build the model, seconds of the whole backend run including that)."""
    cfg = yolo.UltralyticsConfig(weights=model, device=args.device, batch=args.batch, imgsz=args.imgsz,
                                 shard_size=max(args.batch, 64))
    start = time.perf_counter()
    yolo.load_model(cfg)
    load = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as shards:
        start = time.perf_counter()
        persons = yolo.run(images, root, cfg, Path(shards), 0, 1, None, Counter())
        elapsed = time.perf_counter() - start
    assert persons is not None
    return load, elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", nargs="+", default=["yolo11n-pose.yaml", "yolo11x-pose.yaml"])
    args = ap.parse_args()
    yolo.set_ultralytics_env()
    import torch

    torch.set_num_threads(args.threads)
    yolo.load_model(yolo.UltralyticsConfig(weights=args.models[0], device=args.device))  # imports, not timed
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images = draw_images(root, args.images)
        for model in args.models:
            load, t = bench(model, images, root, args)
            print(f"{model}: {args.images} images ({args.imgsz} px, batch {args.batch}, {args.device}, "
                  f"{args.threads} thread(s)) in {t:.1f} s incl. {load:.1f} s model build = "
                  f"{args.images / (t - load):.2f} images/s after the build")


if __name__ == "__main__":
    main()
