"""HICO-DET HOI detection mAP, the official ho-rcnn protocol (evaluation-protocols.md §1).

Per HOI class (600), all detections of the test set are ranked by score; each takes the ground
truth pair of its class and image with the largest min(IoU_h, IoU_o) (first wins ties) and is a
TP when that value is >= 0.5 and the pair is still unmatched; duplicates are FPs with no retry;
detections in images without ground truth of the class are FPs. 11-point AP; Full / Rare /
Non-rare are plain means. Known Object keeps, for class c with object o, only detections in
images known to contain o. Other published routes are :data:`ROUTES` (§2.6).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from model.common import labels
from model.common.errors import UserError
from pipeline.metrics import ap as apm
from pipeline.metrics.inputs import HUMAN_COLS, OBJECT_COLS, ImageIndex, PairGroundTruth, boxes_of, int_or_missing
from pipeline.metrics.matching import TieRule, best_match, first_come_true_positives, rank_order, tie_keys

IOU_THRESHOLD = 0.5
ClassSet = Literal["with_gt", "all"]


@dataclass(frozen=True)
class HicoProtocol:
    """The knobs that move HICO-DET numbers between published routes (§2.6).

    ``iou_plus_one``: inclusive-pixel IoU (ho-rcnn, QPIC) or continuous (TIN/BPM, UPT).
    ``round_detections`` / ``shift_detections``: the MATLAB conversion scripts round boxes and
    ho-rcnn then adds 1 to all 8 coordinates. ``per_class_cap``: keep the top N per class
    (conversion scripts and the BPM notebook: 19,999), applied before the Known-Object filter.
    ``per_image_top_k``: keep the top K triplets per image (QPIC/CDN: 100).
    ``score_images_without_gt``: official yes (their detections are FPs); QPIC never sees them.
    ``known_object_from_pairs``: the BPM notebook derives Known Object from box annotations
    even when image-level labels exist. ``recall_thresholds``: the 11-point AP's thresholds,
    "k*0.1" (ho-rcnn under Octave, QPIC) or "k/10" (the BPM notebook's ``calc_ap``), see
    ap.ELEVEN_POINT_THRESHOLDS.
    """

    iou_plus_one: bool = True
    round_detections: bool = False
    shift_detections: float = 0.0
    per_class_cap: int | None = None
    per_image_top_k: int | None = None
    score_images_without_gt: bool = True
    known_object_from_pairs: bool = False
    recall_thresholds: Literal["k*0.1", "k/10"] = "k*0.1"

    def thresholds(self) -> np.ndarray:
        return apm.TENTHS if self.recall_thresholds == "k/10" else apm.ELEVEN_POINT_THRESHOLDS


ROUTES: dict[str, HicoProtocol] = {
    # ho-rcnn's rules on detections in the ground truth's own pixel frame (no shift), as QPIC
    # feeds them; no cap, no top-k inside the evaluator.
    "official": HicoProtocol(),
    "qpic": HicoProtocol(per_image_top_k=100, score_images_without_gt=False),
    "bpm_notebook": HicoProtocol(iou_plus_one=False, per_class_cap=19_999, known_object_from_pairs=True,
                                 recall_thresholds="k/10"),
    "matlab_conversion": HicoProtocol(round_detections=True, shift_detections=1.0, per_class_cap=19_999),
}
Route = Literal["official", "qpic", "bpm_notebook", "matlab_conversion"]


@dataclass(frozen=True)
class HoiDetections:
    """Scored HOI triplets: image code, boxes [N, 4] float64 (x1, y1, x2, y2 pixels), HOI id."""

    image: np.ndarray
    human: np.ndarray
    obj: np.ndarray
    score: np.ndarray
    hoi: np.ndarray

    @classmethod
    def from_predictions(cls, df: pd.DataFrame, index: ImageIndex) -> HoiDetections:
        """Rows of a predictions table on the evaluated images with a HOI class: ``hoi_id``, or
        when that is null the class of (verb_id, category_id)."""
        image = index.codes(df["image_id"])
        hoi = _hoi_ids(df)
        keep = (image >= 0) & (hoi > 0)
        return cls(image[keep], boxes_of(df, HUMAN_COLS)[keep], boxes_of(df, OBJECT_COLS)[keep],
                   df["score"].to_numpy(np.float64)[keep], hoi[keep])

    def subset(self, mask: np.ndarray) -> HoiDetections:
        return HoiDetections(self.image[mask], self.human[mask], self.obj[mask], self.score[mask], self.hoi[mask])


@dataclass(frozen=True)
class HicoModeResult:
    """One evaluation mode ("default" or "known_object")."""

    mode: str
    per_class: pd.DataFrame  # hoi_id, verb, object, rare, npos, n_detections, n_tp, ap, recall
    curve: pd.DataFrame  # recall, precision: mean interpolated precision over the classes
    means: dict[str, float]  # full_map, rare_map, non_rare_map, full_mrec, rare_mrec, non_rare_mrec


def _hoi_ids(df: pd.DataFrame) -> np.ndarray:
    """[N] HOI id per row, -1 where neither hoi_id nor a valid (verb_id, category_id) gives one."""
    hoi = int_or_missing(df, "hoi_id")
    missing = hoi <= 0
    if missing.any() and {"verb_id", "category_id"} <= set(df.columns):
        lab = labels.hico()
        lut = np.full((max(lab.verb_names) + 1, max(lab.object_names) + 1), -1, dtype=np.int64)
        for h, v in lab.hoi_verb.items():
            lut[v, lab.hoi_object[h]] = h
        verb, obj = int_or_missing(df, "verb_id"), int_or_missing(df, "category_id")
        ok = missing & (verb >= 0) & (verb < lut.shape[0]) & (obj >= 0) & (obj < lut.shape[1])
        hoi[ok] = lut[verb[ok], obj[ok]]
    return hoi


def hoi_object_column() -> np.ndarray:
    """[601] column (position in ascending COCO-id order) of each HOI id's object; [0] = -1."""
    lab = labels.hico()
    col = {c: i for i, c in enumerate(lab.object_coco_ids)}
    out = np.full(max(lab.hoi_object) + 1, -1, dtype=np.int64)
    for h, o in lab.hoi_object.items():
        out[h] = col[o]
    return out


def known_object_table(n_images: int, gt: PairGroundTruth, image_labels: pd.DataFrame | None = None,
                       index: ImageIndex | None = None) -> np.ndarray:
    """[I, 80] bool: image i is known to contain object column o.

    From image-level labels (``image_labels``: image_id, hoi_id positives of HICO-DET's
    ``anno.mat``) when given, as ho-rcnn does; otherwise the approximation of decision 10 and
    the BPM/TIN notebook: the objects of the image's annotated pairs.
    """
    obj_col = hoi_object_column()
    table = np.zeros((n_images, len(labels.hico().object_coco_ids)), dtype=bool)
    if image_labels is not None:
        assert index is not None, "image labels need the image index"
        image = index.codes(image_labels["image_id"])
        hoi = image_labels["hoi_id"].to_numpy(np.int64)
        ok = image >= 0
        table[image[ok], obj_col[hoi[ok]]] = True
    else:
        ok = gt.label > 0
        table[gt.image[ok], obj_col[gt.label[ok]]] = True
    return table


def read_hico_image_labels(anno_mat: Path, split: Literal["train", "test"] = "test") -> pd.DataFrame:
    """Positive image-level HOI labels (value 1) of HICO-DET's ``anno.mat``: image_id, hoi_id.

    ``anno_<split>`` is a 600 x n_images matrix (1 positive, 0 ambiguous, -1 negative, NaN
    unknown) whose columns follow ``list_<split>`` (file names; the image id is the stem).
    """
    from scipy.io import loadmat

    try:
        mat = loadmat(str(anno_mat), squeeze_me=True)
        names = [Path(str(np.asarray(n).item() if np.ndim(n) else n)).stem for n in np.ravel(mat[f"list_{split}"])]
        anno = np.asarray(mat[f"anno_{split}"], dtype=np.float64)
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"{anno_mat}: cannot read HICO-DET image labels ({exc})") from None
    if anno.shape != (600, len(names)):
        raise UserError(f"{anno_mat}: anno_{split} has shape {anno.shape}, expected (600, {len(names)})")
    hoi, img = np.nonzero(anno == 1)
    return pd.DataFrame({"image_id": np.asarray(names, dtype=object)[img], "hoi_id": hoi + 1})


def evaluate_hico(dets: HoiDetections, gt: PairGroundTruth, n_images: int, protocol: HicoProtocol = ROUTES["official"],
                  ko_table: np.ndarray | None = None, class_set: ClassSet = "with_gt",
                  curve_points: int = 101, ties: TieRule = "input_order") -> dict[str, HicoModeResult]:
    """Default mode, plus Known Object when ``ko_table`` ([I, 80] bool) is given.

    ``ties``: order of equal scores, "input_order" (the official stable sort: the order of
    ``dets``) or "image_box" (image code, then box coordinates; see matching.TieKeys).

    ``class_set``: "with_gt" averages over the classes with ground truth in the evaluated
    images (on the real test split that is all 600), "all" over all 600 (absent ones AP 0).
    """
    classes = _class_list(gt, class_set)
    class_pos = np.full(max(labels.hico().hoi_verb) + 1, -1, dtype=np.int64)
    class_pos[classes] = np.arange(len(classes))
    dets = _prepare(dets, gt, protocol, class_pos, ties)
    gt_pos = class_pos[np.clip(gt.label, 0, None)]
    npos = np.bincount(gt_pos[gt_pos >= 0], minlength=len(classes)).astype(np.float64)
    match = best_match(dets.hoi * n_images + dets.image, (dets.human, dets.obj),
                       gt.label * n_images + gt.image, (gt.human, gt.obj), protocol.iou_plus_one)
    qualifies = (match.gt >= 0) & (match.overlap >= IOU_THRESHOLD)
    group = class_pos[dets.hoi]
    order = rank_order(dets.score, tie_keys(ties, dets.image, (dets.human, dets.obj)), group)
    if protocol.per_class_cap is not None:
        order = order[_rank_within(group[order]) < protocol.per_class_cap]
    modes = {"default": order}
    if ko_table is not None:
        modes["known_object"] = order[ko_table[dets.image[order], hoi_object_column()[dets.hoi[order]]]]
    return {name: _score_mode(name, o, group, match.gt, qualifies, npos, classes, curve_points, protocol.thresholds())
            for name, o in modes.items()}


def _class_list(gt: PairGroundTruth, class_set: ClassSet) -> np.ndarray:
    """Sorted HOI ids that the means run over."""
    if class_set == "all":
        return np.array(sorted(labels.hico().hoi_verb), dtype=np.int64)
    return np.unique(gt.label[gt.label > 0])


def _prepare(dets: HoiDetections, gt: PairGroundTruth, protocol: HicoProtocol, class_pos: np.ndarray,
             ties: TieRule) -> HoiDetections:
    """Apply the route's input rules: GT-less images, top-k (over all of an image's triplets, as
    QPIC's), then the class filter, rounding and shift."""
    if not protocol.score_images_without_gt:
        dets = dets.subset(np.isin(dets.image, gt.image))
    if protocol.per_image_top_k is not None:
        order = rank_order(dets.score, tie_keys(ties, dets.image, (dets.human, dets.obj)), dets.image)
        top = np.zeros(len(order), dtype=bool)
        top[order[_rank_within(dets.image[order]) < protocol.per_image_top_k]] = True
        dets = dets.subset(top)
    known = (dets.hoi >= 0) & (dets.hoi < len(class_pos))
    dets = dets.subset(known & (class_pos[np.where(known, dets.hoi, 0)] >= 0))
    human, obj = dets.human, dets.obj
    if protocol.round_detections:  # MATLAB round: half away from zero
        human, obj = (np.sign(b) * np.floor(np.abs(b) + 0.5) for b in (human, obj))
    if protocol.shift_detections:
        human, obj = human + protocol.shift_detections, obj + protocol.shift_detections
    return replace(dets, human=human, obj=obj)


def _rank_within(sorted_group: np.ndarray) -> np.ndarray:
    """0-based position of each element inside its run of equal values (input sorted by group)."""
    n = len(sorted_group)
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]]) if n else np.zeros(0, np.int64)
    return np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))


def _score_mode(mode: str, order: np.ndarray, group: np.ndarray, gt_id: np.ndarray, qualifies: np.ndarray,
                npos: np.ndarray, classes: np.ndarray, curve_points: int, thresholds: np.ndarray) -> HicoModeResult:
    """TP flags, PR and AP of one mode's ranked detections."""
    tp = first_come_true_positives(order, gt_id, qualifies)
    pr = apm.ranked_pr(group[order], tp[order], npos)
    ap = np.nan_to_num(apm.eleven_point_ap(pr, thresholds), nan=0.0)
    recall = np.nan_to_num(pr.final_recall(), nan=0.0)
    lab = labels.hico()
    per_class = pd.DataFrame({
        "hoi_id": classes,
        "verb": [lab.verb_names[lab.hoi_verb[h]] for h in classes],
        "object": [lab.object_names[lab.hoi_object[h]] for h in classes],
        "rare": np.isin(classes, list(lab.rare_hoi_ids)),
        "npos": npos.astype(np.int64),
        "n_detections": np.bincount(group[order], minlength=len(classes)),
        "n_tp": pr.n_true_positives(),
        "ap": ap,
        "recall": recall,
    })
    grid = np.linspace(0.0, 1.0, curve_points)
    present = npos > 0
    precision = apm.interpolated_precision(pr, grid)[present].mean(axis=0) if present.any() else np.zeros(len(grid))
    curve = pd.DataFrame({"recall": grid, "precision": precision})
    return HicoModeResult(mode, per_class, curve, _means(per_class))


def _means(per_class: pd.DataFrame) -> dict[str, float]:
    """Full / Rare / Non-rare mean AP and mean final recall (NaN for an empty subset)."""
    out = {}
    for name, sel in (("full", slice(None)), ("rare", per_class["rare"]), ("non_rare", ~per_class["rare"])):
        sub = per_class.loc[sel]
        out[f"{name}_map"] = float(sub["ap"].mean()) if len(sub) else float("nan")
        out[f"{name}_mrec"] = float(sub["recall"].mean()) if len(sub) else float("nan")
    return out
