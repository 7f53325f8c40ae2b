"""Stage ``bundle``: models/stage1.pt + models/stage2.pt + the NIS threshold -> models/bundle.pt
(ARCHITECTURE decisions 1 and 2).

NIS's tau is chosen on the validation split that training carved from the training images
(its ids travel in the checkpoints), never on the test split: both networks run over those
images, each stage-2 pair takes the interactiveness of the stage-1 pair with the largest
min(IoU_h, IoU_o) (model/postprocess.py), and pipeline/evaluate_core.tune_nis_threshold keeps
the tau with the best HICO-DET mAP (V-COCO: the best interactiveness F1). The postprocess
params say whether NIS filters (``threshold``), multiplies (``product``), does both
(``both``), is ``off``, or (``auto``, the default) which of the first three is best on
validation (HICO-DET; V-COCO's F1 objective cannot compare modes: threshold). The bundle
stores the chosen mode and tau in its ``postprocess`` entry and what every mode gave in
``nis.modes`` (also in reports/bundle.json).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from model import checkpoint as ckpt_io
from model.bundle_file import make_bundle, save_bundle
from model.label_space import LabelSpace
from pipeline import params as P
from pipeline import tables
from model.common.errors import UserError
from model.common.numbers import sig

VAL_SPLIT = "val"  # name given to the carved validation images for the tuning call
PARAMS = ("postprocess",)  # the params keys this stage reads (dvc.yaml lists exactly these)


def validation_candidates(ck1: dict, ck2: dict, processed: Path, device: torch.device):
    """Post-processing candidates (before NIS) of both networks on the validation images,
    and the tables the tuning needs (images relabelled: validation images -> split 'val')."""
    from model.postprocess import PostProcess, concat_candidates
    from pipeline.evaluate import run_networks

    val_ids = list(ck1.get("val_image_ids") or [])
    if not val_ids:
        raise UserError("models/stage1.pt has no validation images (train.val_fraction = 0): cannot choose tau")
    post = PostProcess(LabelSpace.from_dict(ck1["labels"]))  # NIS settings: chosen below
    t = {n: tables.read(processed / f"{n}.parquet", n) for n in ("images", "instances", "pairs", "parts")}
    root = Path(ck1["dataset"]["root"])
    parts = [post.candidates(o2, o1, sizes, ids)
             for o1, o2, sizes, ids in run_networks({"stage1": ck1, "stage2": ck2}, t, val_ids, root, device,
                                                          desc="bundle: validation")]
    images = t["images"].assign(split=np.where(t["images"]["image_id"].isin(val_ids), VAL_SPLIT, t["images"]["split"]))
    return concat_candidates(parts), post.space, images, t


NIS_MODES = ("threshold", "product", "both")  # the candidates of postprocess.nis: auto (ties: this order)


def pick_nis(tunings: dict) -> tuple[str, float, float]:
    """(mode, tau, objective) of the best ``{mode: NisTuning}``: the highest validation
    objective; ties go to the earlier mode of ``tunings`` and, within one, the smaller tau."""
    best = None
    for mode, tuning in tunings.items():
        values = tuning.table["objective"].to_numpy(float)
        i = int(np.nanargmax(values))
        if best is None or values[i] > best[2]:
            best = (mode, float(tuning.table["threshold"].iloc[i]), float(values[i]))
    return best


def unmatched_share(cands, post_cfg) -> float:
    """Share of the validation candidates whose best stage-1 pair overlaps them by less than
    ``match_iou`` (they take the ``unmatched`` rule's interactiveness)."""
    if cands.overlap is None or not len(cands.overlap):
        return 0.0
    return float(np.mean(cands.overlap < post_cfg.match_iou))


def choose_tau(ck1: dict, ck2: dict, processed: Path, post_cfg, device: torch.device) -> dict:
    """The NIS settings of the bundle: mode (``auto``: the best of NIS_MODES) and tau, chosen
    on the validation images, with what every tried mode gives (``modes``)."""
    from pipeline.evaluate_core import tune_nis_threshold

    if post_cfg.nis == "off":
        return {"mode": "off", "threshold": None, "chosen_on": None}
    cands, space, images, t = validation_candidates(ck1, ck2, processed, device)
    objective = "hoi_map" if space.fmt == "hico-det" else "interactiveness_f1"
    if post_cfg.nis != "auto":
        modes = (post_cfg.nis,)
    else:  # the F1 objective only sees the interactiveness ranking: it cannot compare modes
        modes = NIS_MODES if objective == "hoi_map" else ("threshold",)
    tunings = {m: tune_nis_threshold(cands, space, post_cfg, images, t["instances"], t["pairs"], VAL_SPLIT,
                                     objective, mode=m) for m in modes}
    mode, tau, value = pick_nis(tunings)
    table: pd.DataFrame = tunings[mode].table
    return {"mode": mode, "threshold": tau, "objective": objective, "value": value,
            "chosen_on": "validation", "val_images": int((images["split"] == VAL_SPLIT).sum()),
            "unmatched": post_cfg.unmatched, "unmatched_share": unmatched_share(cands, post_cfg),
            "modes": {m: dict(zip(("mode", "threshold", "value"), pick_nis({m: tn}))) for m, tn in tunings.items()},
            "table": {"threshold": table["threshold"].astype(float).tolist(),
                      "objective": table["objective"].astype(float).tolist()}}


def run(params_path: Path, models: Path = Path("models"), processed: Path = Path("data/processed"),
        out: Path | None = None, report: Path = Path("reports/bundle.json")) -> dict:
    from model.postprocess import PostprocessConfig

    post_cfg = P.section("postprocess", PostprocessConfig, params_path, keys=PARAMS)
    ck1, ck2 = ckpt_io.load(models / "stage1.pt"), ckpt_io.load(models / "stage2.pt")
    if ck1.get("val_image_ids") != ck2.get("val_image_ids"):
        raise UserError(f"{models}: stage 1 and stage 2 were validated on different images (retrain stage 2)")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    nis = choose_tau(ck1, ck2, processed, post_cfg, device)
    resolved = post_cfg.model_copy(update={"nis": nis["mode"], "nis_threshold": nis["threshold"] or 0.0})
    bundle = make_bundle(ck1, ck2, nis, resolved.model_dump(mode="json"))
    path = save_bundle(out or models / "bundle.pt", bundle)
    summary = {"bundle": str(path), "nis_mode": nis["mode"], "nis_threshold": nis["threshold"],
               "stage1_best": ck1["best"], "stage2_best": ck2["best"]}
    for m, res in (nis.get("modes") or {}).items():  # what each NIS mode gives on validation
        summary[f"val_{nis['objective']}_{m}"] = res["value"]
        summary[f"nis_threshold_{m}"] = res["threshold"]
    if "unmatched_share" in nis:
        summary["nis_unmatched"] = nis["unmatched"]
        summary["val_unmatched_share"] = nis["unmatched_share"]
    if nis.get("table"):
        tab = nis["table"]
        summary[f"val_{nis['objective']}_at_tau"] = float(np.nanmax(tab["objective"]))
        if nis["objective"] == "hoi_map" and tab["threshold"][0] == 0.0:
            summary["val_hoi_map_without_nis"] = tab["objective"][0]
    tables.write_json(summary, report)
    print(f"bundle: wrote {path} (NIS {nis['mode']}, tau {sig(nis['threshold'])} chosen on "
          f"{nis.get('val_images', 0)} validation images)")
    return summary


def main() -> None:
    """The DVC stage's command (``python -m pipeline.stage bundle``): default paths."""
    run(P.DEFAULT_PARAMS)
