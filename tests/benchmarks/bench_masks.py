"""Mask construction: vectorised (model/masks.py) vs a per-query Python loop in the style of the
released code (``get_mask_from_query``: one index_fill per query and box), in one run.

    .venv/bin/python tests/benchmarks/bench_masks.py [--batch 4] [--queries 64] [--grid 25 42]

Both build, for every query, the human and object box masks (eq. 2) and the three merged layer
masks (eqs. 3-6) from the same part masks, boxes and part selection, on one CPU thread; the
script checks that they agree and prints the time of each and the ratio (target >= 50x).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from model.masks import box_masks, ensure_visible, merged_layer_masks, select_parts  # noqa: E402


def vectorised(part: torch.Tensor, sub: torch.Tensor, obj: torch.Tensor, selected: torch.Tensor,
               valid_hw: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    hum, objm = box_masks(torch.stack([sub, obj], 1), valid_hw, grid).unbind(1)  # [B, Q, HW] each
    layers = merged_layer_masks(part.flatten(2), hum, objm, selected)  # [3, B, Q, HW]
    valid = torch.ones(part.shape[0], grid[0] * grid[1], dtype=torch.bool)
    return ensure_visible(layers, valid)


def _box_mask_loop(box: torch.Tensor, size: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """One query's box -> hidden mask [h, w] (True = masked), the released code's steps
    (notes §1.5.2): tensor arithmetic per coordinate, floor-divide by 32, clip the far ends,
    start all-masked and index_fill the visible rows and columns."""
    cx, cy, w, h = box.unbind(-1)
    img_h, img_w = size.unbind(-1)
    w1 = ((cx - w / 2) * img_w // 32).long()
    h1 = ((cy - h / 2) * img_h // 32).long()
    w2 = ((cx + w / 2) * img_w // 32).long().clamp(max=grid[1] - 1)
    h2 = ((cy + h / 2) * img_h // 32).long().clamp(max=grid[0] - 1)
    w1, h1 = w1.clamp(min=0), h1.clamp(min=0)
    rows = torch.ones(grid, dtype=torch.bool).index_fill(0, torch.arange(int(h1), int(h2) + 1), False)
    cols = torch.ones(grid, dtype=torch.bool).index_fill(1, torch.arange(int(w1), int(w2) + 1), False)
    return rows | cols


def naive(part: torch.Tensor, sub: torch.Tensor, obj: torch.Tensor, selected: torch.Tensor,
          valid_hw: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Per-query loop over batch x queries (visible polarity out, as ``vectorised``)."""
    b_, q_ = sub.shape[:2]
    out = torch.zeros(3, b_, q_, *grid, dtype=torch.bool)
    for b in range(b_):
        all_parts = part[b].any(0)
        for q in range(q_):
            hum = ~_box_mask_loop(sub[b, q], valid_hw[b], grid)
            o = ~_box_mask_loop(obj[b, q], valid_hw[b], grid)
            sel = part[b][selected[b, q]].any(0)
            out[0, b, q] = (all_parts & ~hum) | sel | o
            out[1, b, q] = sel | o
            out[2, b, q] = (sel & hum) | o
            for j in range(3):
                if not out[j, b, q].any():
                    out[j, b, q] = True
    return out.flatten(-2)


def timed(fn, *args, repeats: int) -> tuple[float, torch.Tensor]:
    """Best of ``repeats`` wall times (the CPU is shared; the minimum is the least disturbed)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - t)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--queries", type=int, default=64)
    ap.add_argument("--grid", type=int, nargs=2, default=[25, 42])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    grid = tuple(args.grid)
    b, q = args.batch, args.queries
    part = torch.rand(b, 6, *grid, generator=g) < 0.05
    cxcy = torch.rand(b, q, 2, 2, generator=g) * 0.8 + 0.1
    wh = torch.rand(b, q, 2, 2, generator=g) * 0.3 + 0.02
    sub, obj = torch.cat([cxcy[:, :, 0], wh[:, :, 0]], -1), torch.cat([cxcy[:, :, 1], wh[:, :, 1]], -1)
    selected = select_parts(torch.rand(b, q, 6, generator=g), "fraction")
    valid_hw = torch.tensor([[grid[0] * 32, grid[1] * 32]] * b)
    t_vec, m_vec = timed(vectorised, part, sub, obj, selected, valid_hw, grid, repeats=10 * args.repeats)
    t_loop, m_loop = timed(naive, part, sub, obj, selected, valid_hw, grid, repeats=args.repeats)
    agree = torch.equal(m_vec, m_loop)
    print(f"B={b} Nq={q} grid={grid[0]}x{grid[1]}: vectorised {t_vec * 1e3:.2f} ms, "
          f"per-query loop {t_loop * 1e3:.1f} ms, ratio {t_loop / t_vec:.0f}x, outputs agree: {agree}")
    if not agree:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
