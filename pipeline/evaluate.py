"""Stage ``evaluate``: the inference bundle on every image of the evaluated split -> the
predictions tables, the metrics JSON (DVC metrics), PR curves (DVC plots) and a text report.

Both networks of the bundle run on the same batches (ARCHITECTURE decision 1); each stage-2
pair takes the interactiveness of the best-overlapping stage-1 pair; NIS uses the bundle's
tau, chosen on validation, never on this split (decision 2); pair NMS and the per-image cap
follow the bundle's post-processing params. Interactiveness AP ranks every stage-1 pair.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader

from model.bundle_file import load_bundle, network
from model.collate import Collate
from model.data import HOIDataset, build_records
from model.label_space import LabelSpace
from model.transforms import AugmentConfig, make_transforms
from pipeline import params as P
from pipeline import tables
from model.common.errors import UserError

TABLES = ("images", "instances", "pairs", "parts")
PARAMS = ("dataset", "evaluate")  # the params keys this stage reads (dvc.yaml lists exactly these)


@torch.no_grad()
def run_networks(bundle: dict, t: dict[str, pd.DataFrame], image_ids: list[str], root: Path,
                 device: torch.device, batch_size: int = 8,
                 desc: str = "evaluate") -> Iterator[tuple[dict, dict, torch.Tensor, list[str]]]:
    """Both networks of ``bundle`` over ``image_ids`` at evaluation resolution: yields
    (stage-1 outputs, stage-2 outputs, original sizes [B, 2] as (h, w), image ids) per batch."""
    ck1, ck2 = bundle["stage1"], bundle["stage2"]
    space = LabelSpace.from_dict(ck1["labels"])
    records, _ = build_records(root, t["images"], t["instances"], t["pairs"], t["parts"], space, image_ids)
    aug = AugmentConfig.model_validate(ck2["train_config"]["augment"])
    mcfg = ck1["model_config"]
    loader = DataLoader(HOIDataset(records, make_transforms(aug, train=False)), batch_size=batch_size,
                        collate_fn=Collate(mcfg.get("stride", 32), mcfg.get("mask_rule", "touch")))
    net1, net2 = network(ck1).to(device), network(ck2).to(device)
    from model.common.progress import bar

    for batch in bar(loader, desc=desc, unit="batch", leave=False):
        batch = batch.to(device)
        o1 = net1(batch.images, batch.pixel_mask, batch.part_masks)
        o2 = net2(batch.images, batch.pixel_mask, batch.part_masks)
        sizes = torch.stack([tg["orig_size"] for tg in batch.targets])
        yield o1, o2, sizes, [tg["image_id"] for tg in batch.targets]


def predict_split(bundle: dict, t: dict[str, pd.DataFrame], image_ids: list[str], root: Path,
                  device: torch.device) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predictions after NIS, pair NMS and the cap; every stage-1 pair) for ``image_ids``."""
    from model.bundle_file import postprocess_config
    from model.postprocess import PostProcess

    post_process = PostProcess(LabelSpace.from_dict(bundle["stage1"]["labels"]), postprocess_config(bundle))
    cands, pairs = [], []
    for o1, o2, sizes, ids in run_networks(bundle, t, image_ids, root, device):
        cands.append(post_process.candidates(o2, o1, sizes, ids))
        pairs.append(post_process.pairs(o1, sizes, ids))
    if not cands:
        raise UserError(f"no images to evaluate (split has {len(image_ids)} images)")
    return post_process.finalize(cands), pd.concat(pairs, ignore_index=True)


def read_tables(processed: Path, names: tuple[str, ...] = TABLES) -> tuple[dict[str, pd.DataFrame], pd.DataFrame | None]:
    """({name: table} of ``processed/<name>.parquet``, the scenes table or None when absent)."""
    t = {n: tables.read(processed / f"{n}.parquet", n) for n in names}
    scenes_path = processed / "scenes.parquet"
    return t, tables.read(scenes_path, "scenes") if scenes_path.exists() else None


def run(params_path: Path, bundle_path: Path = Path("models/bundle.pt"), processed: Path = Path("data/processed"),
        out: Path = Path("reports/evaluate"), metrics_path: Path = Path("reports/metrics.json"),
        headline_path: Path | None = None) -> dict[str, float]:
    """... and HEADLINE_PATH (default: headline.json beside METRICS_PATH), the few metrics
    runs are compared by (pipeline/metrics/headline.py)."""
    from pipeline.evaluate_core import EvaluateConfig, evaluate
    from pipeline.metrics.headline import headline
    from pipeline.metrics.report import text_report, write_outputs

    cfg = P.section("evaluate", EvaluateConfig, params_path, keys=PARAMS)
    ds = P.section("dataset", P.DatasetConfig, params_path, keys=PARAMS)
    bundle = load_bundle(bundle_path)
    t, scenes = read_tables(processed, TABLES)
    image_ids = t["images"].loc[t["images"]["split"] == cfg.split, "image_id"].tolist()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"evaluate: {len(image_ids)} {cfg.split} images, bundle {bundle_path} on {device}")
    preds, pair_preds = predict_split(bundle, t, image_ids, Path(ds.root), device)
    tables.write(preds, "predictions", out / "predictions.parquet")
    tables.write(pair_preds, "pair_predictions", out / "pair_predictions.parquet")
    metrics, curves = evaluate(preds, t["images"], t["instances"], t["pairs"], scenes, ds.format, cfg,
                               pair_predictions_df=pair_preds, dataset_root=Path(ds.root))
    write_outputs(metrics, curves, metrics_path, out / "curves", out / "report.txt", tables_dir=out / "per_class")
    tables.write_json(headline(metrics, cfg.scene_splits), headline_path or metrics_path.with_name("headline.json"))
    print(text_report(metrics))
    return metrics


def main() -> None:
    """The DVC stage's command (``python -m pipeline.stage evaluate``): default paths."""
    run(P.DEFAULT_PARAMS)
