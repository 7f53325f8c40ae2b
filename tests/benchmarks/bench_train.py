"""Training throughput (images/s) of one stage: the optimiser step (forward, matching, losses,
backward, clipping, AdamW) on pre-collated batches, and separately the data pipeline
(decode, augment, collate, part masks) through a DataLoader.

CPU, demo preset (the default run's settings, 224 px synthetic images -> 192 px):

    .venv/bin/python tests/benchmarks/bench_train.py --preset demo --threads 2

GPU, paper preset (ResNet-50, d 256, 6 + 6 layers, 64 queries) at 800 px with AMP on
HICO-DET-sized synthetic images (640 x 480 -> 1067 x 800), 4 images per step as one of the
paper's 4 GPUs sees:

    .venv/bin/python tests/benchmarks/bench_train.py --preset paper --device cuda --amp \\
        --image-size 640 480 --train-size 800 --max-size 1333 --batch 4 --iterations 30

The data pipeline alone (no model, no step), e.g. to profile it on CPU at 800 px:

    .venv/bin/python tests/benchmarks/bench_train.py --loader-only --threads 1 \\
        --image-size 640 480 --train-size 800 --max-size 1333 --batch 4 --workers 0

Prints one JSON line: images/s of the step and of the loader, seconds per step, peak GPU
memory, and the in-process milliseconds per image of ``__getitem__`` (decode + augment) and of
the collate (padding + part masks). The loader is timed over one sampler epoch of
``--loader-batches`` batches, so that every worker gets batches (an epoch of one batch keeps
one worker busy and times mostly the start of the others); ``loader_first_batch_s`` is the
wait for the first batch (worker start-up, once per epoch in training). Weights are random
(no pretrained files are needed: speed does not depend on them).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

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
from model.transforms import AugmentConfig, make_transforms  # noqa: E402
from train_fixtures import TinyPairNet, make_dataset  # noqa: E402


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=["demo", "paper"], default="demo")
    p.add_argument("--stage", type=int, choices=[1, 2], default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="autocast (CUDA only)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--iterations", type=int, default=20, help="timed steps (after 3 warm-up steps)")
    p.add_argument("--image-size", type=int, nargs=2, default=[224, 224], metavar=("W", "H"))
    p.add_argument("--train-size", type=int, default=192, help="shorter side after resize")
    p.add_argument("--max-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=1, help="DataLoader workers for the loader timing")
    p.add_argument("--loader-batches", type=int, default=0,
                   help="batches of the timed loader epoch (0: 4 per worker, at least 4)")
    p.add_argument("--jitter", type=float, default=0.0, help="colour jitter strength (paper: 0.4)")
    p.add_argument("--crop", type=float, default=0.0, help="probability of the crop branch (paper: 0.5)")
    p.add_argument("--loader-only", action="store_true", help="time the data pipeline only (no model step)")
    return p.parse_args()


def main() -> None:
    a = parse()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    t = make_dataset(tmp, n=max(2 * a.batch, 16), size=tuple(a.image_size))
    ids = sorted(t["images"]["image_id"])
    recs, _ = build_records(tmp, t["images"], t["instances"], t["pairs"], t["parts"], for_format("hico-det"), ids)
    aug = AugmentConfig(scales=[a.train_size], max_size=a.max_size, jitter=a.jitter, crop=a.crop)
    ds = HOIDataset(recs, make_transforms(aug, train=True))
    collate = Collate(with_part_masks=a.stage == 1)
    # in-process cost of one image: decode + augment, then padding + part masks
    start = time.perf_counter()
    samples = [ds[k % len(ds)] for k in range(4 * a.batch)]
    item_s = (time.perf_counter() - start) / len(samples)
    start = time.perf_counter()
    batches = [collate(samples[i * a.batch:(i + 1) * a.batch]) for i in range(4)]
    collate_s = (time.perf_counter() - start) / len(samples)
    cfg = preset(a.preset)
    torch.manual_seed(0)
    net = TinyPairNet(stage=a.stage) if a.loader_only else build(cfg, a.stage, 80, 117)[0]
    loader_batches = a.loader_batches or 4 * max(a.workers, 1)
    loop = LoopConfig(iterations=10**9, lr_drop=10**9, epoch_size=a.batch * loader_batches, batch_size=a.batch,
                      amp=a.amp, num_workers=a.workers)
    run = Run(net, build_criterion(cfg, a.stage, 80, 117), ds, np.ones(len(ds)), collate,
              tmp / "best.pt", tmp / "last.pt", meta={"stage": a.stage})
    trainer = Trainer(run, loop, DistContext(0, 1, 0, dev))
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step_s = None
    if not a.loader_only:
        for i in range(3):
            trainer.step(trainer.net, [batches[i % 4]])  # one micro-batch per step
        sync()
        start = time.perf_counter()
        for i in range(a.iterations):
            trainer.step(trainer.net, [batches[i % 4]])  # one micro-batch per step
        sync()
        step_s = (time.perf_counter() - start) / a.iterations
    loader = trainer._loader()
    trainer.sampler.set_epoch(0)
    start, n, first = time.perf_counter(), 0, None
    for batch in loader:
        first = first or time.perf_counter() - start
        n += len(batch.targets)
    load_ips = n / (time.perf_counter() - start)
    out = {"preset": a.preset, "stage": a.stage, "device": str(dev), "amp": a.amp, "threads": a.threads,
           "batch": a.batch, "input_hw": list(batches[0].images.shape[-2:]), "params": sum(p.numel() for p in net.parameters()),
           "step_s": step_s and round(step_s, 4), "step_images_per_s": step_s and round(a.batch / step_s, 1),
           "item_ms": round(1e3 * item_s, 2), "collate_ms_per_image": round(1e3 * collate_s, 2),
           "loader_images_per_s": round(load_ips, 1), "loader_workers": a.workers, "loader_images": n,
           "loader_first_batch_s": round(first, 3),
           "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if dev.type == "cuda" else None}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
