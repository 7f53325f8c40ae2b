"""Speed of the parts conversion (HAKE part boxes from COCO-17 keypoints), on one CPU core.

    .venv/bin/python tests/benchmarks/bench_parts.py [--persons 1000000] [--table 200000]

Times (1) the vectorised rule on arrays, ``person_parts`` ([N, 17, 3] -> [N, 10, 4], target:
one million persons in under 10 s), and (2) the stage's own path for --table persons: read
persons.parquet, the rule, build and write the ten-rows-per-person parts.parquet.
Random poses with scores spread so that every rule and fallback path is taken.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline import tables  # noqa: E402
from pipeline.parts import PartsConfig, PersonArrays, compute, person_parts  # noqa: E402


def random_persons(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    kp = np.empty((n, 17, 3), np.float32)
    kp[..., 0] = rng.uniform(0, 640, (n, 17))
    kp[..., 1] = rng.uniform(0, 480, (n, 17))
    kp[..., 2] = rng.uniform(0, 1, (n, 17))
    body = np.stack([kp[..., 0].min(1), kp[..., 1].min(1), kp[..., 0].max(1), kp[..., 1].max(1)], 1)
    return kp, body


def bench_arrays(n: int, repeat: int) -> list[float]:
    kp, body = random_persons(n)
    given = np.full((n, 10, 4), np.nan, np.float32)
    w, h = np.full(n, 640, np.float32), np.full(n, 480, np.float32)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        person_parts(kp, given, body, w, h, PartsConfig())
        times.append(time.perf_counter() - start)
    return times


def bench_table(n: int) -> float:
    """Seconds of the stage's own path: read persons.parquet, rule, write parts.parquet."""
    kp, body = random_persons(n, seed=1)
    ids = np.array([f"img_{i // 4:08d}" for i in range(n)], dtype=object)
    persons = pd.DataFrame({
        "image_id": ids, "person": np.arange(n, dtype=np.int32) % 4,
        "x1": body[:, 0], "y1": body[:, 1], "x2": body[:, 2], "y2": body[:, 3],
        "score": np.float32(0.9), "keypoints": list(kp.reshape(n, 51)), "part_boxes": None, "backend": "bench",
    })
    uniq = pd.unique(ids)
    images = pd.DataFrame({"image_id": uniq, "split": "train", "file": uniq, "width": np.int32(640),
                           "height": np.int32(480), "annotated": True})
    with tempfile.TemporaryDirectory() as tmp:
        tables.write(persons, "persons", Path(tmp) / "persons.parquet")
        del persons
        start = time.perf_counter()
        arrays = PersonArrays.from_arrow(tables.read_arrow(Path(tmp) / "persons.parquet", "persons"))
        table, _ = compute(arrays, images, PartsConfig())
        tables.write_arrow(table, "parts", Path(tmp) / "parts.parquet")
        return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--table", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    times = bench_arrays(args.persons, args.repeat)
    t = times[0]
    print(f"rule on arrays: {args.persons:,} persons, first run {t:.2f} s = {args.persons / t:,.0f} persons/s, "
          f"best of {len(times)} {min(times):.2f} s "
          f"(target: 1,000,000 in < 10 s: {'ok' if t * 1e6 / args.persons < 10 else 'MISSED'})")
    if args.table:
        t = bench_table(args.table)
        print(f"stage (read persons.parquet, rule, write parts.parquet): {args.table:,} persons in "
              f"{t:.2f} s = {args.table / t:,.0f} persons/s")


if __name__ == "__main__":
    main()
