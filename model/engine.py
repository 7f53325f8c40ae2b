"""The training loop of both stages: AdamW with a backbone learning-rate group, linear warm-up,
one step drop, gradient clipping, AMP on CUDA only, torchrun DDP, gradient accumulation,
validation on a split carved from the training set with model selection, dvclive logging, exact
resume.

The schedule is counted in iterations (optimizer steps of one global batch); an "epoch" is one
draw of the weighted sampler (``epoch_size`` samples). With ``accumulate`` = A, each of the K
processes runs A micro-batches of batch_size / (K x A) images per iteration and sums their
gradients (DDP all-reduces them only after the last one); the losses of every micro-batch are
divided by counts taken over the whole step (model/criterion.py), so the step equals one step on
the global batch.

A run interrupted after a checkpoint and resumed with ``resume=True`` ends with the same weights
as an uninterrupted one: the data of a step is a function of (seed, iteration) only (see
model/sampler.py), and the checkpoint holds optimiser, scheduler, scaler and every RNG state.

The host stays out of the step (issue #18): batches arrive in pinned memory and are copied
without waiting, the losses stay on the device and are read back (all-reduced, checked for
NaN/inf and logged) only every ``log_every`` iterations and before every validation or
checkpoint, so a non-finite loss stops the run at the next such point, naming the iteration
where it first appeared, and no checkpoint is ever written after it.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.profiler import record_function
from torch.utils.data import DataLoader

from model import checkpoint as ckpt_io
from model.collate import Batch
from model.criterion import SetCriterion
from model.packed_targets import pack
from model.distributed import DistContext, all_mean, barrier, gather_objects
from model.sampler import WeightedEpochSampler
from model.train_log import TrainLog
from model.common.errors import UserError
from model.runtime_config import RuntimeConfig
from model.train_config import TrainConfig

Validate = Callable[[nn.Module, DataLoader, torch.device], dict[str, float]]
# settings that may change between an interrupted run and its resumption; ``accumulate`` only
# splits the same global batch differently (like the number of processes, which changes with it
# when a run moves to fewer GPUs): the samples and the schedule stay, float rounding may differ
RESUME_FREE = frozenset({"num_workers", "log_every", "threads", "progress", "device", "accumulate",
                         "compile", "channels_last", "fused_optimizer"})


class NonFiniteLoss(UserError):
    """The loss became NaN/inf: training stops, the last good checkpoint is kept."""


@dataclass(frozen=True)
class LoopConfig:
    """One stage's loop: the ``train`` and ``runtime`` params as given (not copied: no setting
    has a second default here) and what the stage resolves from them."""

    train: TrainConfig  # batch, accumulation, optimiser, warm-up, clipping, amp
    iterations: int  # the stage's schedule resolved to iterations
    lr_drop: int  # iteration at which every learning rate is multiplied by 0.1
    epoch_size: int  # samples per sampler epoch (a multiple of train.batch_size)
    val_every: int  # iterations (train.val_every, 0 resolved to one epoch)
    checkpoint_every: int  # iterations (train.checkpoint_every, 0 resolved to one epoch)
    metric: str = "int_ap"  # the validation metric that selects the model (higher is better)
    seed: int = 0
    runtime: RuntimeConfig = RuntimeConfig()  # workers, logging, progress, GPU speed switches

    def summary(self) -> dict:
        """The flat settings stored in the run's summary (reports/train_stageN.json)."""
        t, r = self.train, self.runtime
        return {"iterations": self.iterations, "lr_drop": self.lr_drop, "epoch_size": self.epoch_size,
                "batch_size": t.batch_size, "accumulate": t.accumulate, "warmup": t.warmup, "lr": t.lr,
                "lr_backbone": t.lr_backbone, "weight_decay": t.weight_decay, "clip_max_norm": t.clip_max_norm,
                "amp": t.amp, "seed": self.seed, "num_workers": r.num_workers, "val_every": self.val_every,
                "checkpoint_every": self.checkpoint_every, "log_every": r.log_every, "metric": self.metric,
                "find_unused_parameters": r.find_unused_parameters, "progress": r.progress, "compile": r.compile,
                "channels_last": r.channels_last, "fused_optimizer": r.fused_optimizer}


@dataclass
class Run:
    """The objects one training run works on (built by pipeline/train.py or a test)."""

    net: nn.Module
    criterion: SetCriterion
    train_set: torch.utils.data.Dataset
    weights: np.ndarray  # sampling weight of each training image
    collate: Callable[[list], Batch]
    best_path: Path  # the selected model (no resume state)
    last_path: Path  # the latest state, for --resume
    meta: dict  # stage, configs, labels, dataset: copied into every checkpoint
    val_set: torch.utils.data.Dataset | None = None
    validate: Validate | None = None
    live_dir: Path | None = None


@dataclass
class State:
    iteration: int = 0
    best: dict = field(default_factory=lambda: {"metric": None, "value": None, "iteration": None})


def lr_factor(it: int, warmup: int, drop: int) -> float:
    """Multiplier of the base learning rates at iteration ``it`` (0-based)."""
    return min(1.0, (it + 1) / max(warmup, 1)) * (0.1 if it >= drop else 1.0)


def micro_batch_size(batch_size: int, world_size: int, accumulate: int) -> int:
    """Images per forward pass on one process: the global batch split over ``world_size``
    processes and ``accumulate`` micro-batches; a one-line error when it does not divide."""
    if accumulate < 1 or batch_size % (world_size * accumulate):
        raise UserError(f"train.batch_size {batch_size} is not divisible by {world_size} processes x "
                        f"train.accumulate {accumulate} micro-batches; set accumulate to a divisor of "
                        f"batch_size / processes")
    return batch_size // (world_size * accumulate)


def grouped(items: Iterable, n: int) -> Iterator[list]:
    """Consecutive groups of ``n`` items; an incomplete tail is dropped (the epoch divides)."""
    it = iter(items)
    while len(group := list(itertools.islice(it, n))) == n:
        yield group


def make_optimizer(net: nn.Module, cfg: LoopConfig) -> torch.optim.AdamW:
    """AdamW with two groups: parameters whose name contains ``backbone`` at ``lr_backbone``
    (as DETR), all other trainable ones at ``lr``."""
    named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in named if "backbone" not in n], "lr": cfg.train.lr, "name": "main"},
        {"params": [p for n, p in named if "backbone" in n], "lr": cfg.train.lr_backbone, "name": "backbone"},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=cfg.train.weight_decay,
                             fused=True if cfg.runtime.fused_optimizer else None)


def amp_settings(cfg: LoopConfig, device: torch.device) -> tuple[torch.dtype | None, torch.amp.GradScaler | None]:
    """(autocast dtype or None, grad scaler or None): bf16 where the GPU has it, else fp16 with
    loss scaling; full precision on CPU."""
    if not (cfg.train.amp and device.type == "cuda"):
        return None, None
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, None
    return torch.float16, torch.amp.GradScaler("cuda")


class Trainer:
    """One training run. ``fit()`` runs it to the end of the schedule and returns a summary."""

    def __init__(self, run: Run, cfg: LoopConfig, ctx: DistContext) -> None:
        self.run, self.cfg, self.ctx = run, cfg, ctx
        self.net = run.net.to(ctx.device)
        if cfg.runtime.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.criterion = run.criterion.to(ctx.device)
        self.opt = make_optimizer(self.net, cfg)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, partial(lr_factor, warmup=cfg.train.warmup, drop=cfg.lr_drop))
        self.amp_dtype, self.scaler = amp_settings(cfg, ctx.device)
        if cfg.epoch_size % cfg.train.batch_size:
            raise UserError(f"train.batch_size {cfg.train.batch_size} must divide the epoch size {cfg.epoch_size}")
        self.micro = micro_batch_size(cfg.train.batch_size, ctx.world_size, cfg.train.accumulate)
        self.per_rank = cfg.train.batch_size // ctx.world_size  # samples per step and rank
        self.sampler = WeightedEpochSampler(run.weights, cfg.epoch_size, cfg.seed, ctx.rank, ctx.world_size)
        self.state = State()
        self._pending: list[tuple[int, list[str], torch.Tensor]] = []  # losses not yet read back

    # ------------------------------------------------------------------ resume
    def restore(self) -> None:
        """Load the last checkpoint; refuse one written with other settings."""
        ck = ckpt_io.load(self.run.last_path)
        for key in ("stage", "model_config", "labels"):
            if ck.get(key) != self.run.meta.get(key):
                raise ckpt_io.CheckpointError(f"{self.run.last_path}: {key} differs from the current run's; "
                                              f"delete it or run without --resume")
        old, new = ck["train_config"], self.run.meta["train_config"]
        changed = sorted(k for k in set(old) | set(new) if k not in RESUME_FREE and old.get(k) != new.get(k))
        if changed:
            raise ckpt_io.CheckpointError(f"{self.run.last_path}: train params changed since it was written "
                                          f"({', '.join(changed)}); restore them or run without --resume")
        self.net.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        if self.scaler is not None and ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        rngs = ck["rng"]
        ckpt_io.set_rng_state(rngs[self.ctx.rank] if len(rngs) == self.ctx.world_size else rngs[0])
        self.state = State(int(ck["iteration"]), dict(ck["best"]))

    # ------------------------------------------------------------------ checkpoints
    def _payload(self, resume_state: bool) -> dict:
        body = self.net.state_dict()
        out = {"format": ckpt_io.FORMAT, **self.run.meta,
               "iteration": self.state.iteration, "best": dict(self.state.best), "model": body}
        if resume_state:
            epoch, b = divmod(self.state.iteration, self.cfg.epoch_size // self.cfg.train.batch_size)
            out.update(optimizer=self.opt.state_dict(), scheduler=self.sched.state_dict(),
                       scaler=self.scaler.state_dict() if self.scaler else {},
                       sampler={"epoch": epoch, "start": b * self.per_rank}, rng=None)
        return out

    def save_last(self) -> None:
        """Collective (every rank gives its RNG state); rank 0 writes."""
        rngs = gather_objects(ckpt_io.rng_state())
        if self.ctx.is_main:
            payload = self._payload(True)
            payload["rng"] = rngs
            ckpt_io.save(self.run.last_path, payload)
        barrier()

    def save_best(self) -> None:
        if self.ctx.is_main:
            ckpt_io.save(self.run.best_path, self._payload(False))

    # ------------------------------------------------------------------ steps
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def _no_sync(self, model: nn.Module, last: bool):
        """DDP all-reduces gradients in every backward pass; before the last micro-batch of a
        step that traffic is wasted, so it is skipped (forward included, as DDP requires)."""
        if last or not isinstance(model, DistributedDataParallel):
            return contextlib.nullcontext()
        return model.no_sync()

    def _backward(self, model: nn.Module, batch: Batch, targets: list[dict],
                  norm: dict[str, torch.Tensor] | None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Forward and backward of one micro-batch, adding to the gradients. ``targets``: every
        image of the step on this rank (CPU), for the loss normalisers when ``norm`` is None.
        Returns (its detached losses, the normalisers used)."""
        if batch.packed is None:  # a batch not built by model.collate.Collate
            batch = replace(batch, packed=pack(batch.targets))
        batch = batch.to(self.ctx.device, targets=False)
        images = batch.images.contiguous(memory_format=torch.channels_last) if self.cfg.runtime.channels_last else batch.images
        with self._autocast(), record_function("forward"):  # labels for torch.profiler
            outputs = model(images, batch.pixel_mask, batch.part_masks)
        with record_function("criterion"):
            if norm is None:
                queries = outputs["pred_obj_logits"].shape[1]
                norm = self.criterion.normalisers(targets, queries, self.ctx.device)
            losses = self.criterion(outputs, batch.packed, norm)
            total = self.criterion.total(losses)
        with record_function("backward"):
            (self.scaler.scale(total) if self.scaler is not None else total).backward()
        return {"loss": total.detach(), **{k: v.detach() for k, v in losses.items()}}, norm

    def step(self, model: nn.Module, micro: list[Batch]) -> dict[str, torch.Tensor]:
        """One optimiser step on this rank's ``accumulate`` micro-batches; returns the losses of
        the whole step on this rank as device scalars (nothing is read back here: see
        :meth:`flush`). Each micro-batch's losses are fractions of the step's (divided by the
        step's counts), so their sum is the loss of the global batch."""
        targets = [t for b in micro for t in b.targets]
        self.opt.zero_grad(set_to_none=True)
        sums: dict[str, torch.Tensor] = {}
        norm = None
        for i, batch in enumerate(micro):
            with self._no_sync(model, last=i == len(micro) - 1):
                losses, norm = self._backward(model, batch, targets, norm)
            sums = {k: sums.get(k, 0) + v for k, v in losses.items()}
        with record_function("optimiser"):
            self._optimise()
        return sums

    def flush(self, log: TrainLog | None = None) -> list[dict[str, float]]:
        """Read back the losses of the steps since the last flush in one transfer (averaged over
        ranks: a collective), stop on a non-finite one, log them in order; returns them."""
        if not self._pending:
            return []
        pending, self._pending = self._pending, []
        values = all_mean(torch.stack([v for _, _, v in pending]).float()).cpu().tolist()  # [n, K]
        rows = []
        for (it, keys, _), row in zip(pending, values):
            losses = dict(zip(keys, row))
            if not np.isfinite(row).all():
                self._non_finite(losses, it)
            if log is not None:
                log.step(it, losses, [g["lr"] for g in self.opt.param_groups])
            rows.append(losses)
        return rows

    def _optimise(self) -> None:
        """Clip the summed (AMP: unscaled) gradients, step the optimiser and the schedule."""
        if self.scaler is not None:
            self.scaler.unscale_(self.opt)
        if self.cfg.train.clip_max_norm > 0:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.train.clip_max_norm)
        if self.scaler is not None:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        self.sched.step()

    def _non_finite(self, values: dict[str, float], iteration: int) -> None:
        bad = [k for k, v in values.items() if not np.isfinite(v) and k != "loss"]
        last = f"{self.run.last_path} (iteration {self._saved_iteration()})" if self.run.last_path.exists() else "none yet"
        raise NonFiniteLoss(f"stage {self.run.meta.get('stage')}: loss became non-finite at iteration "
                            f"{iteration} ({', '.join(bad) or 'total'}); training stopped. "
                            f"Last good checkpoint: {last}. Lower train.lr or check the data, then --resume.")

    def _saved_iteration(self) -> int | str:
        try:
            return int(ckpt_io.load(self.run.last_path)["iteration"])
        except UserError:
            return "?"

    # ------------------------------------------------------------------ validation
    def validate(self) -> dict[str, float]:
        """Run the validation metric on rank 0 (with the bare module: no DDP collectives)."""
        if self.run.val_set is None or self.run.validate is None or not self.ctx.is_main:
            return {}
        # the micro-batch: the size the user's device is known to hold
        loader = DataLoader(self.run.val_set, batch_size=self.micro, shuffle=False, generator=self._generator(),
                            collate_fn=self.run.collate, num_workers=self.cfg.runtime.num_workers)
        self.net.eval()
        try:
            with torch.no_grad(), self._autocast():
                return self.run.validate(self.net, loader, self.ctx.device)
        finally:
            self.net.train()

    def _select(self, metrics: dict[str, float]) -> bool:
        """Record ``metrics``; True when the selection metric improved."""
        value = metrics.get(self.cfg.metric)
        if value is None or not np.isfinite(value):
            return False
        best = self.state.best["value"]
        if best is not None and value <= best:
            return False
        self.state.best = {"metric": self.cfg.metric, "value": float(value), "iteration": self.state.iteration}
        return True

    # ------------------------------------------------------------------ loop
    def _generator(self) -> torch.Generator:
        """A private generator for a DataLoader: creating an iterator draws a worker seed from
        it, and drawing from the global RNG instead would shift dropout after a resume."""
        return torch.Generator().manual_seed(self.cfg.seed)

    def _loader(self) -> DataLoader:
        return DataLoader(self.run.train_set, batch_size=self.micro, sampler=self.sampler,
                          collate_fn=self.run.collate, num_workers=self.cfg.runtime.num_workers, drop_last=True,
                          generator=self._generator(), pin_memory=self.ctx.device.type == "cuda")

    def _wrap(self) -> nn.Module:
        if not self.ctx.distributed:
            return self.net
        ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
        return DistributedDataParallel(self.net, device_ids=ids,
                                       find_unused_parameters=self.cfg.runtime.find_unused_parameters)

    def _after_step(self, log: TrainLog, losses: dict[str, torch.Tensor]) -> None:
        it, cfg = self.state.iteration, self.cfg
        self._pending.append((it, list(losses), torch.stack(list(losses.values()))))
        done = it >= cfg.iterations
        validate, save = it % cfg.val_every == 0 or done, it % cfg.checkpoint_every == 0 or done
        if it % cfg.runtime.log_every == 0 or validate or save:  # nothing is saved before the losses are checked
            self.flush(log)
        if validate:
            metrics = self.validate()
            improved = self._select(metrics)
            log.validation(it, metrics, self.state.best)
            if improved or (done and self.state.best["value"] is None):
                self.save_best()
        if save:
            self.save_last()

    def fit(self, resume: bool = False) -> dict:
        """Train to the end of the schedule; returns a summary (best metric, iterations, time)."""
        if resume:
            self.restore()
        model = self._wrap()
        if self.cfg.runtime.compile:
            model = torch.compile(model)
        self.net.train()
        loader = self._loader()
        batches_per_epoch = self.cfg.epoch_size // self.cfg.train.batch_size
        log = TrainLog(self.run.live_dir if self.ctx.is_main else None, self.cfg, resume, self.state.iteration)
        start, first = time.perf_counter(), self.state.iteration
        while self.state.iteration < self.cfg.iterations:
            epoch, b = divmod(self.state.iteration, batches_per_epoch)
            self.sampler.set_epoch(epoch, b * self.per_rank)
            for micro in grouped(loader, self.cfg.train.accumulate):
                losses = self.step(model, micro)
                self.state.iteration += 1
                self._after_step(log, losses)
                if self.state.iteration >= self.cfg.iterations:
                    break
        seconds = time.perf_counter() - start
        log.close()
        done = self.state.iteration - first
        return {"iterations": self.state.iteration, "seconds": seconds, "best": dict(self.state.best),
                "images_per_s": done * self.cfg.train.batch_size / seconds if seconds > 0 else None,
                "config": self.cfg.summary()}
