"""Precision/recall from ranked true-positive flags, and average precision.

Every function works on many classes ("groups") at once: the ranked detections of all classes
are concatenated, sorted by class and then by rank, so one numpy pass serves 600 HICO-DET
classes. Nothing here knows about boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The 11 recall thresholds of PASCAL VOC 2007 AP, in the two floating-point spellings the
# references use. ELEVEN_POINT_THRESHOLDS = k * 0.1, what ho-rcnn's ``0:0.1:1`` gives under
# Octave and QPIC's ``np.arange(0, 1.1, 0.1)``: 0.30000000000000004, 0.6000000000000001,
# 0.7000000000000001. TENTHS = k / 10, the exact tenths of TIN++/BPM's ``calc_binary`` and
# ``calc_ap`` (``rec >= i / 10.0``). They differ only when a class's recall is exactly 3/10,
# 6/10 or 7/10 at some rank (e.g. 3 TPs of 10 positives): then that point counts for the
# threshold 0.3 under TENTHS and not under k * 0.1.
ELEVEN_POINT_THRESHOLDS = np.arange(0.0, 1.1, 0.1)
TENTHS = np.arange(11) / 10.0


@dataclass(frozen=True)
class RankedPR:
    """Cumulative precision and recall of ranked detections, grouped by class.

    Arrays of length N follow the ranked order: ``group`` is non-decreasing and, inside a
    group, detections are in rank order (best first). ``starts``/``ends`` [G] delimit each
    group's slice; ``npos`` [G] is the number of ground-truth instances per group.
    """

    group: np.ndarray  # [N] int64
    tp: np.ndarray  # [N] bool
    precision: np.ndarray  # [N] float64, TP / rank
    recall: np.ndarray  # [N] float64, TP / npos (NaN where npos == 0)
    npos: np.ndarray  # [G] float64
    starts: np.ndarray  # [G] int64
    ends: np.ndarray  # [G] int64

    @property
    def n_groups(self) -> int:
        return len(self.npos)

    def n_true_positives(self) -> np.ndarray:
        """[G] number of true positives per group."""
        return np.bincount(self.group[self.tp], minlength=self.n_groups)

    def final_recall(self) -> np.ndarray:
        """[G] recall after the last detection (0 without detections, NaN when npos == 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.n_true_positives() / self.npos


def ranked_pr(group: np.ndarray, tp: np.ndarray, npos: np.ndarray) -> RankedPR:
    """Cumulative precision/recall per group.

    ``group`` [N] must be sorted ascending with each group's detections in rank order;
    ``tp`` [N] flags true positives; ``npos`` [G] counts ground truth per group (G groups,
    ids 0..G-1). Precision is TP/(TP+FP) = TP/rank, recall TP/npos, as in every reference.
    """
    group = np.asarray(group, dtype=np.int64)
    tp = np.asarray(tp, dtype=bool)
    npos = np.asarray(npos, dtype=np.float64)
    counts = np.bincount(group, minlength=len(npos))
    ends = np.cumsum(counts)
    starts = ends - counts
    rank = np.arange(1, len(group) + 1) - starts[group]
    cum = np.cumsum(tp)
    before = np.concatenate(([0], cum))[starts]  # TPs of earlier groups
    ctp = (cum - before[group]).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = ctp / npos[group]
    return RankedPR(group, tp, ctp / rank, recall, npos, starts, ends)


def interpolated_precision(pr: RankedPR, thresholds: np.ndarray) -> np.ndarray:
    """[G, T] the largest precision among points with recall >= t, 0 when there is none.

    ``thresholds`` [T] must be ascending. Exact (no offsets added to the values): recall is
    non-decreasing inside a group, so the points below each threshold form a prefix whose
    length gives the first qualifying index; the maxima of the T+1 slices between those indices
    come from one ``np.maximum.reduceat``, and a reversed cumulative max over the (small)
    [G, T+1] table turns slice maxima into suffix maxima.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    n_groups, n_thr = pr.n_groups, len(thresholds)
    rec = np.nan_to_num(pr.recall, nan=-np.inf)  # npos == 0: no point qualifies
    # point i reaches thresholds 0..k_i-1 (k_i = #thresholds <= recall_i), so the points of a
    # group below threshold j are those with k_i <= j: a cumulative histogram over k gives the
    # first qualifying index of every (group, threshold) in one pass.
    k = np.searchsorted(thresholds, rec, side="right")
    hist = np.bincount(pr.group * (n_thr + 1) + k, minlength=n_groups * (n_thr + 1)).reshape(n_groups, n_thr + 1)
    first = pr.starts[:, None] + np.cumsum(hist, axis=1)[:, :n_thr]
    cuts = np.concatenate([pr.starts[:, None], first], axis=1)  # [G, T+1] slice starts
    stops = np.concatenate([first, pr.ends[:, None]], axis=1)
    nonempty = stops > cuts
    slice_max = np.full(cuts.shape, -np.inf)
    if nonempty.any():
        # Non-empty slices tile the ranked array without gaps, so reduceat over their
        # (strictly increasing) starts yields exactly each slice's maximum.
        slice_max[nonempty] = np.maximum.reduceat(pr.precision, cuts[nonempty])
    suffix = np.maximum.accumulate(slice_max[:, ::-1], axis=1)[:, ::-1]
    out = suffix[:, 1:]
    return np.where(np.isfinite(out), out, 0.0)


def eleven_point_ap(pr: RankedPR, thresholds: np.ndarray = ELEVEN_POINT_THRESHOLDS) -> np.ndarray:
    """[G] PASCAL VOC 2007 11-point AP: ``thresholds`` ELEVEN_POINT_THRESHOLDS (ho-rcnn
    ``VOCevaldet_bboxpair.m``, QPIC) or TENTHS (TIN++/BPM).

    A group without detections gets 0; a group with npos == 0 gets NaN.
    """
    ap = interpolated_precision(pr, thresholds).mean(axis=1)
    return np.where(pr.npos > 0, ap, np.nan)


def all_point_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC 2010+ all-point AP of one ranked list (V-COCO ``vsrl_eval.voc_ap``).

    Area under the precision envelope, summed where recall changes; sentinels (0, 0) at the
    start and (1, 0) at the end. [N] inputs in rank order.
    """
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
