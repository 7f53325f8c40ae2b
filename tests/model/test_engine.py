"""Training loop: learning-rate schedule, exact resume, non-finite loss, model selection,
gradient accumulation = one big batch, and two-process DDP (gloo) = one process with the same
global batch. Uses a tiny stand-in net so that it runs in seconds and without the real model."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from model import checkpoint as ckpt_io
from model.collate import Collate
from model.criterion import SetCriterion
from model.data import HOIDataset, build_records
from model.distributed import DistContext, init_from_env, shutdown
from model.engine import LoopConfig, NonFiniteLoss, Run, Trainer, lr_factor
from model.runtime_config import RuntimeConfig
from model.train_config import TrainConfig
from model.label_space import for_format
from model.transforms import AugmentConfig, make_transforms
from pipeline.validation import validate_stage1
from model.common.errors import UserError
from train_fixtures import TinyPairNet, make_dataset

CPU = DistContext(0, 1, 0, torch.device("cpu"))
LOOP = LoopConfig(TrainConfig(batch_size=4, warmup=2, lr=1e-3, lr_backbone=5e-4), iterations=6, lr_drop=4,
                  epoch_size=8, val_every=3, checkpoint_every=3, seed=0,
                  runtime=RuntimeConfig(log_every=1, progress=False))


def accumulating(loop: LoopConfig, accumulate: int) -> LoopConfig:
    """``loop`` with ``train.accumulate`` = ``accumulate``."""
    return replace(loop, train=loop.train.model_copy(update={"accumulate": accumulate}))


def make_run(tmp: Path, dropout: float = 0.1, with_val: bool = True, data_dir: Path | None = None) -> Run:
    data_dir = data_dir or tmp / "data"
    t = make_dataset(data_dir, n=10)
    ids = sorted(t["images"]["image_id"])
    recs, _ = build_records(data_dir, t["images"], t["instances"], t["pairs"], t["parts"], for_format("hico-det"), ids)
    aug = AugmentConfig(scales=[40], max_size=64, eval_size=40, eval_max_size=64)
    train = HOIDataset(recs[:8], make_transforms(aug, train=True))
    val = HOIDataset(recs[8:], make_transforms(aug, train=False)) if with_val else None
    torch.manual_seed(0)
    net = TinyPairNet(dropout=dropout)
    meta = {"stage": 1, "model_config": {"tiny": True}, "train_config": {"lr": 1e-3}, "labels": {"format": "hico-det"}}
    weights = np.where(np.arange(8) % 2 == 1, 3.0, 1.0)
    return Run(net=net, criterion=SetCriterion(1, 80, 117), train_set=train, weights=weights, collate=Collate(),
               best_path=tmp / "best.pt", last_path=tmp / "last.pt", meta=meta, val_set=val,
               validate=validate_stage1 if with_val else None, live_dir=tmp / "live")


def test_lr_factor_warmup_and_drop():
    assert lr_factor(0, warmup=4, drop=10) == 0.25
    assert lr_factor(3, warmup=4, drop=10) == 1.0
    assert lr_factor(9, warmup=4, drop=10) == 1.0
    assert lr_factor(10, warmup=4, drop=10) == pytest.approx(0.1)


class _Interrupt(Exception):
    pass


class _StopAt(Trainer):
    """Dies right before the given iteration, like a killed job."""

    stop_at = 5

    def step(self, model, batch):
        if self.state.iteration + 1 == self.stop_at:
            raise _Interrupt
        return super().step(model, batch)


@pytest.mark.parametrize("accumulate", [1, 2])
def test_resume_ends_with_the_same_weights(tmp_path, accumulate):
    loop = accumulating(LOOP, accumulate)
    full = Trainer(make_run(tmp_path / "a"), loop, CPU)
    summary = full.fit()
    assert summary["iterations"] == 6
    with pytest.raises(_Interrupt):
        _StopAt(make_run(tmp_path / "b"), loop, CPU).fit()
    assert ckpt_io.load(tmp_path / "b" / "last.pt")["iteration"] == 3  # mid-epoch checkpoint
    Trainer(make_run(tmp_path / "b"), loop, CPU).fit(resume=True)
    a, b = ckpt_io.load(tmp_path / "a" / "last.pt"), ckpt_io.load(tmp_path / "b" / "last.pt")
    assert b["iteration"] == 6
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert a["best"] == b["best"]
    # the dvclive curve of the resumed run has no duplicate steps
    tsv = tmp_path / "b" / "live" / "plots" / "metrics" / "train" / "loss.tsv"
    steps = pd.read_csv(tsv, sep="\t")["step"].tolist()
    assert steps == sorted(set(steps)) and steps[-1] == 6


def _losses(live: Path) -> pd.Series:
    return pd.read_csv(live / "plots" / "metrics" / "train" / "loss.tsv", sep="\t").set_index("step")["loss"]


def _assert_close(a: dict, b: dict, atol: float, rtol: float) -> None:
    """Two state dicts agree up to float tolerance, and training moved them from the start."""
    for k, v in a.items():
        assert torch.allclose(v, b[k], atol=atol, rtol=rtol), k
    torch.manual_seed(0)
    start = TinyPairNet(dropout=0.0).state_dict()
    assert any(not torch.equal(v, start[k]) for k, v in a.items())


def test_accumulation_matches_one_big_batch(tmp_path):
    """2 micro-batches of 2 images per step = batches of 4: the same weights and logged losses."""
    runs = {}
    for a in (1, 2):
        run = make_run(tmp_path / str(a), dropout=0.0, with_val=False)
        Trainer(run, accumulating(LOOP, a), CPU).fit()
        runs[a] = run
    one, two = (ckpt_io.load(runs[a].last_path) for a in (1, 2))
    assert two["iteration"] == 6 and two["sampler"] == one["sampler"]
    _assert_close(one["model"], two["model"], atol=1e-6, rtol=1e-5)
    pd.testing.assert_series_equal(_losses(runs[1].live_dir), _losses(runs[2].live_dir), rtol=1e-5)


def test_resume_may_change_accumulate(tmp_path):
    """Moving a run to fewer devices: resumed with 2 micro-batches per step, it ends where the
    uninterrupted run with 1 does (up to float rounding)."""
    full = make_run(tmp_path / "a", dropout=0.0)
    Trainer(full, LOOP, CPU).fit()
    with pytest.raises(_Interrupt):
        _StopAt(make_run(tmp_path / "b", dropout=0.0), LOOP, CPU).fit()
    resumed = make_run(tmp_path / "b", dropout=0.0)
    resumed.meta["train_config"] = {**resumed.meta["train_config"], "accumulate": 2}
    Trainer(resumed, accumulating(LOOP, 2), CPU).fit(resume=True)
    a, b = ckpt_io.load(full.last_path), ckpt_io.load(resumed.last_path)
    assert b["iteration"] == 6
    _assert_close(a["model"], b["model"], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("accumulate", [3, 8])
def test_accumulate_must_divide_the_batch(tmp_path, accumulate):
    message = f"batch_size 4 is not divisible by 1 processes x train.accumulate {accumulate}"
    with pytest.raises(UserError, match=message):
        Trainer(make_run(tmp_path), accumulating(LOOP, accumulate), CPU)


def test_checkpoints_are_self_describing(tmp_path):
    run = make_run(tmp_path)
    Trainer(run, LOOP, CPU).fit()
    best = ckpt_io.load(run.best_path)
    assert best["format"] == ckpt_io.FORMAT and best["stage"] == 1 and best["model_config"] == {"tiny": True}
    assert best["best"]["metric"] == "int_ap" and best["best"]["iteration"] in (3, 6)
    assert "optimizer" not in best and "rng" not in best
    last = ckpt_io.load(run.last_path)
    assert {"optimizer", "scheduler", "rng", "sampler", "iteration"} <= set(last) and "code_version" not in last
    assert last["sampler"] == {"epoch": 3, "start": 0}
    assert (tmp_path / "live" / "plots" / "metrics" / "val" / "int_ap.tsv").exists()


def test_resume_refuses_changed_settings(tmp_path):
    run = make_run(tmp_path)
    Trainer(run, replace(LOOP, iterations=3), CPU).fit()
    run2 = make_run(tmp_path)
    run2.meta["train_config"] = {"lr": 5e-4}
    with pytest.raises(ckpt_io.CheckpointError, match="lr"):
        Trainer(run2, LOOP, CPU).fit(resume=True)


class _NaNNet(TinyPairNet):
    calls = 0

    def forward(self, images, pixel_mask, part_masks=None):
        out = super().forward(images, pixel_mask, part_masks)
        if self.training:
            _NaNNet.calls += 1
            if _NaNNet.calls == 5:
                out["pred_obj_logits"] = out["pred_obj_logits"] * float("nan")
        return out


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    run = make_run(tmp_path, with_val=False)
    torch.manual_seed(0)
    run.net = _NaNNet()
    _NaNNet.calls = 0
    with pytest.raises(NonFiniteLoss, match="iteration 5.*last.pt \\(iteration 3\\)"):
        Trainer(run, LOOP, CPU).fit()
    last = ckpt_io.load(run.last_path)
    assert last["iteration"] == 3
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())


# --------------------------------------------------------------------------- DDP

DDP_LOOP = replace(LOOP, iterations=4, lr_drop=3, val_every=100, checkpoint_every=100)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, tmp: str, port: int, accumulate: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    ctx = init_from_env("cpu")
    try:
        run = make_run(Path(tmp) / f"rank{rank}", dropout=0.0, with_val=False)
        run.last_path = Path(tmp) / "ddp_last.pt"
        run.live_dir = None
        Trainer(run, accumulating(DDP_LOOP, accumulate), ctx).fit()
    finally:
        shutdown()


@pytest.mark.parametrize("accumulate", [1, 2])
def test_two_process_ddp_matches_one_process(tmp_path, accumulate):
    """Also with 2 micro-batches per rank (no_sync, counts over ranks and micro-batches)."""
    import torch.multiprocessing as mp

    single = make_run(tmp_path / "single", dropout=0.0, with_val=False)
    single.live_dir = None
    Trainer(single, DDP_LOOP, CPU).fit()
    mp.spawn(_ddp_worker, args=(2, str(tmp_path), _free_port(), accumulate), nprocs=2, join=True)
    a, b = ckpt_io.load(single.last_path), ckpt_io.load(tmp_path / "ddp_last.pt")
    assert b["iteration"] == 4 and len(b["rng"]) == 2
    _assert_close(a["model"], b["model"], atol=1e-5, rtol=1e-4)
