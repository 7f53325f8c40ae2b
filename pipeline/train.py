"""Stage ``train`` (paper Sec. 3.5, 4, 5.2): stage 1 trains extractor + box detector +
interactiveness classifier (L_det + L_int), stage 2 extractor + box detector + verb classifier
(L_det + L_verb), initialised from stage 1's extractor and detector or from COCO DETR weights
(ARCHITECTURE decision 1).

Reads data/processed/{images,instances,pairs,parts,scenes}.parquet and the image files under
``dataset.root``; writes models/stage{N}.pt (the model selected on the validation split, no
resume state), models/stage{N}-last.pt (the latest state, for ``--resume``),
reports/train/stage{N}/ (dvclive curves) and reports/train_stage{N}.json (summary).
The validation split is carved deterministically from the TRAINING images
(``train.val_fraction``); the test split is never looked at.

Launch: ``python cli.py train --stage 1`` (one process, CPU or one GPU) or
``torchrun --nproc_per_node N cli.py train --stage 1`` (DDP; ``batch_size`` is the global batch).
With fewer devices than the paper's four, ``train.accumulate`` A keeps the global batch: each
process sums the gradients of A micro-batches of batch_size / (N x A) images per step.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from model import checkpoint as ckpt_io
from model.collate import Collate
from model.config import ModelConfig
from model.data import HOIDataset, build_records, split_validation
from model.distributed import init_from_env, shutdown
from model.engine import LoopConfig, Run, Trainer, micro_batch_size
from model.label_space import LabelSpace, for_format
from model.sampler import scene_weights
from model.runtime_config import RuntimeConfig
from model.train_config import LossConfig, StageSchedule, TrainConfig  # noqa: F401 (the train section)
from model.transforms import make_transforms
from pipeline.validation import validate_stage1, validate_stage2
from pipeline import params as P
from pipeline import tables
from model.common.errors import UserError
from model.common.numbers import points


TABLES = ("images", "instances", "pairs", "parts", "scenes")
# the params keys both stages read; dvc.yaml lists exactly stage_params(N) for train_stageN
_COMMON = ("seed", "dataset", "model", "train.batch_size", "train.accumulate", "train.lr", "train.lr_backbone",
           "train.weight_decay", "train.clip_max_norm", "train.warmup", "train.val_fraction", "train.val_every",
           "train.checkpoint_every", "train.amp", "train.augment", "train.loss")
# the loop settings that come from the ``runtime`` section: left out of the summary JSON
RUNTIME_LOOP = ("num_workers", "log_every", "progress", "find_unused_parameters")


def stage_params(stage: int | str) -> tuple[str, ...]:
    """The params keys stage ``stage`` reads: stage 1 not stage 2's schedule and init, and
    the reverse; neither ``train.alpha`` (the scenes table carries the weights) nor ``runtime``."""
    own = {1: ("train.stage1",), 2: ("train.stage2", "train.stage2_init")}[int(stage)]
    return (*_COMMON, *own)


def declared_config(cfg: TrainConfig, stage: int) -> dict:
    """The ``train`` keys stage ``stage`` reads, as plain data (stored in its checkpoints)."""
    keys = {k.split(".")[1] for k in stage_params(stage) if k.startswith("train.")}
    return cfg.model_dump(mode="json", include=keys)


def load_tables(processed: Path) -> dict[str, pd.DataFrame]:
    return {name: tables.read(processed / f"{name}.parquet", name) for name in TABLES}


def training_images(images: pd.DataFrame) -> list[str]:
    """Annotated images of the train split, in image-id order."""
    rows = images[(images["split"] == "train") & images["annotated"]]
    return sorted(rows["image_id"].unique().tolist())


def loop_config(cfg: TrainConfig, stage: int, n_train: int, seed: int, rt: RuntimeConfig | None = None) -> LoopConfig:
    """Resolve the stage's schedule to iterations (an epoch = the training images, rounded
    down to whole global batches)."""
    sched = cfg.stage1 if stage == 1 else cfg.stage2
    epoch_size = max(cfg.batch_size, n_train // cfg.batch_size * cfg.batch_size)
    per_epoch = epoch_size // cfg.batch_size
    k = per_epoch if sched.unit == "epochs" else 1
    return LoopConfig(
        train=cfg, iterations=sched.length * k, lr_drop=sched.lr_drop * k, epoch_size=epoch_size,
        val_every=cfg.val_every or per_epoch, checkpoint_every=cfg.checkpoint_every or per_epoch,
        metric="int_ap" if stage == 1 else "hoi_map", seed=seed, runtime=rt or RuntimeConfig(),
    )


def init_stage2(net: torch.nn.Module, cfg: TrainConfig, mcfg: ModelConfig, models: Path) -> str:
    """Stage 2's initialisation (decision 1); returns what was done, for the log."""
    if cfg.stage2_init == "stage1":
        from model.detr_import import transfer

        ck = ckpt_io.load(models / "stage1.pt")
        return f"stage 2 from {models / 'stage1.pt'}: {transfer(ck['model'], net).summary()}"
    if cfg.stage2_init == "pretrained" and mcfg.pretrained is None:
        raise UserError("train.stage2_init is 'pretrained' but model.pretrained is not set")
    return "stage 2 from model.pretrained" if cfg.stage2_init == "pretrained" else "stage 2 from scratch"


def datasets(cfg: TrainConfig, ds: P.DatasetConfig, space: LabelSpace, processed: Path, seed: int):
    """(train set, validation set or None, sampling weights, counts for the log)."""
    t = load_tables(processed)
    train_ids, val_ids = split_validation(training_images(t["images"]), cfg.val_fraction, seed)
    if not train_ids:
        raise UserError(f"{processed / 'images.parquet'}: no annotated training images")
    args = (Path(ds.root), t["images"], t["instances"], t["pairs"], t["parts"], space)
    train_rec, dropped = build_records(*args, train_ids)
    train_set = HOIDataset(train_rec, make_transforms(cfg.augment, train=True))
    val_set = None
    if val_ids:
        val_rec, _ = build_records(*args, val_ids)
        val_set = HOIDataset(val_rec, make_transforms(cfg.augment, train=False))
    weights = scene_weights(train_ids, t["scenes"])
    counts = {"train_images": len(train_ids), "val_images": len(val_ids), "val_image_ids": val_ids, "dropped_pairs": dropped,
              "upweighted_share": float(np.mean(weights > weights.min())) if len(weights) else 0.0,
              "upweight": float(weights.max() / weights.min()) if len(weights) else 1.0}
    return train_set, val_set, weights, counts


def run(params_path: Path, stage: int, resume: bool = False, processed: Path = Path("data/processed"),
        models: Path = Path("models"), reports: Path = Path("reports"), live: bool = True) -> dict:
    """Train one stage end to end; returns the summary also written to reports/. ``live``:
    dvclive curves under reports/train/ (False: no dvclive needed, e.g. the ablate command)."""
    if stage not in (1, 2):
        raise UserError(f"--stage must be 1 or 2, got {stage}")
    keys = stage_params(stage)
    cfg = P.section("train", TrainConfig, params_path, keys=keys)
    mcfg = P.section("model", ModelConfig, params_path, keys=keys)
    ds = P.section("dataset", P.DatasetConfig, params_path, keys=keys)
    seed = P.seed(params_path, keys=keys)
    rt = P.runtime(params_path)
    ctx = init_from_env(rt.device)
    if rt.threads:
        torch.set_num_threads(rt.threads)
    try:
        return _run(cfg, mcfg, ds, seed, rt, ctx, stage, resume, processed, models, reports, live)
    finally:
        shutdown()


def _run(cfg, mcfg, ds, seed, rt, ctx, stage, resume, processed, models, reports, live=True) -> dict:
    from model.build import build

    micro = micro_batch_size(cfg.batch_size, ctx.world_size, cfg.accumulate)  # fail before reading data
    space = for_format(ds.format)
    train_set, val_set, weights, counts = datasets(cfg, ds, space, processed, seed)
    # every RNG from the seed: torch's gives the initial weights (the same on every rank); python's
    # and numpy's are only stored for --resume, but unseeded they would differ between runs
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    net, criterion, _ = build(mcfg, stage, space, cfg.loss)
    note = init_stage2(net, cfg, mcfg, models) if stage == 2 else "stage 1"
    torch.manual_seed(seed + 1 + ctx.rank)  # dropout streams differ between ranks
    loop = loop_config(cfg, stage, len(train_set), seed, rt)
    meta = {"stage": stage, "model_config": mcfg.model_dump(mode="json"), "train_config": declared_config(cfg, stage),
            "model_spec": net.spec() if hasattr(net, "spec") else None, "labels": space.to_dict(),
            "dataset": ds.model_dump(mode="json"), "seed": seed, "val_image_ids": counts["val_image_ids"]}
    run_ = Run(net=net, criterion=criterion, train_set=train_set, weights=weights,
               collate=Collate(mcfg.stride, mcfg.mask_rule, with_part_masks=stage == 1),
               best_path=models / f"stage{stage}.pt", last_path=models / f"stage{stage}-last.pt", meta=meta,
               val_set=val_set, validate=validate_stage1 if stage == 1 else validate_stage2,
               live_dir=reports / "train" / f"stage{stage}" if live else None)
    if ctx.is_main:
        print(f"train stage {stage}: {counts['train_images']} training images ({counts['upweighted_share']:.0%} "
              f"drawn {counts['upweight']:g} x as often), {counts['val_images']} validation images, {counts['dropped_pairs']} degenerate pairs "
              f"skipped; {loop.iterations} iterations of {cfg.batch_size} on {ctx.world_size} x {ctx.device} "
              f"({cfg.accumulate} micro-batch(es) of {micro} per process); {note}")
    summary = Trainer(run_, loop, ctx).fit(resume=resume)
    summary.update(counts={k: v for k, v in counts.items() if k != "val_image_ids"}, stage=stage)
    if ctx.is_main:
        write_summary(summary, reports, stage)
        best = summary["best"]
        print(f"train stage {stage}: done, {summary['iterations']} iterations in {summary['seconds']:.0f} s; "
              f"selected {run_.best_path} (val {best['metric']} {points(best['value'])} % @ {best['iteration']})")
    return summary


def write_summary(summary: dict, reports: Path, stage: int) -> None:
    """REPORTS/train_stageN.json (a DVC output: the same run gives the same bytes, so no
    wall-clock time and no runtime settings in it) and REPORTS/timing/train_stageN.json (the
    time taken: git-ignored, no DVC output)."""
    timing = ("seconds", "images_per_s")
    kept = {k: v for k, v in summary.items() if k not in timing}
    kept["config"] = {k: v for k, v in summary.get("config", {}).items() if k not in RUNTIME_LOOP}
    tables.write_json(kept, reports / f"train_stage{stage}.json")
    tables.write_json({k: summary.get(k) for k in timing}, reports / "timing" / f"train_stage{stage}.json")


def main(stage: str) -> None:
    """The DVC stage's command (``python -m pipeline.stage train N``): default paths."""
    run(P.DEFAULT_PARAMS, int(stage))
