"""Interactiveness AP, the TIN++ / BPM protocol (evaluation-protocols.md §4).

One class: every predicted (human, object) pair, ranked by its interactiveness score over the
whole evaluated set, takes the ground-truth pair of its image with the largest
min(IoU_h, IoU_o) (IoU without +1; the first wins ties) and is a TP when that is >= 0.5 and
the pair is unused; pairs in images without ground truth are FPs. 11-point AP at the exact tenths k / 10 of
``calc_binary`` (ap.TENTHS); ties in score keep the input order (decision 15); max recall is
reported too. Ground truth per decision 11: every annotated pair with an object and (HICO-DET)
a verb other than no_interaction, exact duplicates merged, near-duplicates kept.

The same matching serves the scene splits (detections and ground truth restricted to a subset
of images) and the per-part APs (pairs ranked by part score k), so it is computed once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model.common import labels
from pipeline.inputs import safe_pickle
from model.common.errors import UserError, quote_name
from pipeline.metrics import ap as apm
from pipeline.metrics.inputs import (HUMAN_COLS, OBJECT_COLS, ImageIndex, PairGroundTruth, boxes_of,
                                     pair_ground_truth, part_matrix)
from pipeline.metrics.matching import TieRule, best_match, first_come_true_positives, rank_order, tie_keys

IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class PairScores:
    """Predicted pairs: image code, boxes [N, 4] float64, interactiveness [N], part scores [N, 6]."""

    image: np.ndarray
    human: np.ndarray
    obj: np.ndarray
    score: np.ndarray
    parts: np.ndarray

    @classmethod
    def from_pair_predictions(cls, df: pd.DataFrame, index: ImageIndex) -> PairScores:
        """Rows of a pair_predictions table on the evaluated images that have an object box
        (V-COCO pairs predicting the missing-object class carry NaN boxes and are left out, as
        BPM drops object label 80)."""
        image = index.codes(df["image_id"])
        human, obj = boxes_of(df, HUMAN_COLS), boxes_of(df, OBJECT_COLS)
        keep = (image >= 0) & ~np.isnan(obj).any(axis=1)
        return cls(image[keep], human[keep], obj[keep], df["interactiveness"].to_numpy(np.float64)[keep],
                   part_matrix(df["part_scores"])[keep])


@dataclass(frozen=True)
class ApResult:
    """AP of one ranking; ``curve``: interpolated precision on a recall grid."""

    ap: float
    max_recall: float
    n_gt: int
    n_detections: int
    curve: pd.DataFrame


def interactiveness_ground_truth(pairs_df: pd.DataFrame, instances_df: pd.DataFrame, index: ImageIndex,
                                 dataset_format: str) -> PairGroundTruth:
    """Decision 11's ground truth: interactive pairs with an object, exact duplicates merged."""
    gt = pair_ground_truth(pairs_df, instances_df, index)
    keep = ~np.isnan(gt.obj).any(axis=1)
    if dataset_format == "hico-det":
        keep &= gt.verb != labels.hico().no_interaction_verb_id
    gt = gt.subset(keep)
    rows = np.concatenate([gt.image[:, None].astype(np.float64), gt.human, gt.obj], axis=1)
    _, first = np.unique(rows, axis=0, return_index=True)
    return gt.subset(np.sort(first))  # keep the first of identical rows, in input order


def read_authors_ground_truth(path: Path, index: ImageIndex) -> PairGroundTruth:
    """The authors' ``gt_binary_HICO_DET.pkl`` / ``gt_binary_VCOCO.pkl``: {int image number:
    [n, 8] hx1, hy1, hx2, hy2, ox1, oy1, ox2, oy2}. Our image ids map to those numbers by
    their trailing digits (``HICO_test2015_00000001`` -> 1, COCO file stems -> COCO id)."""
    raw = safe_pickle.load(path)  # restricted: a downloaded file runs no code
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a dict {{image number: [n, 8] boxes}}, found {type(raw).__name__}")
    number = {int(m.group(1)): code for code, i in enumerate(index.ids) if (m := re.search(r"(\d+)$", i))}
    image, boxes = [], []
    for key, rows in raw.items():
        if _image_number(key, path) in number:
            rows = _box_rows(rows, path, key)
            image.append(np.full(len(rows), number[int(key)]))
            boxes.append(rows)
    if not boxes:
        raise UserError(f"{path}: no image of the file matches the evaluated images")
    b = np.concatenate(boxes)
    none = np.full(len(b), -1)
    return PairGroundTruth(np.concatenate(image).astype(np.int64), b[:, :4], b[:, 4:], none, none)


class InteractivenessEvaluator:
    """Matches every predicted pair once; :meth:`ap` then ranks by any score on any image subset."""

    def __init__(self, dets: PairScores, gt: PairGroundTruth, n_images: int, ties: TieRule = "input_order"):
        self.dets, self.gt, self.n_images = dets, gt, n_images
        match = best_match(dets.image, (dets.human, dets.obj), gt.image, (gt.human, gt.obj), plus_one=False)
        self.gt_id = match.gt
        self.qualifies = (match.gt >= 0) & (match.overlap >= IOU_THRESHOLD)
        self.tie = tie_keys(ties, dets.image, (dets.human, dets.obj))

    def ap(self, score: np.ndarray | None = None, images: np.ndarray | None = None,
           curve_points: int = 101) -> ApResult:
        """AP ranking by ``score`` [N] (default: interactiveness) over the images where
        ``images`` [I] bool is true (default: all); NaN scores are left out."""
        score = self.dets.score if score is None else score
        det_in = ~np.isnan(score)
        gt_in = np.ones(len(self.gt.image), dtype=bool)
        if images is not None:
            det_in &= images[self.dets.image]
            gt_in = images[self.gt.image]
        order = rank_order(score, self.tie, subset=det_in)
        tp = first_come_true_positives(order, self.gt_id, self.qualifies)
        npos = np.array([gt_in.sum()], dtype=np.float64)
        pr = apm.ranked_pr(np.zeros(len(order), dtype=np.int64), tp[order], npos)
        grid = np.linspace(0.0, 1.0, curve_points)
        curve = pd.DataFrame({"recall": grid, "precision": apm.interpolated_precision(pr, grid)[0]})
        return ApResult(float(apm.eleven_point_ap(pr, apm.TENTHS)[0]), float(pr.final_recall()[0]), int(npos[0]), len(order), curve)


def evaluate_interactiveness(dets: PairScores, gt: PairGroundTruth, n_images: int,
                             splits: dict[str, np.ndarray] | None = None,
                             part_names: tuple[str, ...] = (), curve_points: int = 101,
                             ties: TieRule = "input_order") -> dict[str, ApResult]:
    """{"all": ..., "<split>": ..., "not_<split>": ..., "part/<name>": ...}.

    ``splits``: name -> [I] bool per image (e.g. crowded); each gives the AP on the flagged
    images and on the others. ``part_names``: rank by ``dets.parts[:, k]`` for k in order.
    """
    ev = InteractivenessEvaluator(dets, gt, n_images, ties)
    out = {"all": ev.ap(curve_points=curve_points)}
    for name, flag in (splits or {}).items():
        out[name] = ev.ap(images=flag, curve_points=curve_points)
        out[f"not_{name}"] = ev.ap(images=~flag, curve_points=curve_points)
    for k, name in enumerate(part_names):
        out[f"part/{name}"] = ev.ap(score=dets.parts[:, k], curve_points=curve_points)
    return out


def _image_number(key: object, path: Path) -> int:
    """A ground-truth key as an image number (int, or digits in a string)."""
    if isinstance(key, bool) or not isinstance(key, (int, str, bytes)):
        raise UserError(f"{path}: image key {quote_name(key)} is not an image number")
    try:
        return int(key)
    except ValueError:
        raise UserError(f"{path}: image key {quote_name(key)} is not an image number") from None


def _box_rows(rows: object, path: Path, key: object) -> np.ndarray:
    """One image's ground-truth pairs as finite [n, 8] float64 (hx1, hy1, hx2, hy2, ox1, ...)."""
    try:
        out = np.asarray(rows, dtype=np.float64).reshape(-1, 8)
    except (TypeError, ValueError):
        raise UserError(f"{path}: image {quote_name(key)}: boxes are not rows of 8 numbers") from None
    if not np.isfinite(out).all():
        raise UserError(f"{path}: image {quote_name(key)}: non-finite box coordinates")
    return out
