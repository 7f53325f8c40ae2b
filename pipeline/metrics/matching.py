"""Box IoU, best-ground-truth search and the greedy true-positive rule.

Every HOI protocol here (HICO-DET, interactiveness, V-COCO) matches the same way: a detection
looks only at the ground truth of its own group (image, or image x class), picks the one with
the largest overlap (for pairs: the largest min(IoU_human, IoU_object); the first one wins
ties), and is a true positive when that overlap reaches the threshold and that ground truth
was not taken by a better-ranked detection. A detection never retries a second-best ground
truth, so the choice of ground truth does not depend on the matching state. That makes the
rule vectorisable: compute every detection's best ground truth once (a ragged join), then a
detection is a TP iff it is the first-ranked qualifying detection of its ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from model.box_geometry import iou_np

# Upper bound on detection x ground-truth candidate rows held at once by the ragged join
# (each row costs ~100 bytes per box pair); larger inputs are processed in chunks.
JOIN_CHUNK_ROWS = 4_000_000


@dataclass(frozen=True)
class BestMatch:
    """Each detection's best ground truth within its group.

    ``gt`` [N] int64 index into the ground-truth arrays, -1 when the group has no ground truth;
    ``overlap`` [N] float64 the min over box roles of the IoU with that ground truth (0 when
    none; NaN overlaps, from NaN boxes, count as 0).
    """

    gt: np.ndarray
    overlap: np.ndarray


def best_match(
    det_key: np.ndarray,
    det_boxes: Sequence[np.ndarray],
    gt_key: np.ndarray,
    gt_boxes: Sequence[np.ndarray],
    plus_one: bool,
) -> BestMatch:
    """For every detection, the ground truth of the same key with the largest min-IoU.

    ``det_key`` [N] / ``gt_key`` [M] int64 group keys (image, or class x image);
    ``det_boxes`` / ``gt_boxes``: one [N, 4] / [M, 4] array per box role (human, object), the
    overlap is the minimum over roles. Ties go to the ground truth that comes first in the
    input order (ho-rcnn's strict ``>``, vsrl_eval's ``argmax``). Vectorised: ground truth is
    sorted by key once, every detection is expanded to its key's ground-truth rows (ragged
    join), and segment maxima pick the winner.
    """
    det_key = np.asarray(det_key, dtype=np.int64)
    gt_order = np.argsort(np.asarray(gt_key, dtype=np.int64), kind="stable")
    sorted_keys = np.asarray(gt_key, dtype=np.int64)[gt_order]
    lo = np.searchsorted(sorted_keys, det_key, side="left")
    counts = np.searchsorted(sorted_keys, det_key, side="right") - lo
    best_gt = np.full(len(det_key), -1, dtype=np.int64)
    best_ov = np.zeros(len(det_key), dtype=np.float64)
    for sl in _chunks(counts):
        _join_chunk(sl, lo, counts, gt_order, det_boxes, gt_boxes, plus_one, best_gt, best_ov)
    return BestMatch(best_gt, best_ov)


def _chunks(counts: np.ndarray) -> list[slice]:
    """Split detections into slices whose joined row count stays under JOIN_CHUNK_ROWS."""
    if len(counts) == 0:
        return []
    cum = np.cumsum(counts)
    bounds = np.searchsorted(cum, np.arange(JOIN_CHUNK_ROWS, cum[-1], JOIN_CHUNK_ROWS))
    edges = np.unique(np.concatenate(([0], bounds, [len(counts)])))
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def _join_chunk(sl, lo, counts, gt_order, det_boxes, gt_boxes, plus_one, best_gt, best_ov):
    """Ragged join of detections ``sl`` with their key's ground truth; fills best_gt/best_ov."""
    cnt = counts[sl]
    det = np.repeat(np.arange(sl.start, sl.stop), cnt)  # one row per (detection, candidate)
    if len(det) == 0:
        return
    seg_start = np.cumsum(cnt) - cnt
    offset = np.arange(len(det)) - np.repeat(seg_start, cnt)
    gt = gt_order[np.repeat(lo[sl], cnt) + offset]  # within a key: input order
    ov = None
    for d, g in zip(det_boxes, gt_boxes):
        iou = iou_np(d[det], g[gt], plus_one, clip_areas=False)  # the official evaluators' areas
        ov = iou if ov is None else np.minimum(ov, iou)
    ov = np.nan_to_num(ov.astype(np.float64), nan=0.0)
    has = cnt > 0
    seg_max = np.maximum.reduceat(ov, seg_start[has])
    row_max = np.repeat(seg_max, cnt[has])
    hit = np.flatnonzero(ov == row_max)
    first = hit[np.r_[True, det[hit][1:] != det[hit][:-1]]]  # first maximal row per detection
    best_gt[det[first]] = gt[first]
    best_ov[det[first]] = ov[first]


TieRule = Literal["input_order", "image_box"]
TIE_RULES: tuple[str, ...] = ("input_order", "image_box")


@dataclass(frozen=True)
class TieKeys:
    """What orders detections with equal scores under the ``image_box`` rule: the image code
    (codes follow sorted image ids), then the box coordinates, human x1, y1, x2, y2 before
    object x1, y1, x2, y2. Detections equal in all of these are interchangeable, so results do
    not depend on the input order.

    The default rule (ARCHITECTURE decision 15) is ``input_order``: the official code's stable
    sort (MATLAB ``sort``), equal scores keep the order in which the detections are given;
    pass ``None`` as the tie keys of :func:`rank_order` for it (:func:`tie_keys` does).
    """

    image: np.ndarray  # [N] int64
    boxes: tuple[np.ndarray, ...]  # [N, 4] per box role

    def lexsort_keys(self, idx: np.ndarray) -> list[np.ndarray]:
        """np.lexsort keys (least significant first) of rows ``idx``."""
        return [b[idx, j] for b in reversed(self.boxes) for j in (3, 2, 1, 0)] + [self.image[idx]]

    def subset(self, idx: np.ndarray) -> TieKeys:
        return TieKeys(self.image[idx], tuple(b[idx] for b in self.boxes))


def tie_keys(rule: TieRule, image: np.ndarray, boxes: tuple[np.ndarray, ...]) -> TieKeys | None:
    """The tie keys of ``rule``: None (input order) or :class:`TieKeys` (image, boxes)."""
    if rule not in TIE_RULES:
        raise ValueError(f"unknown tie rule '{rule}' ({' | '.join(TIE_RULES)})")
    return TieKeys(image, boxes) if rule == "image_box" else None


def rank_order(score: np.ndarray, ties: TieKeys | None, group: np.ndarray | None = None,
               subset: np.ndarray | None = None) -> np.ndarray:
    """Indices of the detections (those where ``subset`` [N] bool is true, default all) sorted
    by group ascending, then score descending, then ties: input order when ``ties`` is None
    (stable sorts, the official rule), else :class:`TieKeys`.

    Two stable sorts give the (group, score) order; with tie keys only the detections inside
    tie blocks (same group and score) are then re-sorted, which is exact and much cheaper than
    a full lexicographic sort when ties are rare. NaN scores rank last, in input order.
    """
    idx = np.arange(len(score)) if subset is None else np.flatnonzero(subset)
    order = idx[np.argsort(-np.asarray(score, np.float64)[idx], kind="stable")]
    if group is not None:
        g = np.asarray(group)[order]
        small = g.min(initial=0) >= 0 and g.max(initial=0) < 2**15
        order = order[np.argsort(g.astype(np.int16) if small else g, kind="stable")]  # int16: radix sort
    if ties is None:
        return order
    s = np.asarray(score)[order]
    same = s[1:] == s[:-1]
    if group is not None:
        g = np.asarray(group)[order]
        same &= g[1:] == g[:-1]
    if same.any():
        tied = np.zeros(len(order), dtype=bool)
        tied[1:] |= same
        tied[:-1] |= same
        pos = np.flatnonzero(tied)
        sub = order[pos]
        keys = ties.lexsort_keys(sub) + [-np.asarray(score, np.float64)[sub]]
        if group is not None:
            keys.append(np.asarray(group)[sub])
        order[pos] = sub[np.lexsort(keys)]  # blocks keep their places, members get tie-key order
    return order


def first_come_true_positives(order: np.ndarray, gt: np.ndarray, qualifies: np.ndarray) -> np.ndarray:
    """[N] bool: detection is a TP iff it qualifies and is the best-ranked qualifying detection
    of its ground truth (later ones are duplicates, i.e. false positives).

    ``order`` [K] detection indices in rank order (only these are considered); ``gt`` [N]
    global ground-truth id of each detection's best match; ``qualifies`` [N] bool (overlap at
    or above the threshold and any protocol-specific condition).
    """
    tp = np.zeros(len(gt), dtype=bool)
    cand = order[qualifies[order]]
    _, first = np.unique(gt[cand], return_index=True)
    tp[cand[first]] = True
    return tp
