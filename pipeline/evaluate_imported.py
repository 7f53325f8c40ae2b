"""``evaluate --predictions FILE [--pair-predictions FILE]``: score another method's results with
the evaluate stage's evaluators and params, beside our own numbers.

Inputs: a ``predictions`` table (HOI triplets; what ``data import-preds`` writes for QPIC/CDN/
GEN-VLKT json, V-COCO pickles and ho-rcnn .mat files) and/or a ``pair_predictions`` table
(ranked human-object pairs with interactiveness, e.g. the paper's ``bst_result_binary.pkl``
imported with ``bpm-binary``); boxes ``x1, y1, x2, y2`` in the dataset's original pixels, the
schemas of pipeline/tables.py. With ``predictions`` the metrics are the stage's (HICO-DET mAP
or V-COCO role AP, plus interactiveness AP from the pair file when given, else from the
predictions' own ``interactiveness`` column); with only ``pair_predictions``, interactiveness
AP alone. Ground truth: the images/instances/pairs tables (and scenes, for the per-split APs)
under ``processed``; params: ``evaluate`` and ``dataset``, as the stage.

Outputs, all under ``out`` (default reports/evaluate-imported/): metrics.json (flat keys, as
reports/metrics.json), report.txt, curves/*.csv and, when the stage's metrics file exists,
comparison.csv (metric, ours, imported, difference; fractions). The stage's own outputs are
never written: ``out`` may not be the stage's folder or hold its metrics file.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from pipeline import params as P
from pipeline import tables
from model.common.errors import UserError
from pipeline.inputs.json_reader import read_json
from pipeline.metrics.inputs import ImageIndex, split_image_ids

DEFAULT_OUT = Path("reports/evaluate-imported")
STAGE_OUT = Path("reports/evaluate")  # the evaluate stage's folder (dvc.yaml)
GT_TABLES = ("images", "instances", "pairs")


def read_table(path: Path, name: str) -> pd.DataFrame:
    """Table ``name`` from ``path``; a schema mismatch is one line naming the file and column."""
    try:
        return tables.read(path, name)
    except tables.TableError as exc:
        raise UserError(f"{exc}; other methods' files: python cli.py data import-preds") from None


def check_images(frame: pd.DataFrame, path: Path, index: ImageIndex, split: str) -> None:
    """Refuse a file none of whose rows is on an evaluated image (a key mismatch); count the
    rows outside the split, which the evaluators ignore."""
    outside = int((index.codes(frame["image_id"]) < 0).sum())
    if len(frame) and outside == len(frame):
        raise UserError(f"{path}: none of its {len(frame)} rows is on a '{split}' image (ids like "
                        f"'{frame['image_id'].iloc[0]}', the images table has ids like '{index.ids[0]}')")
    if outside:
        print(f"evaluate: {path}: {outside} of {len(frame)} rows are on images outside the '{split}' split, ignored")


def guard_stage_outputs(out: Path, stage_metrics: Path) -> None:
    """Refuse an output folder that would overwrite the evaluate stage's outputs."""
    if out.resolve() == STAGE_OUT.resolve() or (out / "metrics.json").resolve() == stage_metrics.resolve():
        raise UserError(f"--out {out}: the evaluate stage writes there; choose another folder (default {DEFAULT_OUT})")


def score(params_path: Path, predictions: Path | None, pair_predictions: Path | None,
          processed: Path) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """(metrics, curves) of the given files, evaluated as the stage does."""
    from pipeline.evaluate import read_tables
    from pipeline.evaluate_core import EvaluateConfig, evaluate, evaluate_pairs

    if predictions is None and pair_predictions is None:
        raise UserError("give --predictions and/or --pair-predictions")
    cfg = P.section("evaluate", EvaluateConfig, params_path)
    ds = P.section("dataset", P.DatasetConfig, params_path)
    preds = read_table(predictions, "predictions") if predictions is not None else None
    pairs = read_table(pair_predictions, "pair_predictions") if pair_predictions is not None else None
    t, scenes = read_tables(processed, GT_TABLES)
    index = split_image_ids(t["images"], cfg.split)
    for frame, path in ((preds, predictions), (pairs, pair_predictions)):
        if frame is not None:
            check_images(frame, path, index, cfg.split)
    gt = (t["images"], t["instances"], t["pairs"], scenes, ds.format, cfg)
    if preds is None:
        return evaluate_pairs(pairs, *gt)
    return evaluate(preds, *gt, pair_predictions_df=pairs, dataset_root=Path(ds.root))


def run(params_path: Path, predictions: Path | None, pair_predictions: Path | None,
        processed: Path = Path("data/processed"), out: Path = DEFAULT_OUT,
        stage_metrics: Path = Path("reports/metrics.json")) -> dict[str, float]:
    """Score the files, write OUT/{metrics.json, report.txt, curves/}, print the headline numbers
    and, when ``stage_metrics`` exists, a side-by-side table (also OUT/comparison.csv)."""
    from pipeline.metrics.report import text_report, write_outputs

    guard_stage_outputs(out, stage_metrics)
    metrics, curves = score(params_path, predictions, pair_predictions, processed)
    write_outputs(metrics, curves, out / "metrics.json", out / "curves", out / "report.txt")
    names = ", ".join(str(p) for p in (predictions, pair_predictions) if p is not None)
    print(f"evaluate: {names} -> {out}/metrics.json")
    print(text_report(metrics), end="")
    ours = read_metrics(stage_metrics)
    if ours is not None:
        table = side_by_side(ours, metrics)
        tables.atomic_write(out / "comparison.csv", lambda tmp: table.to_csv(tmp, index=False))
        print(comparison_text(table, stage_metrics, ours, metrics))
    return metrics


def read_metrics(path: Path) -> dict[str, float] | None:
    """A metrics JSON (null -> NaN); None when absent or unreadable (no comparison then)."""
    if not path.is_file():
        return None
    try:
        raw = read_json(path, "metrics file")
        return {k: math.nan if v is None else float(v) for k, v in raw.items()}  # type: ignore[union-attr]
    except (UserError, ValueError, TypeError, AttributeError) as exc:
        print(f"evaluate: {path}: unreadable metrics ({exc}); no side-by-side table")
        return None


def headline(key: str) -> bool:
    """Metrics worth a row in the side-by-side table: mAPs and APs, not per body part."""
    return (key.endswith("_map") or key.endswith("/ap")) and "/part/" not in key


def side_by_side(ours: dict[str, float], imported: dict[str, float]) -> pd.DataFrame:
    """metric, ours, imported, difference (imported - ours), for the headline metrics both have,
    in the stage's order."""
    keys = [k for k in ours if k in imported and headline(k)]
    a = [ours[k] for k in keys]
    b = [imported[k] for k in keys]
    return pd.DataFrame({"metric": keys, "ours": a, "imported": b, "difference": [y - x for x, y in zip(a, b)]})


def comparison_text(table: pd.DataFrame, stage_metrics: Path, ours: dict[str, float],
                    imported: dict[str, float]) -> str:
    """The side-by-side table in percent, as papers print it."""
    if table.empty:
        return f"no metric in common with {stage_metrics} (another dataset or no interactiveness scores?)"
    pct = lambda x, sign="": "n/a" if math.isnan(x) else f"{100 * x:{sign}.2f}"  # noqa: E731
    lines = [f"{'(%)':<36}{'ours':>9}{'imported':>10}{'diff':>9}"]
    lines += [f"{r.metric:<36}{pct(r.ours):>9}{pct(r.imported):>10}{pct(r.difference, '+'):>9}"
              for r in table.itertuples()]
    n_ours, n_imp = ours.get("n_images"), imported.get("n_images")
    if n_ours != n_imp:
        lines.append(f"note: {stage_metrics} covers {n_ours} images, the imported run {n_imp}: not the same test set")
    return "\n".join([f"side by side with {stage_metrics}:", *lines])
