"""``data export-hico-mat`` on a HICO-DET-sized case: 9,658 test images (9,546 with detections)
x 100 triplets = 954,600 detections -> the 80 detections_XX.mat files (600 x 9,658 cells).

    .venv/bin/python tests/benchmarks/bench_export_hico.py [--images 9546] [--per-image 100] [--out DIR]

Prints the wall time of the export (reading the predictions table excluded) and the total
size of the files; ``--check`` reads them back (scipy.io.loadmat) and compares.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_eval import synthetic  # noqa: E402
from model.common import labels  # noqa: E402
from pipeline.interop import export_hico  # noqa: E402


def frame(n_images: int, per_image: int) -> tuple[pd.DataFrame, list[str]]:
    det, _ = synthetic(n_images, per_image)
    ids = [f"HICO_test2015_{k:08d}" for k in range(1, 9659)]  # 9,658 listed, the last 112 without detections
    lab = labels.hico()
    verb = np.array([lab.hoi_verb[h] for h in det.hoi])
    obj = np.array([lab.hoi_object[h] for h in det.hoi])
    cols = {"image_id": np.asarray(ids, dtype=object)[det.image], "query": np.zeros(len(det.image), np.int32)}
    cols |= {c: det.human[:, k].astype(np.float32) for k, c in enumerate(("hx1", "hy1", "hx2", "hy2"))}
    cols |= {c: det.obj[:, k].astype(np.float32) for k, c in enumerate(("ox1", "oy1", "ox2", "oy2"))}
    cols |= {"category_id": obj.astype(np.int32), "verb_id": verb.astype(np.int32), "hoi_id": det.hoi.astype(np.int32),
             "score": det.score.astype(np.float32)}
    return pd.DataFrame(cols), ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=9546)
    ap.add_argument("--per-image", type=int, default=100)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    df, ids = frame(args.images, args.per_image)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        t0 = time.perf_counter()
        counts = export_hico.export(df, ids, out)
        dt = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in out.glob("detections_*.mat"))
        print(f"export-hico-mat: {len(df)} detections, {counts['rows_written']} written, {len(ids)} images: "
              f"{dt:6.2f} s, {size / 1e6:.1f} MB")
        if args.check:
            back = export_hico.read_mats(out, ids)
            print(f"read back: {len(back)} rows (expected {counts['rows_written']})")


if __name__ == "__main__":
    main()
