"""Post-processing: raw outputs of the two networks -> HOI triplets (the ``predictions`` table).

Inputs (per batch): stage-2 outputs ``pred_obj_logits`` [B, Q, n_obj + 1] (last = no-object),
``pred_sub_boxes`` / ``pred_obj_boxes`` [B, Q, 4] (normalised cx, cy, w, h of the image),
``pred_verb_logits`` [B, Q, n_verb]; stage-1 outputs with the same box keys plus
``pred_int_logits`` [B, Q1] and ``pred_part_scores`` [B, Q1, 6] (sigmoid probabilities);
``orig_sizes`` [B, 2] (h, w) of the original images.

Steps (ARCHITECTURE decisions 1 and 2; official-code-notes §5):
1. boxes -> absolute x1, y1, x2, y2 pixels of the original image;
2. HOI score = sigmoid(verb) x object probability (softmax without no-object, max class), only
   for valid verb-object pairs (the correspondence matrix);
3. each stage-2 pair takes the interactiveness probability and part scores of the stage-1 pair
   with the largest min(IoU_h, IoU_o) (continuous IoU, first wins ties); when that overlap is
   below ``match_iou`` (0.5) no stage-1 pair describes it and ``unmatched`` decides its
   interactiveness: ``zero`` (stage 1 did not find the pair: not interactive), ``one`` (NIS
   leaves it alone) or ``keep_best`` (the nearest pair's value anyway, the former behaviour);
   the part scores stay the nearest pair's;
4. NIS: drop pairs with interactiveness < tau ("threshold", the headline setting), multiply
   the score by it ("product") or both ("both"); "auto" = the bundle stage chooses among the
   three and tau on the validation images (pipeline/bundle.py) and stores the choice
   (unresolved, it acts as "threshold");
5. pair NMS per HOI class within an image: a pair is suppressed by a better one when both
   human IoU and object IoU exceed the threshold (0.6);
6. keep the top-K triplets per image.
Ties everywhere: higher score first, then lower query index, then lower verb index.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import Tensor

from model.box_geometry import cxcywh_to_xyxy, iou_np, pairwise_iou_or_zero
from model.label_space import MISSING_OBJECT, LabelSpace
from model.common import labels
from model.common.section import Section

NUM_PART_GROUPS = 6
NMS_CHUNK_CELLS = 4_000_000  # groups x width^2 suppression cells held at once by pair NMS


class PostprocessConfig(Section):
    """NIS, pair NMS and top-K (params: postprocess; the tuned tau is stored in the bundle)."""

    nis: Literal["auto", "threshold", "product", "both", "off"] = "auto"  # auto: bundle chooses on validation
    nis_threshold: float = Field(0.0, ge=0.0, le=1.0)  # tau, chosen on validation (tune_nis_threshold)
    unmatched: Literal["zero", "one", "keep_best"] = "zero"  # stage-2 pair with no stage-1 pair >= match_iou
    match_iou: float = Field(0.5, ge=0.0, le=1.0)  # min(IoU_h, IoU_o) that makes a stage-1 pair describe it
    pair_nms_threshold: float | None = Field(0.6, gt=0.0, le=1.0)  # null: no pair NMS
    top_k: int | None = Field(100, ge=1)  # triplets kept per image; null: all


@dataclass(frozen=True)
class OutputSpace:
    """What a (verb index, object index) cell of the model means in dataset ids."""

    fmt: str
    object_ids: np.ndarray  # [n_obj] COCO id, MISSING_OBJECT (-1) for V-COCO's extra class
    verb_ids: np.ndarray  # [n_verb] HICO verb id 1..117 | V-COCO action id 1..26
    roles: tuple[str | None, ...]  # [n_verb] V-COCO role; None for HICO-DET and agent-only
    valid: np.ndarray  # [n_verb, n_obj] bool verb-object correspondence
    hoi_ids: np.ndarray  # [n_verb, n_obj] int64 HICO-DET HOI id, -1 where none / V-COCO

    @classmethod
    def of(cls, space: LabelSpace, correspondence: np.ndarray | None = None) -> OutputSpace:
        """From the model's label space. HICO-DET validity = its 600 classes; V-COCO has no
        shipped matrix, so every verb-role is valid with every object unless
        ``correspondence`` ([29, 80] as QPIC's corre_vcoco.npy, or [29, 81]) is given; the
        missing-object column is always valid."""
        objs = np.asarray(space.object_ids, dtype=np.int64)
        if space.format == "hico-det":
            lab = labels.hico()
            col = {c: i for i, c in enumerate(space.object_ids)}
            hoi = np.full((space.num_verbs, space.num_objects), -1, dtype=np.int64)
            for h, v in lab.hoi_verb.items():
                hoi[v - 1, col[lab.hoi_object[h]]] = h
            verbs = np.arange(1, space.num_verbs + 1)
            return cls(space.format, objs, verbs, (None,) * space.num_verbs, hoi > 0, hoi)
        v = labels.vcoco()
        verbs = np.array([v.action_id(a) for a, _ in v.verb_roles], dtype=np.int64)
        valid = np.ones((space.num_verbs, space.num_objects), dtype=bool)
        if correspondence is not None:
            valid[:, : correspondence.shape[1]] = np.asarray(correspondence) > 0
            valid[:, objs == MISSING_OBJECT] = True
        return cls(space.format, objs, verbs, tuple(r for _, r in v.verb_roles), valid,
                   np.full(valid.shape, -1, dtype=np.int64))


@dataclass(frozen=True)
class Candidates:
    """Every valid (image, query, verb) triplet before NIS / NMS / top-K, as flat arrays."""

    image_ids: tuple[str, ...]
    image: np.ndarray  # [N] int64 index into image_ids
    query: np.ndarray  # [N] int64
    verb: np.ndarray  # [N] int64 model verb index
    obj: np.ndarray  # [N] int64 model object index
    human: np.ndarray  # [N, 4] float32 pixels
    obj_box: np.ndarray  # [N, 4] float32 pixels
    score: np.ndarray  # [N] float32 verb x object probability
    interactiveness: np.ndarray  # [N] float32, NaN without stage 1
    parts: np.ndarray  # [N, 6] float32, NaN without stage 1
    overlap: np.ndarray | None = None  # [N] float32 min(IoU_h, IoU_o) with the stage-1 pair; None = all matched

    def subset(self, mask: np.ndarray) -> Candidates:
        f = lambda a: a[mask]  # noqa: E731
        return Candidates(self.image_ids, f(self.image), f(self.query), f(self.verb), f(self.obj), f(self.human),
                          f(self.obj_box), f(self.score), f(self.interactiveness), f(self.parts),
                          None if self.overlap is None else f(self.overlap))


def concat_candidates(parts: list[Candidates]) -> Candidates:
    """Join per-batch candidates (image indices re-based onto the joined id list)."""
    ids: list[str] = []
    shifted = []
    for c in parts:
        shifted.append(c.image + len(ids))
        ids.extend(c.image_ids)
    cat = lambda name: np.concatenate([getattr(c, name) for c in parts])  # noqa: E731
    overlap = None
    if any(c.overlap is not None for c in parts):
        overlap = np.concatenate([np.full(len(c.score), np.nan, np.float32) if c.overlap is None else c.overlap
                                  for c in parts])
    return Candidates(tuple(ids), np.concatenate(shifted), *(cat(n) for n in
                      ("query", "verb", "obj", "human", "obj_box", "score", "interactiveness", "parts")), overlap)


def boxes_to_pixels(boxes: Tensor, orig_sizes: Tensor) -> Tensor:
    """[B, Q, 4] normalised cx, cy, w, h -> [B, Q, 4] x1, y1, x2, y2 pixels; sizes [B, 2] (h, w)."""
    h, w = orig_sizes.to(boxes.dtype).unbind(-1)
    return cxcywh_to_xyxy(boxes) * torch.stack([w, h, w, h], -1)[:, None, :]


def match_stage1(h2: Tensor, o2: Tensor, h1: Tensor, o1: Tensor) -> Tensor:
    """[B, Q2] index of the stage-1 pair with the largest min(IoU_h, IoU_o) for each stage-2
    pair (decision 1); torch.argmax returns the first maximum, so ties go to the lower index."""
    return match_stage1_overlap(h2, o2, h1, o1)[0]


def match_stage1_overlap(h2: Tensor, o2: Tensor, h1: Tensor, o1: Tensor) -> tuple[Tensor, Tensor]:
    """(:func:`match_stage1`'s index [B, Q2], that pair's min(IoU_h, IoU_o) [B, Q2])."""
    overlap = torch.minimum(pairwise_iou_or_zero(h2, h1), pairwise_iou_or_zero(o2, o1))  # [B, Q2, Q1]
    idx = overlap.argmax(-1)
    return idx, overlap.gather(-1, idx[..., None])[..., 0]


@torch.no_grad()
def build_candidates(stage2: dict, stage1: dict | None, orig_sizes: Tensor, image_ids: list[str],
                     space: OutputSpace) -> Candidates:
    """Steps 1-3 of the module docstring for one batch."""
    prob, obj = stage2["pred_obj_logits"].float().softmax(-1)[..., :-1].max(-1)  # [B, Q]
    verb = stage2["pred_verb_logits"].float().sigmoid()  # [B, Q, V]
    h2 = boxes_to_pixels(stage2["pred_sub_boxes"].float(), orig_sizes)
    o2 = boxes_to_pixels(stage2["pred_obj_boxes"].float(), orig_sizes)
    b, q = prob.shape
    if stage1 is not None:
        h1 = boxes_to_pixels(stage1["pred_sub_boxes"].float(), orig_sizes)
        o1 = boxes_to_pixels(stage1["pred_obj_boxes"].float(), orig_sizes)
        idx, overlap = match_stage1_overlap(h2, o2, h1, o1)
        inter = stage1["pred_int_logits"].float().sigmoid().gather(1, idx)
        parts = stage1["pred_part_scores"].float().gather(1, idx[..., None].expand(-1, -1, NUM_PART_GROUPS))
    else:
        inter = torch.full((b, q), float("nan"))
        parts = torch.full((b, q, NUM_PART_GROUPS), float("nan"))
        overlap = torch.full((b, q), float("nan"))
    valid = torch.as_tensor(space.valid.T, device=obj.device)[obj]  # [B, Q, V]
    bi, qi, vi = (t.cpu().numpy() for t in valid.nonzero(as_tuple=True))
    np_ = lambda t: t.detach().cpu().numpy()  # noqa: E731
    obj_n, prob_n = np_(obj), np_(prob)
    return Candidates(
        tuple(map(str, image_ids)), bi.astype(np.int64), qi.astype(np.int64), vi.astype(np.int64),
        obj_n[bi, qi].astype(np.int64), np_(h2)[bi, qi], np_(o2)[bi, qi],
        (np_(verb)[bi, qi, vi] * prob_n[bi, qi]).astype(np.float32),
        np_(inter)[bi, qi].astype(np.float32), np_(parts)[bi, qi].astype(np.float32),
        np_(overlap)[bi, qi].astype(np.float32),
    )


def pair_nms(group: np.ndarray, score: np.ndarray, human: np.ndarray, obj: np.ndarray, threshold: float,
             tiebreak: np.ndarray | None = None) -> np.ndarray:
    """[N] bool keep mask of greedy pair NMS inside each ``group`` (image x HOI class).

    Greedy by score (ties by ``tiebreak``, then input order): a pair is suppressed by a kept,
    better pair of its group when human IoU > threshold and object IoU > threshold (continuous
    IoU; NaN boxes never suppress). Vectorised: groups are padded into buckets of
    power-of-two width W, their [G, W, W] suppression matrices built at once, and the greedy
    pass runs W steps over all groups of the bucket together.
    """
    n = len(group)
    tb = np.arange(n) if tiebreak is None else tiebreak
    order = np.lexsort((np.arange(n), tb, -np.asarray(score, np.float64), group))
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if n else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, n])
    keep = np.ones(n, dtype=bool)
    hs, os_ = human[order].astype(np.float64), obj[order].astype(np.float64)
    width = 2
    while n and width // 2 < sizes.max():
        sel = np.flatnonzero((sizes > width // 2) & (sizes <= width) & (sizes > 1))
        step = max(1, NMS_CHUNK_CELLS // (width * width))
        for i in range(0, len(sel), step):
            _nms_bucket(starts[sel[i:i + step]], sizes[sel[i:i + step]], width, hs, os_, threshold, keep)
        width *= 2
    out = np.empty(n, dtype=bool)
    out[order] = keep
    return out


def _nms_bucket(st: np.ndarray, sz: np.ndarray, width: int, hs: np.ndarray, os_: np.ndarray, thr: float,
                keep: np.ndarray) -> None:
    """Greedy NMS of groups (``st``, ``sz``) padded to ``width``; writes into ``keep`` (sorted order)."""
    col = np.arange(width)
    valid = col[None, :] < sz[:, None]  # [G, W]
    pos = np.where(valid, st[:, None] + col[None, :], st[:, None])
    h, o = hs[pos], os_[pos]  # [G, W, 4]
    sup = (iou_np(h[:, :, None], h[:, None]) > thr) & (iou_np(o[:, :, None], o[:, None]) > thr)
    sup &= np.triu(np.ones((width, width), dtype=bool), 1)[None] & valid[:, None, :]
    alive = valid.copy()
    for k in range(int(sz.max()) - 1):  # rank k is final once ranks < k are done
        alive &= ~(alive[:, k, None] & sup[:, k, :])
    keep[pos[valid]] = alive[valid]


def top_k_per_image(image: np.ndarray, score: np.ndarray, k: int, tiebreak: np.ndarray) -> np.ndarray:
    """[N] bool: among the rows of each image, the ``k`` best by score (ties by ``tiebreak``)."""
    order = np.lexsort((tiebreak, -np.asarray(score, np.float64), image))
    g = image[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.zeros(0, np.int64)
    rank = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    keep = np.zeros(len(g), dtype=bool)
    keep[order[rank < k]] = True
    return keep


def effective_interactiveness(c: Candidates, cfg: PostprocessConfig) -> np.ndarray:
    """[N] interactiveness after the ``unmatched`` rule (step 3): pairs whose best stage-1
    overlap is below ``match_iou`` get 0 (``zero``), 1 (``one``) or keep the nearest value."""
    if c.overlap is None or cfg.unmatched == "keep_best":
        return c.interactiveness
    lonely = c.overlap < cfg.match_iou  # NaN overlap (no stage 1) is never lonely
    return np.where(lonely, 0.0 if cfg.unmatched == "zero" else 1.0, c.interactiveness).astype(np.float32)


def apply_nis(c: Candidates, cfg: PostprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    """(keep mask, score) after NIS. NaN interactiveness (no stage 1) passes unchanged."""
    inter = effective_interactiveness(c, cfg)
    known = ~np.isnan(inter)
    keep = np.ones(len(c.score), bool)
    score = c.score
    if cfg.nis in ("threshold", "both", "auto"):  # auto not yet resolved by a bundle: threshold at tau
        keep = ~(known & (inter < cfg.nis_threshold))
    if cfg.nis in ("product", "both"):
        score = np.where(known, c.score * inter, c.score).astype(np.float32)
    return keep, score


def finalize(c: Candidates, space: OutputSpace, cfg: PostprocessConfig) -> pd.DataFrame:
    """Steps 4-6: NIS, pair NMS, top-K -> predictions table rows (sorted by image, score)."""
    keep, score = apply_nis(c, cfg)
    c = replace(c.subset(keep), score=score[keep])
    tiebreak = c.query * len(space.verb_ids) + c.verb
    if cfg.pair_nms_threshold is not None:
        cls = c.verb * len(space.object_ids) + c.obj
        group = c.image * (len(space.verb_ids) * len(space.object_ids)) + cls
        c = c.subset(pair_nms(group, c.score, c.human, c.obj_box, cfg.pair_nms_threshold, tiebreak))
        tiebreak = c.query * len(space.verb_ids) + c.verb
    if cfg.top_k is not None:
        c = c.subset(top_k_per_image(c.image, c.score, cfg.top_k, tiebreak))
    return predictions_frame(c, space)


def predictions_frame(c: Candidates, space: OutputSpace) -> pd.DataFrame:
    """Candidates -> rows of the ``predictions`` schema (pipeline/tables.py)."""
    order = np.lexsort((c.query * len(space.verb_ids) + c.verb, -c.score.astype(np.float64), c.image))
    c = c.subset(order)
    cat = space.object_ids[c.obj]
    missing = cat == MISSING_OBJECT
    obj_box = np.where(missing[:, None], np.nan, c.obj_box).astype(np.float32)
    hoi = space.hoi_ids[c.verb, c.obj]
    frame = pd.DataFrame({"image_id": np.asarray(c.image_ids, dtype=object)[c.image] if len(c.image) else [],
                          "query": c.query.astype(np.int32)})
    for j, name in enumerate(("hx1", "hy1", "hx2", "hy2")):
        frame[name] = c.human[:, j].astype(np.float32)
    for j, name in enumerate(("ox1", "oy1", "ox2", "oy2")):
        frame[name] = obj_box[:, j]
    frame["category_id"] = pd.array(np.where(missing, 0, cat), dtype="Int32")
    frame.loc[missing, "category_id"] = pd.NA
    frame["verb_id"] = space.verb_ids[c.verb].astype(np.int32)
    frame["hoi_id"] = pd.array(np.where(hoi > 0, hoi, 0), dtype="Int32")
    frame.loc[hoi <= 0, "hoi_id"] = pd.NA
    frame["role"] = pd.array([space.roles[v] for v in c.verb.tolist()], dtype="string")
    frame["score"] = c.score.astype(np.float32)
    frame["interactiveness"] = c.interactiveness.astype(np.float32)
    frame["part_scores"] = pd.Series(_part_lists(c.parts), index=frame.index, dtype=object)
    return frame


def _part_lists(parts: np.ndarray) -> list:
    """[N, 6] -> list column values (None where the scores are unknown)."""
    known = ~np.isnan(parts).any(axis=1)
    return [row if ok else None for row, ok in zip(list(parts.astype(np.float32)), known)]


def postprocess(stage2: dict, stage1: dict | None, orig_sizes: Tensor, image_ids: list[str], space: OutputSpace,
                cfg: PostprocessConfig) -> pd.DataFrame:
    """One batch of raw outputs -> predictions table rows (all six steps)."""
    return finalize(build_candidates(stage2, stage1, orig_sizes, image_ids, space), space, cfg)


@torch.no_grad()
def stage1_pairs(stage1: dict, orig_sizes: Tensor, image_ids: list[str], space: OutputSpace) -> pd.DataFrame:
    """Every stage-1 query as a scored pair (``pair_predictions`` schema): what the
    interactiveness AP ranks (BPM: all queries, no top-k, no NMS). The object category comes
    from stage 1's ``pred_obj_logits`` when present; pairs predicting V-COCO's missing-object
    class get NaN object boxes."""
    h = boxes_to_pixels(stage1["pred_sub_boxes"].float(), orig_sizes).cpu().numpy().reshape(-1, 4)
    o = boxes_to_pixels(stage1["pred_obj_boxes"].float(), orig_sizes).cpu().numpy().reshape(-1, 4)
    b, q = stage1["pred_int_logits"].shape
    cat = np.full(b * q, -2, dtype=np.int64)  # -2: unknown
    if "pred_obj_logits" in stage1:
        cat = space.object_ids[stage1["pred_obj_logits"].float()[..., :-1].argmax(-1).cpu().numpy().reshape(-1)]
    missing = cat == MISSING_OBJECT
    o = np.where(missing[:, None], np.nan, o)
    frame = pd.DataFrame({"image_id": np.repeat(np.asarray(list(map(str, image_ids)), dtype=object), q),
                          "query": np.tile(np.arange(q, dtype=np.int32), b)})
    for j, name in enumerate(("hx1", "hy1", "hx2", "hy2")):
        frame[name] = h[:, j].astype(np.float32)
    for j, name in enumerate(("ox1", "oy1", "ox2", "oy2")):
        frame[name] = o[:, j].astype(np.float32)
    frame["category_id"] = pd.array(np.where(cat > 0, cat, 0), dtype="Int32")
    frame.loc[cat <= 0, "category_id"] = pd.NA
    frame["interactiveness"] = stage1["pred_int_logits"].float().sigmoid().cpu().numpy().reshape(-1).astype(np.float32)
    parts = list(stage1["pred_part_scores"].float().cpu().numpy().reshape(-1, NUM_PART_GROUPS))
    frame["part_scores"] = pd.Series(parts, index=frame.index, dtype=object)
    return frame


@dataclass(frozen=True)
class PostProcess:
    """A stage's post-processor (DETR's ``PostProcess``), returned by ``model.build.build`` and
    rebuilt from a bundle by the evaluate, predict and bundle stages.

    Per batch, :meth:`pairs` turns stage-1 outputs into ``pair_predictions`` rows and
    :meth:`candidates` turns stage-2 outputs (with stage 1's) into triplet candidates; once per
    split, :meth:`finalize` applies NIS, pair NMS and top-K (``cfg``) to the joined candidates.
    """

    labels: LabelSpace
    cfg: PostprocessConfig = PostprocessConfig()

    @cached_property
    def space(self) -> OutputSpace:
        """The label space in dataset ids (built when first needed)."""
        return OutputSpace.of(self.labels)

    def pairs(self, stage1: dict, orig_sizes: Tensor, image_ids: list[str]) -> pd.DataFrame:
        return stage1_pairs(stage1, orig_sizes, image_ids, self.space)

    def candidates(self, stage2: dict, stage1: dict | None, orig_sizes: Tensor, image_ids: list[str]) -> Candidates:
        return build_candidates(stage2, stage1, orig_sizes, image_ids, self.space)

    def finalize(self, candidates: Candidates | list[Candidates]) -> pd.DataFrame:
        joined = concat_candidates(candidates) if isinstance(candidates, list) else candidates
        return finalize(joined, self.space, self.cfg)
