"""Stage-1 evaluation of one ablation run (pipeline/ablations/__init__.py): every test image through the
stage-1 network with its real part masks and with the part masks of the batch rolled by one
image (the inference-time saliency probe), interactiveness AP per split, chance AP, and which
part groups the queries matched to ground-truth pairs select, per verb."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from model.collate import Collate
from model.data import HOIDataset, build_records
from model.label_space import LabelSpace
from model.box_geometry import pairwise_iou_or_zero
from model.postprocess import OutputSpace, stage1_pairs
from model.transforms import AugmentConfig, make_transforms
from pipeline import tables
from pipeline.tables import PART_GROUP_NAMES

TEST_SPLIT = "test"
SPLIT_COLUMNS = ("cross_person", "crowded")
MATCH_IOU = 0.5


@torch.no_grad()
def run_stage1(net: torch.nn.Module, ck: dict, data: Path, augment: AugmentConfig, device: torch.device,
               batch_size: int = 16, image_root: Path | None = None,
               ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame], pd.DataFrame]:
    """(pair predictions with real masks, with rolled masks, the tables, the scenes table).
    Images are read from ``image_root`` (default: the training dataset's root in ``ck``).
    The real frame carries ``attrs["selected"]`` [N, 6] bool (one-time schemes; else absent).
    A batch of one image cannot be rolled: its "shuffled" row equals the real one."""
    t = {n: tables.read(data / f"{n}.parquet", n) for n in ("images", "instances", "pairs", "parts")}
    scenes = tables.read(data / "scenes.parquet", "scenes")
    space = LabelSpace.from_dict(ck["labels"])
    ids = sorted(t["images"].loc[t["images"]["split"] == TEST_SPLIT, "image_id"].unique().tolist())
    records, _ = build_records(Path(image_root or ck["dataset"]["root"]), t["images"], t["instances"], t["pairs"], t["parts"],
                               space, ids)
    mcfg = ck["model_config"]
    loader = DataLoader(HOIDataset(records, make_transforms(augment, train=False)), batch_size=batch_size,
                        collate_fn=Collate(mcfg.get("stride", 32), mcfg.get("mask_rule", "touch")))
    out_space = OutputSpace.of(space)
    real, rolled, selected = [], [], []
    for batch in loader:
        batch = batch.to(device)
        sizes = torch.stack([tg["orig_size"] for tg in batch.targets])
        names = [tg["image_id"] for tg in batch.targets]
        o1 = net(batch.images, batch.pixel_mask, batch.part_masks)
        real.append(stage1_pairs(o1, sizes, names, out_space))
        if "part_selected" in o1:
            selected.append(o1["part_selected"].flatten(0, 1).cpu().numpy())
        masks = None if batch.part_masks is None else batch.part_masks.roll(1, 0)  # [B, 6, HW]: another image's
        rolled.append(stage1_pairs(net(batch.images, batch.pixel_mask, masks), sizes, names, out_space))
    real_df, rolled_df = pd.concat(real, ignore_index=True), pd.concat(rolled, ignore_index=True)
    if selected:
        real_df.attrs["selected"] = np.concatenate(selected)
    return real_df, rolled_df, t, scenes


def ap_metrics(frame: pd.DataFrame, t: dict[str, pd.DataFrame], scenes: pd.DataFrame, fmt: str) -> dict[str, float]:
    """evaluate_pairs' flat metrics on the test split, with the split columns scenes has."""
    from pipeline.evaluate_core import EvaluateConfig, evaluate_pairs

    splits = tuple(c for c in SPLIT_COLUMNS if c in scenes.columns)
    cfg = EvaluateConfig(split=TEST_SPLIT, scene_splits=splits)
    return evaluate_pairs(frame, t["images"], t["instances"], t["pairs"], scenes, fmt, cfg)[0]


def scores(frame: pd.DataFrame, t: dict[str, pd.DataFrame], scenes: pd.DataFrame, suffix: str = "",
           chance: bool = True, fmt: str = "hico-det", seed: int = 0) -> dict[str, float]:
    """ap_all / ap_cross_person / ap_crowded (+ suffix), per-part AP and, with ``chance``, the
    AP of uniform random scores on the same pairs (what a ranking that knows nothing gets),
    overall (``ap_chance``) and per split (``ap_<split>_chance``)."""
    m = ap_metrics(frame, t, scenes, fmt)
    nan = float("nan")
    out = {f"ap_all{suffix}": m.get("interactiveness/ap", nan)}
    for s in SPLIT_COLUMNS:
        out[f"ap_{s}{suffix}"] = m.get(f"interactiveness/{s}/ap", nan)
    if chance:
        for name in PART_GROUP_NAMES:
            out[f"ap_part_{name}"] = m.get(f"interactiveness/part/{name}/ap", nan)
        noise = frame.assign(interactiveness=np.random.default_rng(seed).uniform(size=len(frame)).astype(np.float32))
        m0 = ap_metrics(noise, t, scenes, fmt)
        out["ap_chance"] = m0.get("interactiveness/ap", nan)
        for s in SPLIT_COLUMNS:  # a split's own chance level (its share of positives differs)
            out[f"ap_{s}_chance"] = m0.get(f"interactiveness/{s}/ap", nan)
    return out


def matched_queries(frame: pd.DataFrame, t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Interactive ground-truth pairs of the test split (one row per pair and verb) with the
    row of ``frame`` of the query that overlaps them best by min(IoU_h, IoU_o), -1 below 0.5."""
    from model.common.labels import hico

    images = t["images"]
    test = set(images.loc[images["split"] == TEST_SPLIT, "image_id"])
    no_int = {v for v, n in hico().verb_names.items() if n == "no_interaction"}
    pairs = t["pairs"][t["pairs"]["image_id"].isin(test) & ~t["pairs"]["verb_id"].isin(no_int)]
    inst = t["instances"].set_index(["image_id", "index"])[["x1", "y1", "x2", "y2"]]
    key = lambda col: list(zip(pairs["image_id"], pairs[col].astype("Int64").fillna(-1).astype(int)))  # noqa: E731
    h = inst.reindex(key("subject")).to_numpy(np.float32)
    o = inst.reindex(key("object")).to_numpy(np.float32)
    rows = np.full(len(pairs), -1, dtype=np.int64)
    q_rows = frame.groupby("image_id").indices
    gt_rows = pairs.reset_index(drop=True).groupby("image_id").indices
    qh = frame[["hx1", "hy1", "hx2", "hy2"]].to_numpy(np.float32)
    qo = np.nan_to_num(frame[["ox1", "oy1", "ox2", "oy2"]].to_numpy(np.float32))
    for image_id, g in gt_rows.items():  # per image (evaluation, not a training hot path)
        q = q_rows.get(image_id)
        if q is None:
            continue
        iou = torch.minimum(pairwise_iou_or_zero(torch.from_numpy(h[g])[None], torch.from_numpy(qh[q])[None]),
                            pairwise_iou_or_zero(torch.from_numpy(np.nan_to_num(o[g]))[None], torch.from_numpy(qo[q])[None]))[0]
        best = iou.max(-1)
        rows[g] = np.where(best.values.numpy() >= MATCH_IOU, q[best.indices.numpy()], -1)
    return pd.DataFrame({"verb_id": pairs["verb_id"].to_numpy(), "query_row": rows})
