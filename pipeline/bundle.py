"""Stage ``bundle``: models/stage1.pt + models/stage2.pt + the NIS threshold -> models/bundle.pt
(ARCHITECTURE decisions 1 and 2).

NIS's tau is chosen on the validation split that training carved from the training images
(its ids travel in the checkpoints), never on the test split: both networks run over those
images, each stage-2 pair takes the interactiveness of the stage-1 pair with the largest
min(IoU_h, IoU_o) (model/postprocess.py), and pipeline/evaluate_core.tune_nis_threshold keeps
the tau with the best HICO-DET mAP (V-COCO: the best interactiveness F1). The postprocess
params say whether NIS filters (``threshold``), multiplies (``product``) or is ``off``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from model import checkpoint as ckpt_io
from model.bundle import make_bundle, save_bundle
from model.label_space import LabelSpace
from pipeline import params as P
from pipeline import tables
from pipeline.errors import UserError
from pipeline.numbers import sig

VAL_SPLIT = "val"  # name given to the carved validation images for the tuning call


def validation_candidates(ck1: dict, ck2: dict, processed: Path, device: torch.device):
    """Post-processing candidates (before NIS) of both networks on the validation images,
    and the tables the tuning needs (images relabelled: validation images -> split 'val')."""
    from model.postprocess import OutputSpace, build_candidates, concat_candidates
    from pipeline.evaluate import run_networks

    val_ids = list(ck1.get("val_image_ids") or [])
    if not val_ids:
        raise UserError("models/stage1.pt has no validation images (train.val_fraction = 0): cannot choose tau")
    space = OutputSpace.of(LabelSpace.from_dict(ck1["labels"]))
    t = {n: tables.read(processed / f"{n}.parquet", n) for n in ("images", "instances", "pairs", "parts")}
    root = Path(ck1["dataset"]["root"])
    parts = [build_candidates(o2, o1, sizes, ids, space)
             for o1, o2, sizes, ids in run_networks({"stage1": ck1, "stage2": ck2}, t, val_ids, root, device,
                                                          desc="bundle: validation")]
    images = t["images"].assign(split=np.where(t["images"]["image_id"].isin(val_ids), VAL_SPLIT, t["images"]["split"]))
    return concat_candidates(parts), space, images, t


def choose_tau(ck1: dict, ck2: dict, processed: Path, post_cfg, device: torch.device) -> dict:
    """The NIS settings of the bundle, tau chosen on validation when NIS filters."""
    from pipeline.evaluate_core import tune_nis_threshold

    if post_cfg.nis != "threshold":
        return {"mode": post_cfg.nis, "threshold": None, "chosen_on": None}
    cands, space, images, t = validation_candidates(ck1, ck2, processed, device)
    objective = "hoi_map" if space.fmt == "hico-det" else "interactiveness_f1"
    tuning = tune_nis_threshold(cands, space, post_cfg, images, t["instances"], t["pairs"], VAL_SPLIT, objective)
    table: pd.DataFrame = tuning.table
    return {"mode": "threshold", "threshold": float(tuning.threshold), "objective": objective,
            "chosen_on": "validation", "val_images": int((images["split"] == VAL_SPLIT).sum()),
            "table": {"threshold": table["threshold"].astype(float).tolist(),
                      "objective": table["objective"].astype(float).tolist()}}


def run(params_path: Path, models: Path = Path("models"), processed: Path = Path("data/processed"),
        out: Path | None = None, report: Path = Path("reports/bundle.json")) -> dict:
    from model.postprocess import PostprocessConfig

    post_cfg = P.section("postprocess", PostprocessConfig, params_path)
    ck1, ck2 = ckpt_io.load(models / "stage1.pt"), ckpt_io.load(models / "stage2.pt")
    if ck1.get("val_image_ids") != ck2.get("val_image_ids"):
        raise UserError(f"{models}: stage 1 and stage 2 were validated on different images (retrain stage 2)")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    nis = choose_tau(ck1, ck2, processed, post_cfg, device)
    bundle = make_bundle(ck1, ck2, nis, post_cfg.model_dump(mode="json"))
    path = save_bundle(out or models / "bundle.pt", bundle)
    summary = {"bundle": str(path), "nis_mode": nis["mode"], "nis_threshold": nis["threshold"],
               "stage1_best": ck1["best"], "stage2_best": ck2["best"]}
    if nis.get("table"):
        tab = nis["table"]
        summary[f"val_{nis['objective']}_at_tau"] = float(np.nanmax(tab["objective"]))
        if nis["objective"] == "hoi_map" and tab["threshold"][0] == 0.0:
            summary["val_hoi_map_without_nis"] = tab["objective"][0]
    tables.write_json(summary, report)
    print(f"bundle: wrote {path} (NIS {nis['mode']}, tau {sig(nis['threshold'])} chosen on "
          f"{nis.get('val_images', 0)} validation images)")
    return summary
