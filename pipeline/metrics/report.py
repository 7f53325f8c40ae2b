"""Metric names, PR-curve rows and the human-readable report.

Metrics are one flat ``{name: float}`` dict whose names explain themselves, e.g.
``hico/default/full_map``, ``hico/known_object/rare_map``, ``interactiveness/ap``,
``interactiveness/crowded/ap``, ``interactiveness/part/hand/ap``,
``vcoco/scenario1/role_map_24``. Values are fractions in [0, 1]; NaN where undefined (written
as null in JSON). Curves are ``{name: DataFrame}`` with ``recall`` and ``precision`` columns
(interpolated precision on a recall grid), one CSV per curve for DVC plots; per-class tables
ride along in the same dict.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from pipeline.metrics.hico import HicoModeResult
from pipeline.metrics.interactiveness_ap import ApResult
from pipeline.metrics.vcoco import VcocoResult
from pipeline.tables import atomic_write, write_json


def hico_metrics(results: dict[str, HicoModeResult]) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """hico/<mode>/{full,rare,non_rare}_{map,mrec}, hico/<mode>/n_classes; curves and per-class tables."""
    metrics, curves = {}, {}
    for mode, res in results.items():
        metrics.update({f"hico/{mode}/{k}": v for k, v in res.means.items()})
        metrics[f"hico/{mode}/n_classes"] = float(len(res.per_class))
        curves[f"hico_{mode}_pr"] = res.curve
        curves[f"hico_{mode}_per_class"] = res.per_class
    return metrics, curves


def interactiveness_metrics(results: dict[str, ApResult], prefix: str = "interactiveness"
                            ) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """<prefix>/ap, <prefix>/max_recall, <prefix>/<subset>/ap ...; one curve per entry."""
    metrics, curves = {}, {}
    for name, res in results.items():
        key = prefix if name == "all" else f"{prefix}/{name}"
        metrics[f"{key}/ap"] = res.ap
        metrics[f"{key}/max_recall"] = res.max_recall
        metrics[f"{key}/n_gt"] = float(res.n_gt)
        curves[key.replace("/", "_") + "_pr"] = res.curve
    return metrics, curves


def vcoco_metrics(result: VcocoResult) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """vcoco/agent_map, vcoco/scenario{1,2}/role_map_{25,24}; the per-role table."""
    return {f"vcoco/{k}": v for k, v in result.means().items()}, {"vcoco_per_role": result.table}


def text_report(metrics: dict[str, float]) -> str:
    """A few lines for people (percentages, as papers print them)."""
    pct = lambda k: "   n/a" if k not in metrics or _nan(metrics[k]) else f"{100 * metrics[k]:6.2f}"  # noqa: E731
    lines: list[str] = []
    if any(k.startswith("hico/") for k in metrics):
        lines += ["HICO-DET mAP (%)           Full    Rare  Non-rare   mRec"]
        for mode, title in (("default", "Default"), ("known_object", "Known Object")):
            if f"hico/{mode}/full_map" in metrics:
                p = f"hico/{mode}/"
                lines.append(f"  {title:<20} {pct(p + 'full_map')}  {pct(p + 'rare_map')}  {pct(p + 'non_rare_map')}"
                             f"  {pct(p + 'full_mrec')}")
        if metrics.get("hico/known_object/from_image_labels") == 0.0:
            lines.append("  (Known Object approximated from annotated pairs: no image-level labels given)")
    if any(k.startswith("vcoco/") for k in metrics):
        lines += ["V-COCO AP (%)              agent   role S1 (25 / 24)   role S2 (25 / 24)",
                  f"  {'':<20} {pct('vcoco/agent_map')}    {pct('vcoco/scenario1/role_map_25')} / "
                  f"{pct('vcoco/scenario1/role_map_24')}     {pct('vcoco/scenario2/role_map_25')} / "
                  f"{pct('vcoco/scenario2/role_map_24')}"]
    lines += _interactiveness_lines(metrics, pct)
    return "\n".join(lines) + "\n"


def _interactiveness_lines(metrics: dict[str, float], pct) -> list[str]:
    if "interactiveness/ap" not in metrics:
        return []
    recall = pct("interactiveness/max_recall").strip()
    lines = [f"Interactiveness AP (%)  {pct('interactiveness/ap')}  (max recall {recall})"]
    subsets = sorted({k.split("/")[1] for k in metrics if k.startswith("interactiveness/") and k.count("/") == 2
                      and not k.split("/")[1].startswith("not_") and k.endswith("/ap")})
    for s in subsets:
        if f"interactiveness/not_{s}/ap" in metrics:
            lines.append(f"  {s:<12} {pct(f'interactiveness/{s}/ap')}   not {s}: {pct(f'interactiveness/not_{s}/ap')}")
    parts = [k.split("/")[2] for k in metrics if k.startswith("interactiveness/part/") and k.endswith("/ap")]
    if parts:
        by_part = ", ".join(f"{p} {pct(f'interactiveness/part/{p}/ap').strip()}" for p in parts)
        lines.append(f"  by part score: {by_part}")
    if "interactiveness/authors_gt/ap" in metrics:
        lines.append(f"  against the authors' GT file: {pct('interactiveness/authors_gt/ap').strip()}")
    return lines


def _nan(x: float) -> bool:
    return isinstance(x, float) and math.isnan(x)


def write_outputs(metrics: dict[str, float], curves: dict[str, pd.DataFrame], metrics_path: Path,
                  curves_dir: Path, report_path: Path | None = None, tables_dir: Path | None = None) -> list[Path]:
    """metrics JSON (NaN -> null), one CSV per curve/table, optional text report; atomic writes.
    With ``tables_dir`` the per-class tables go there and ``curves_dir`` holds only the PR
    curves (recall, precision columns: the DVC plots)."""
    clean = {k: (None if _nan(v) else v) for k, v in metrics.items()}
    written = [write_json(clean, metrics_path)]
    for name, frame in curves.items():
        is_curve = {"recall", "precision"} <= set(frame.columns)
        path = Path(curves_dir if is_curve or tables_dir is None else tables_dir) / f"{name}.csv"
        written.append(atomic_write(path, lambda tmp, f=frame: f.to_csv(tmp, index=False)))
    if report_path is not None:
        text = text_report(metrics)
        written.append(atomic_write(report_path, lambda tmp: Path(tmp).write_text(text)))
    return written
