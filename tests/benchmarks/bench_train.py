"""Training throughput (images/s) of one stage: the optimiser step (forward, matching, losses,
backward, clipping, AdamW) on pre-collated batches for several code paths in the same run, and
separately the data pipeline (decode, augment, collate, part masks) through a DataLoader.

Paths (``--paths``, comma-separated): ``ref`` = the per-image matching and losses and the
per-step read-back as before issue #18 (tests/reference_criterion.py), ``fast`` = the batched
step of model/engine.py (losses read back every 10 steps), with optional ``+cl``
(channels_last), ``+fused`` (fused AdamW) and ``+compile`` (torch.compile of the network).
Every path starts from the same seeded weights.

CPU, demo preset (the default run's settings, 224 px synthetic images -> 192 px):

    .venv/bin/python tests/benchmarks/bench_train.py --preset demo --threads 2

GPU, paper preset at 800 px with AMP on HICO-DET-sized synthetic JPEGs (640 x 480 -> 1067 x 800,
widths jittered so that batches are padded), batch 16, with a profile of three steps per path:

    .venv/bin/python tests/benchmarks/bench_train.py --preset paper --device cuda --amp --jpeg \\
        --image-size 640 480 --train-size 800 --max-size 1333 --size-jitter 0.25 --batch 16 \\
        --paths ref,fast,fast+cl+fused --profile --workers 12

tests/benchmarks/gpu_bench.sh runs the whole set on the GPU machine. ``--profile`` counts, per
step, the aten ops (~ kernel launches), ``.item()``-style read-backs (aten::_local_scalar_dense),
host-to-device copies and stream synchronisations, and the GPU busy time; ``--explain`` counts
torch.compile graph breaks of the network. Prints one JSON line (also written to ``--json-out``).
The loader is timed over one sampler epoch of ``--loader-batches`` batches; ``item_ms`` /
``decode_ms`` / ``collate_ms_per_image`` are in-process CPU costs per image, and
``loader_projection_images_per_s`` = workers / (item + collate seconds per image), the rate the
workers could reach if nothing else limited them. Images travel from the workers as uint8 and are
normalised by ``Batch.to`` on the device; ``--compare-float`` also times the float32 transport used
before (normalised in the workers) and prints the ratio. Weights are random (speed does not depend on them).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from model.build import build  # noqa: E402
from model.collate import Collate  # noqa: E402
from model.config import preset  # noqa: E402
from model.criterion import build_criterion  # noqa: E402
from model.data import HOIDataset, build_records  # noqa: E402
from model.distributed import DistContext  # noqa: E402
from model.engine import LoopConfig, Run, Trainer  # noqa: E402
from model.label_space import for_format  # noqa: E402
from model.runtime_config import RuntimeConfig  # noqa: E402
from model.train_config import TrainConfig  # noqa: E402
from model.transforms import AugmentConfig, make_transforms, normalize_images  # noqa: E402
from reference_criterion import ReferenceCriterion, reference_step  # noqa: E402
from train_fixtures import TinyPairNet, make_dataset  # noqa: E402

LOG_EVERY = 10  # read-backs of the fast path, as train.log_every
REGIONS = ("forward", "criterion", "backward", "optimiser", "readback")  # engine.py's profiler labels


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=["demo", "paper"], default="demo")
    p.add_argument("--stage", type=int, choices=[1, 2], default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="autocast (CUDA only)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--iterations", type=int, default=20, help="timed steps per path (after 3 warm-up steps)")
    p.add_argument("--paths", default="ref,fast", help="comma-separated: ref, fast[+cl][+fused][+compile]")
    p.add_argument("--image-size", type=int, nargs=2, default=[224, 224], metavar=("W", "H"))
    p.add_argument("--size-jitter", type=float, default=0.0,
                   help="image widths drawn in [(1-j) W, W] (the first of every batch at W): padded batches "
                        "of one fixed shape, as HICO-DET's mixed aspect ratios")
    p.add_argument("--jpeg", action="store_true", help="noisy JPEG files (q 90) instead of flat PNGs, like photos")
    p.add_argument("--train-size", type=int, default=192, help="shorter side after resize")
    p.add_argument("--max-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=1, help="DataLoader workers for the loader timing")
    p.add_argument("--loader-batches", type=int, default=0,
                   help="batches of the timed loader epoch (0: 4 per worker, at least 4)")
    p.add_argument("--jitter", type=float, default=0.0, help="colour jitter strength (paper: 0.4)")
    p.add_argument("--crop", type=float, default=0.0, help="probability of the crop branch (paper: 0.5)")
    p.add_argument("--loader-only", action="store_true", help="time the data pipeline only (no model step)")
    p.add_argument("--compare-float", action="store_true",
                   help="also time the loader with float32 images normalised in the workers (before uint8 transport)")
    p.add_argument("--skip-loader", action="store_true", help="no DataLoader timing")
    p.add_argument("--profile", action="store_true", help="torch.profiler counts of 3 steps per path")
    p.add_argument("--explain", action="store_true", help="torch._dynamo.explain graph breaks of the network")
    p.add_argument("--json-out", type=Path, help="also write the JSON result here")
    return p.parse_args()


def make_data(a: argparse.Namespace, tmp: Path) -> tuple[HOIDataset, list]:
    """The synthetic dataset (optionally noisy JPEGs of jittered widths) and its records."""
    n = max(4 * a.batch, 16)
    t = make_dataset(tmp, n=n, size=tuple(a.image_size))
    rng = np.random.default_rng(0)
    if a.jpeg or a.size_jitter:
        files = []
        for i, row in t["images"].iterrows():
            path = tmp / row["file"]
            arr = np.asarray(Image.open(path).convert("RGB")).astype(np.float32)
            if a.jpeg:
                arr = np.clip(arr + rng.normal(0, 20, arr.shape), 0, 255)
            w = row["width"] if i % a.batch == 0 else int(row["width"] * rng.uniform(1 - a.size_jitter, 1))
            img = Image.fromarray(arr.astype(np.uint8)).crop((0, 0, w, row["height"]))
            out = path.with_suffix(".jpg" if a.jpeg else ".png")
            img.save(out, quality=90) if a.jpeg else img.save(out)
            files.append((str(out.relative_to(tmp)), w))
        t["images"]["file"] = [f for f, _ in files]
        t["images"]["width"] = [w for _, w in files]
        for key in ("instances", "parts"):  # keep every box inside the narrower images
            frame = t[key]
            right = frame["image_id"].map(dict(zip(t["images"]["image_id"], t["images"]["width"]))).astype(np.float32)
            frame["x1"] = np.minimum(frame["x1"], right - 2)
            frame["x2"] = np.minimum(frame["x2"], right - 1)
    ids = sorted(t["images"]["image_id"])
    recs, _ = build_records(tmp, t["images"], t["instances"], t["pairs"], t["parts"], for_format("hico-det"), ids)
    aug = AugmentConfig(scales=[a.train_size], max_size=a.max_size, jitter=a.jitter, crop=a.crop)
    return HOIDataset(recs, make_transforms(aug, train=True)), recs


def per_image_costs(a: argparse.Namespace, ds: HOIDataset, recs: list, collate: Collate) -> tuple[dict, list]:
    """In-process CPU milliseconds per image (decode alone, decode + augment, collate) and 4 batches."""
    k = 4 * a.batch
    start = time.perf_counter()
    for i in range(k):
        with Image.open(recs[i % len(recs)].path) as im:
            im.convert("RGB")
    decode_s = (time.perf_counter() - start) / k
    start = time.perf_counter()
    samples = [ds[i % len(ds)] for i in range(k)]
    item_s = (time.perf_counter() - start) / k
    start = time.perf_counter()
    batches = [collate(samples[i * a.batch:(i + 1) * a.batch]) for i in range(4)]
    collate_s = (time.perf_counter() - start) / k
    costs = {"decode_ms": round(1e3 * decode_s, 2), "item_ms": round(1e3 * item_s, 2),
             "collate_ms_per_image": round(1e3 * collate_s, 2),
             "loader_projection_images_per_s": round(a.workers / (item_s + collate_s), 1)}
    return costs, batches


def make_trainer(a, cfg, path: str, ds, collate, tmp: Path, dev: torch.device) -> Trainer:
    torch.manual_seed(0)
    net = build(cfg, a.stage, for_format("hico-det"))[0]
    flags = set(path.split("+")[1:])
    runtime = RuntimeConfig(channels_last="cl" in flags, fused_optimizer="fused" in flags, compile="compile" in flags,
                            log_every=LOG_EVERY)
    loop = LoopConfig(TrainConfig(batch_size=a.batch, amp=a.amp, lr=1e-4, lr_backbone=1e-5), iterations=10**9,
                      lr_drop=10**9, epoch_size=a.batch, val_every=250, checkpoint_every=250, runtime=runtime)
    run = Run(net, build_criterion(a.stage, 80, 117), ds, np.ones(len(ds)), collate,
              tmp / "best.pt", tmp / "last.pt", meta={"stage": a.stage})
    return Trainer(run, loop, DistContext(0, 1, 0, dev))


def stepper(trainer: Trainer, path: str, cfg, stage: int):
    """A function running one training step of ``path`` on a batch."""
    if path == "ref":
        crit = ReferenceCriterion(stage, 80, 117).to(trainer.ctx.device)
        return lambda batch, i: reference_step(trainer, trainer.net, [batch], crit)
    model = torch.compile(trainer.net) if trainer.cfg.compile else trainer.net

    def run(batch, i):
        trainer.state.iteration = i + 1
        trainer._pending.append((i + 1, ["loss"], trainer.step(model, [batch])["loss"][None]))
        if (i + 1) % LOG_EVERY == 0:
            trainer.flush()
    return run


def profile_counts(step, batches: list, dev: torch.device, n: int = 3) -> dict:
    """Per-step counts from torch.profiler over ``n`` steps."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for i in range(n):
            step(batches[i % len(batches)], 10_000 + i)
        if dev.type == "cuda":
            torch.cuda.synchronize()
    events = list(prof.events())
    regions = [e for e in events if e.name in REGIONS and e.device_type == torch.autograd.DeviceType.CPU]
    counts, gpu_us = Counter(), 0.0
    for e in events:
        counts[("all", e.name)] += 1
        for r in regions:  # the labelled part of the step (engine.py's record_function) it ran in
            if e is not r and e.thread == r.thread and r.time_range.start <= e.time_range.start <= r.time_range.end:
                counts[(r.name, e.name)] += 1
        if dev.type == "cuda" and e.device_type == torch.autograd.DeviceType.CUDA:
            gpu_us += getattr(e, "self_device_time_total", 0.0)

    def per(region: str, *names: str) -> float:
        return round(sum(v for (r, k), v in counts.items() if r == region and any(s in k for s in names)) / n, 1)

    out = {}
    for region in ("all", *REGIONS):
        row = {"aten_ops": per(region, "aten::"), "item_readbacks": per(region, "aten::_local_scalar_dense"),
               "copies": per(region, "aten::copy_")}
        if dev.type == "cuda":
            row.update(h2d_pageable=per(region, "Memcpy HtoD (Pageable"), h2d_pinned=per(region, "Memcpy HtoD (Pinned"),
                       stream_syncs=per(region, "cudaStreamSynchronize"), memcpy_calls=per(region, "cudaMemcpyAsync"),
                       kernel_launches=per(region, "cudaLaunchKernel", "cuLaunchKernel"))
        out[region] = row
    if dev.type == "cuda":
        out["gpu_busy_ms"] = round(gpu_us / 1e3 / n, 1)
        out["all"]["h2d"] = per("all", "Memcpy HtoD")
        out["all"]["d2h"] = per("all", "Memcpy DtoH")
    return out


def sync_count(step, batch, dev: torch.device) -> int | None:
    """Synchronising CUDA calls of one step (torch.cuda.set_sync_debug_mode warnings)."""
    if dev.type != "cuda":
        return None
    import warnings

    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step(batch, 20_000)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    return sum("synchroniz" in str(w.message) for w in caught)


def time_path(a, cfg, path, ds, collate, batches, tmp, dev) -> dict:
    trainer = make_trainer(a, cfg, path, ds, collate, tmp, dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    own = [b.pin_memory() if (dev.type == "cuda" and path != "ref") else b for b in batches]
    step = stepper(trainer, path, cfg, a.stage)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for i in range(3):
        step(own[i % 4], i)
    sync()
    warm_s = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(a.iterations):
        step(own[i % 4], 3 + i)
    if path != "ref":
        trainer.flush()
    sync()
    step_s = (time.perf_counter() - start) / a.iterations
    out = {"step_s": round(step_s, 4), "images_per_s": round(a.batch / step_s, 1), "warmup_s": round(warm_s, 1)}
    if dev.type == "cuda":
        out["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    if a.profile:
        out["profile_per_step"] = profile_counts(step, own, dev)
        out["syncs_per_step"] = sync_count(step, own[0], dev)
    del trainer
    return out


def explain(cfg, stage: int, batch, dev: torch.device) -> dict:
    torch.manual_seed(0)
    net = build(cfg, stage, for_format("hico-det"))[0].to(dev)
    b = batch.to(dev)
    e = torch._dynamo.explain(net)(b.images, b.pixel_mask, b.part_masks)
    return {"graphs": e.graph_count, "graph_breaks": e.graph_break_count,
            "reasons": sorted({str(r.reason).splitlines()[0][:160] for r in e.break_reasons})}


class FloatTransport(torch.utils.data.Dataset):
    """The data path before uint8 transport, for comparison in the same run: every image
    normalised to float32 in the worker (as ToTensor did), so 4 bytes a value are padded,
    sent, pinned and copied; Batch.to then leaves the float batch as it is."""

    def __init__(self, ds: HOIDataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, key):
        x, target = self.ds[key]
        return normalize_images(x[None])[0], target


def loader_rate(a, ds, collate, tmp, dev) -> dict:
    """Images/s of the training DataLoader: the current uint8 transport and, with
    ``--compare-float``, the float transport before it, timed one after the other."""
    out = _loader_rate(a, ds, collate, tmp, dev)
    if a.compare_float:
        before = _loader_rate(a, FloatTransport(ds), collate, tmp, dev)
        out["loader_float_images_per_s"] = before["loader_images_per_s"]
        out["loader_speedup_uint8_vs_float"] = round(out["loader_images_per_s"] / before["loader_images_per_s"], 2)
    return out


def _loader_rate(a, ds, collate, tmp, dev) -> dict:
    cfg = preset(a.preset)
    loader_batches = a.loader_batches or 4 * max(a.workers, 1)
    loop = LoopConfig(TrainConfig(batch_size=a.batch, lr=1e-4, lr_backbone=1e-5), iterations=10**9, lr_drop=10**9,
                      epoch_size=a.batch * loader_batches, val_every=250, checkpoint_every=250,
                      runtime=RuntimeConfig(num_workers=a.workers))
    run = Run(TinyPairNet(stage=a.stage), build_criterion(a.stage, 80, 117), ds, np.ones(len(ds)), collate,
              tmp / "best.pt", tmp / "last.pt", meta={"stage": a.stage})
    trainer = Trainer(run, loop, DistContext(0, 1, 0, dev))
    loader = trainer._loader()
    trainer.sampler.set_epoch(0)
    start, n, first = time.perf_counter(), 0, None
    for batch in loader:
        first = first or time.perf_counter() - start
        n += len(batch.targets)
    return {"loader_images_per_s": round(n / (time.perf_counter() - start), 1), "loader_workers": a.workers,
            "loader_images": n, "loader_first_batch_s": round(first, 3), "loader_pinned": dev.type == "cuda"}


def main() -> None:
    a = parse()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    ds, recs = make_data(a, tmp)
    collate = Collate(with_part_masks=a.stage == 1)
    costs, batches = per_image_costs(a, ds, recs, collate)
    cfg = preset(a.preset)
    out = {"preset": a.preset, "stage": a.stage, "device": str(dev), "amp": a.amp, "threads": a.threads,
           "batch": a.batch, "input_hw": list(batches[0].images.shape[-2:]), "torch": torch.__version__, **costs}
    if not a.loader_only:
        out["paths"] = {}
        for path in [p for p in a.paths.split(",") if p]:
            out["paths"][path] = time_path(a, cfg, path, ds, collate, batches, tmp, dev)
            print(path, json.dumps(out["paths"][path]), file=sys.stderr, flush=True)
        ref, fast = out["paths"].get("ref"), out["paths"].get("fast")
        if ref and fast:
            out["speedup_fast_vs_ref"] = round(ref["step_s"] / fast["step_s"], 2)
    if a.explain:
        out["explain"] = explain(cfg, a.stage, batches[0], dev)
    if not a.skip_loader:
        out.update(loader_rate(a, ds, collate, tmp, dev))
    line = json.dumps(out)
    print(line)
    if a.json_out:
        a.json_out.parent.mkdir(parents=True, exist_ok=True)
        a.json_out.write_text(line + "\n")


if __name__ == "__main__":
    main()
