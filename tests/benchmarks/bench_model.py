"""Network size and speed: parameter counts per module of the paper configuration (R50,
HICO-DET: 80 objects, 117 verbs, 64 queries) next to the released code's (official-code-notes
§1.7), and forward + backward time per image on CPU for R50 at 800 px and the demo preset.

    .venv/bin/python tests/benchmarks/bench_model.py [--threads 2] [--skip-r50] [--demo-px 256 192]

Timing: stage-1 network (full ablation), training mode, loss = sum of the outputs, batch 1 for
R50 (800 x 1200) and batch 16 for the demo preset; best of a few steps after one warm-up.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from model.bpm import InteractivenessNet, VerbNet  # noqa: E402
from model.config import preset  # noqa: E402
from model.masks import rasterize_part_masks  # noqa: E402

# official-code-notes §1.7 (stage-1 HICO model as released)
RELEASED = {
    "backbone (stem + layer1 frozen)": 9_408 + 212_992,
    "backbone layer2-4": 1_212_416 + 7_077_888 + 14_942_208,
    "input_proj": 524_544,
    "encoder": 7_890_432,
    "box decoder": 9_473_024,
    "query_embed + heads": 16_384 + 20_817 + 2 * 132_612,
    "interactiveness": 1_579_264 + 3 * 1_578_752 + 68_876 + 1_536 + 1_536 + 514,
    "total": 48_033_319,
}


def count(module: torch.nn.Module, trainable: bool | None = None) -> int:
    return sum(p.numel() for p in module.parameters() if trainable is None or p.requires_grad == trainable)


def parameter_table() -> None:
    net1 = InteractivenessNet(preset("paper"), 80, 117)
    net2 = VerbNet(preset("paper"), 80, 117)
    body = net1.extractor.backbone.body
    det = net1.detector
    rows = {
        "backbone (stem + layer1 frozen)": count(body, trainable=False),
        "backbone layer2-4": count(body, trainable=True),
        "input_proj": count(net1.extractor.input_proj),
        "encoder": count(net1.extractor.encoder),
        "box decoder": count(det.decoder),
        "query_embed + heads": count(det) - count(det.decoder),
        "interactiveness": count(net1.interactiveness),
        "total": count(net1),
    }
    print(f"{'module (stage 1, R50, HICO-DET)':36s} {'ours':>12s} {'released':>12s}")
    for name, n in rows.items():
        print(f"{name:36s} {n:12,d} {RELEASED[name]:12,d}")
    inter = net1.interactiveness
    for name, sub in [("  h (one-layer decoder)", inter.importance), ("  h's FFN -> p_part", inter.importance_head),
                      ("  f_part (6 FFNs, eq. 7)", inter.part_queries), ("  f_dec2 (3 masked layers)", inter.decoder),
                      ("  f_int", inter.int_head)]:
        print(f"{name:36s} {count(sub):12,d}")
    print(f"{'stage 2: verb classifier':36s} {count(net2.verb):12,d}")
    print(f"{'stage 2: total':36s} {count(net2):12,d}")
    print(f"{'trainable stage 1 / stage 2':36s} {count(net1, True):12,d} {count(net2, True):12,d}")


def step_time(net: torch.nn.Module, batch: int, hw: tuple[int, int], steps: int) -> float:
    """Best seconds per image of forward + backward."""
    images = torch.randn(batch, 3, *hw)
    mask = torch.zeros(batch, *hw, dtype=torch.bool)
    boxes = torch.rand(3 * batch, 10, 4) * torch.tensor([hw[1], hw[0]] * 2) * 0.5
    boxes[..., 2:] += boxes[..., :2]
    parts = rasterize_part_masks(boxes, torch.arange(batch).repeat(3), batch, (-(-hw[0] // 32), -(-hw[1] // 32)))
    net.train()
    best = float("inf")
    for i in range(steps + 1):
        t = time.perf_counter()
        out = net(images, mask, parts)
        loss = sum(v.sum() for k, v in out.items() if torch.is_tensor(v) and v.is_floating_point())
        loss.backward()
        net.zero_grad(set_to_none=True)
        if i:  # the first step warms up allocators
            best = min(best, time.perf_counter() - t)
    return best / batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-r50", action="store_true")
    ap.add_argument("--demo-px", type=int, nargs="*", default=[256, 192])
    ap.add_argument("--steps", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    parameter_table()
    print(f"\nforward + backward per image, CPU, {args.threads} threads, stage 1 (full):")
    if not args.skip_r50:
        net = InteractivenessNet(preset("paper"), 80, 117)
        print(f"  R50 paper preset, 800 x 1200, batch 1: {step_time(net, 1, (800, 1200), args.steps):.2f} s")
    for px in args.demo_px:
        net = InteractivenessNet(preset("demo"), 80, 117)
        per = step_time(net, 16, (px, px), args.steps)
        print(f"  demo preset, {px} x {px}, batch 16: {per * 1e3:.1f} ms ({1 / per:.0f} images/s)")


if __name__ == "__main__":
    main()
