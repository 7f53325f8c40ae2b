"""The evaluation the ``evaluate`` stage runs on post-processed predictions, and the
validation-time tuning of the NIS threshold.

``evaluate`` reads nothing but what it is given (plus, for V-COCO, the official annotation
files under the V-COCO root, and the optional files named in :class:`EvaluateConfig`), and
returns ``(metrics, curves)``: a flat dict of self-explaining metric names and a dict of
tables with ``recall`` / ``precision`` rows for DVC plots (see pipeline/metrics/report.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from model.common.errors import UserError
from pipeline.metrics import hico, report, vcoco, vcoco_data
from pipeline.metrics import interactiveness_ap as interactiveness
from pipeline.metrics.inputs import ImageIndex, pair_ground_truth, split_image_ids
from pipeline.metrics.matching import TieRule, first_come_true_positives, rank_order
from pipeline.params import Section
from pipeline.tables import PART_GROUP_NAMES


class EvaluateConfig(Section):
    """params: evaluate. Paths are relative to the working directory; null = not supplied."""

    split: str = "test"  # images-table split that is evaluated (every image of it, annotated or not)
    hico_route: hico.Route = "official"  # official | qpic | bpm_notebook | matlab_conversion
    class_set: hico.ClassSet = "with_gt"  # with_gt (= all 600 on the real test split) | all
    known_object_labels: Path | None = None  # HICO-DET anno.mat: Known Object from image-level labels
    interactiveness_gt: Path | None = None  # the authors' gt_binary_*.pkl, reported in addition
    scene_splits: tuple[str, ...] = ("crowded", "tiny", "occluded")  # boolean columns of the scenes table
    vcoco_root: Path | None = None  # folder holding data/vcoco, data/splits (default: dataset root)
    curve_points: int = Field(101, ge=2)  # recall grid of the PR curves
    ties: TieRule = "input_order"  # equal scores: input_order (official stable sort) | image_box


def evaluate(predictions_df: pd.DataFrame, images_df: pd.DataFrame, instances_df: pd.DataFrame,
             pairs_df: pd.DataFrame, scenes_df: pd.DataFrame | None, dataset_format: str, cfg: EvaluateConfig,
             *, pair_predictions_df: pd.DataFrame | None = None,
             dataset_root: Path | None = None) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """HOI metrics of ``dataset_format`` (hico-det: Default + Known Object mAP; v-coco: agent
    and role AP) and interactiveness AP (all, per scene split, per body part).

    ``pair_predictions_df``: every stage-1 pair (``pair_predictions`` schema), what the
    interactiveness AP should rank; when omitted, the distinct (image, query) pairs of
    ``predictions_df`` stand in (fewer pairs after NMS/top-K, so a lower bound on recall).
    """
    index = split_image_ids(images_df, cfg.split)
    metrics: dict[str, float] = {"n_images": float(len(index)), "n_predictions": float(len(predictions_df))}
    curves: dict[str, pd.DataFrame] = {}
    if dataset_format == "hico-det":
        m, c = _hico(predictions_df, pairs_df, instances_df, index, cfg)
    elif dataset_format == "v-coco":
        m, c = _vcoco(predictions_df, cfg, dataset_root)
    else:
        raise UserError(f"unknown dataset format '{dataset_format}' (hico-det | v-coco)")
    metrics.update(m)
    curves.update(c)
    pairs = pair_predictions_df if pair_predictions_df is not None else _pairs_from_predictions(predictions_df)
    m, c = _interactiveness(pairs, pairs_df, instances_df, scenes_df, index, dataset_format, cfg)
    metrics.update(m)
    curves.update(c)
    return metrics, curves


def evaluate_pairs(pair_predictions_df: pd.DataFrame, images_df: pd.DataFrame, instances_df: pd.DataFrame,
                   pairs_df: pd.DataFrame, scenes_df: pd.DataFrame | None, dataset_format: str,
                   cfg: EvaluateConfig) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """Interactiveness AP alone (all, per scene split, per body part) of a ``pair_predictions``
    table: what a file of ranked pairs without verbs (the paper's ``bst_result_binary.pkl``,
    imported) can be scored on. Same metric names as :func:`evaluate`."""
    index = split_image_ids(images_df, cfg.split)
    metrics = {"n_images": float(len(index)), "n_pair_predictions": float(len(pair_predictions_df))}
    m, curves = _interactiveness(pair_predictions_df, pairs_df, instances_df, scenes_df, index, dataset_format, cfg)
    return metrics | m, curves


def _hico(pred, pairs_df, instances_df, index, cfg):
    gt = pair_ground_truth(pairs_df, instances_df, index)
    protocol = hico.ROUTES[cfg.hico_route]
    labels_df = None
    if cfg.known_object_labels is not None and not protocol.known_object_from_pairs:
        labels_df = hico.read_hico_image_labels(cfg.known_object_labels)
    ko = hico.known_object_table(len(index), gt, labels_df, index)
    results = hico.evaluate_hico(hico.HoiDetections.from_predictions(pred, index), gt, len(index), protocol, ko,
                                 cfg.class_set, cfg.curve_points, cfg.ties)
    metrics, curves = report.hico_metrics(results)
    metrics["hico/known_object/from_image_labels"] = float(labels_df is not None)
    return metrics, curves


def _vcoco(pred, cfg, dataset_root):
    root = cfg.vcoco_root or dataset_root
    if root is None:
        raise UserError("V-COCO evaluation needs the official files: set evaluate.vcoco_root (or dataset.root)")
    gt = vcoco_data.load_vcoco_ground_truth(Path(root))
    result = vcoco.evaluate_vcoco(vcoco_data.detections_from_predictions(pred, gt), gt, ties=cfg.ties)
    metrics, curves = report.vcoco_metrics(result)
    metrics["vcoco/n_missing_role_objects"] = float(gt.n_missing_role_objects)
    return metrics, curves


def _pairs_from_predictions(pred: pd.DataFrame) -> pd.DataFrame:
    """One row per (image, query) of a predictions table: its boxes and interactiveness."""
    return pred.drop_duplicates(["image_id", "query"], keep="first")


def _interactiveness(pairs, pairs_df, instances_df, scenes_df, index, dataset_format, cfg):
    dets = interactiveness.PairScores.from_pair_predictions(pairs, index)
    if np.isnan(dets.score).all():
        return {}, {}  # no stage-1 scores: nothing to rank
    gt = interactiveness.interactiveness_ground_truth(pairs_df, instances_df, index, dataset_format)
    results = interactiveness.evaluate_interactiveness(
        dets, gt, len(index), _scene_flags(scenes_df, index, cfg.scene_splits), PART_GROUP_NAMES, cfg.curve_points,
        cfg.ties)
    metrics, curves = report.interactiveness_metrics(results)
    if cfg.interactiveness_gt is not None:
        authors = interactiveness.read_authors_ground_truth(cfg.interactiveness_gt, index)
        res = interactiveness.InteractivenessEvaluator(dets, authors, len(index), cfg.ties).ap(curve_points=cfg.curve_points)
        m, c = report.interactiveness_metrics({"all": res}, prefix="interactiveness/authors_gt")
        metrics.update(m)
        curves.update(c)
    return metrics, curves


def _scene_flags(scenes_df: pd.DataFrame | None, index: ImageIndex, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """{split name: [I] bool}; images without a scenes row count as not flagged."""
    if scenes_df is None:
        return {}
    missing = [n for n in names if n not in scenes_df.columns]
    if missing:
        raise UserError(f"scenes table: column(s) {missing} missing (evaluate.scene_splits)")
    code = index.codes(scenes_df["image_id"])
    ok = code >= 0
    out = {}
    for name in names:
        flag = np.zeros(len(index), dtype=bool)
        flag[code[ok]] = scenes_df[name].fillna(False).to_numpy(bool)[ok]
        out[name] = flag
    return out


@dataclass(frozen=True)
class NisTuning:
    """The chosen tau and the objective at every tried tau (columns: threshold, objective)."""

    threshold: float
    table: pd.DataFrame


Objective = Literal["hoi_map", "interactiveness_f1"]


def tune_nis_threshold(candidates, space, post_cfg, images_df: pd.DataFrame, instances_df: pd.DataFrame,
                       pairs_df: pd.DataFrame, split: str, objective: Objective = "hoi_map",
                       thresholds: np.ndarray | None = None, route: hico.Route = "official",
                       mode: str = "threshold") -> NisTuning:
    """Choose NIS's tau on a validation split (decision 2).

    ``candidates``: :class:`model.postprocess.Candidates` of the validation images (before
    NIS); ``split``: their split name in the images table. "hoi_map" re-runs NIS -> pair NMS
    -> top-K for every tau and keeps the one with the best HICO-DET Default mAP (ties: the
    smaller tau). "interactiveness_f1" keeps the tau that maximises F1 of "interactiveness >=
    tau" against the interactive ground-truth pairs (TIN++ matching); it also serves V-COCO.
    Interactiveness AP is no objective: cutting the ranked list's tail can only lower it.
    ``mode``: the NIS mode tau is tuned for (hoi_map only): threshold | both (tau grid) |
    product (no tau: one row, tau 0).
    """
    from model.postprocess import finalize

    index = split_image_ids(images_df, split)
    if objective == "interactiveness_f1":
        return _tune_f1(candidates, space, pairs_df, instances_df, index)
    if space.fmt != "hico-det":
        raise UserError("NIS tuning by HOI mAP is implemented for HICO-DET; use objective interactiveness_f1")
    if mode == "product":
        thresholds = np.array([0.0])
    elif thresholds is None:
        thresholds = np.round(np.arange(0.0, 1.0, 0.05), 2)
    gt = pair_ground_truth(pairs_df, instances_df, index)
    scores = []
    for tau in thresholds:
        cfg = post_cfg.model_copy(update={"nis": mode, "nis_threshold": float(tau)})
        pred = finalize(candidates, space, cfg)
        res = hico.evaluate_hico(hico.HoiDetections.from_predictions(pred, index), gt, len(index), hico.ROUTES[route])
        scores.append(res["default"].means["full_map"])
    table = pd.DataFrame({"threshold": thresholds, "objective": scores})
    return NisTuning(float(thresholds[int(np.nanargmax(scores))]), table)


def _tune_f1(candidates, space, pairs_df, instances_df, index) -> NisTuning:
    """F1 along the interactiveness ranking of the distinct (image, query) pairs: the prefix
    with score >= tau is what tau keeps, so one ranked pass gives F1 at every tau of the grid."""
    first = pd.DataFrame({"i": candidates.image, "q": candidates.query}).drop_duplicates().index.to_numpy()
    image = index.codes(np.asarray(candidates.image_ids, dtype=object)[candidates.image[first]])
    ok = image >= 0
    sel = first[ok]
    dets = interactiveness.PairScores(image[ok], candidates.human[sel].astype(np.float64),
                                      candidates.obj_box[sel].astype(np.float64),
                                      candidates.interactiveness[sel].astype(np.float64),
                                      candidates.parts[sel].astype(np.float64))
    gt = interactiveness.interactiveness_ground_truth(pairs_df, instances_df, index, space.fmt)
    ev = interactiveness.InteractivenessEvaluator(dets, gt, len(index))
    order = rank_order(dets.score, ev.tie)
    tp = first_come_true_positives(order, ev.gt_id, ev.qualifies)[order]
    ctp = np.cumsum(tp)
    precision = ctp / np.arange(1, len(tp) + 1)
    recall = ctp / max(len(gt.image), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    ranked = dets.score[order]
    grid = np.round(np.arange(0.0, 1.0, 0.01), 2)  # tau resolution 0.01 keeps the table short
    kept = np.searchsorted(-ranked, -grid, side="right")  # pairs with score >= tau: a prefix
    f1_at = np.where(kept > 0, f1[np.maximum(kept - 1, 0)], 0.0)
    table = pd.DataFrame({"threshold": grid, "objective": f1_at})
    return NisTuning(float(grid[int(np.argmax(f1_at))]), table)  # ties: the smaller tau
