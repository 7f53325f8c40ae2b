"""Validation during training (the engine's ``validate`` callback, model/engine.py), on the split
carved from the training set; the AP and the pair matching are pipeline/metrics'.

- stage 1: ``int_ap``, interactiveness AP with the TIN++ protocol (reference notes §6.1): all
  queries of all images ranked by p_int, a prediction is a true positive when its best ground
  truth pair by min(IoU_h, IoU_o) reaches 0.5 and is still unused; 11-point AP at the exact
  tenths k / 10 (metrics.ap.TENTHS, as the evaluate stage); ground truth = the interactive
  pairs (decision 11; a pair without object is matched on the human box alone).
- stage 2: ``hoi_map``, mean over the (verb, object) classes present in the split of the same
  pair AP, with score = p_verb x p_object and the predicted object class (argmax) required to
  match, as QPIC's evaluator.

These are model-selection signals, computed in original-image pixels without the +1 pixel
convention; the reported numbers come from the evaluate stage.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from model.box_geometry import cxcywh_to_xyxy
from model.common.progress import bar
from pipeline.metrics import ap as apm
from pipeline.metrics.matching import BestMatch, best_match, first_come_true_positives, rank_order


def _to_pixels(boxes: Tensor, size: Tensor) -> Tensor:
    """Relative cx, cy, w, h [..., 4] -> x1, y1, x2, y2 pixels of an (h, w) image."""
    h, w = size.unbind(-1)
    scale = torch.stack([w, h, w, h], -1).to(boxes.dtype)
    return cxcywh_to_xyxy(boxes) * scale


@torch.no_grad()
def collect(net: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, np.ndarray]:
    """Run ``net`` over ``loader``: per query (``q_*``) and per ground-truth pair (``g_*``)
    image position, boxes [., 8] (human then object, original pixels) and scores/labels."""
    q: dict[str, list] = {k: [] for k in ("img", "boxes", "obj_prob", "obj_label", "int", "verb")}
    g: dict[str, list] = {k: [] for k in ("img", "boxes", "obj_label", "int", "verbs")}
    n = 0
    for batch in bar(loader, desc="validation", unit="batch", leave=False):
        batch = batch.to(device)
        out = net(batch.images, batch.pixel_mask, batch.part_masks)
        B, Q = out["pred_obj_logits"].shape[:2]
        orig = torch.stack([t["orig_size"] for t in batch.targets])[:, None, :]  # [B, 1, 2]
        boxes = torch.cat([_to_pixels(out["pred_sub_boxes"].float(), orig),
                           _to_pixels(out["pred_obj_boxes"].float(), orig)], -1)  # [B, Q, 8]
        prob, label = out["pred_obj_logits"].float().softmax(-1)[..., :-1].max(-1)  # [B, Q]
        q["img"].append(np.repeat(np.arange(n, n + B), Q))
        q["boxes"].append(boxes.flatten(0, 1).cpu().numpy())
        q["obj_prob"].append(prob.flatten().cpu().numpy())
        q["obj_label"].append(label.flatten().cpu().numpy())
        if "pred_int_logits" in out:
            q["int"].append(out["pred_int_logits"].float().sigmoid().flatten().cpu().numpy())
        if "pred_verb_logits" in out:
            q["verb"].append(out["pred_verb_logits"].float().sigmoid().flatten(0, 1).cpu().numpy())
        for i, t in enumerate(batch.targets):
            size = t["orig_size"][None]
            g["img"].append(np.full(len(t["obj_labels"]), n + i))
            gb = torch.cat([_to_pixels(t["sub_boxes"], size), _to_pixels(t["obj_boxes"], size)], -1)
            gb[~t["has_obj"], 4:] = 0  # no object: matched on the human box only
            g["boxes"].append(gb.cpu().numpy())
            g["obj_label"].append(t["obj_labels"].cpu().numpy())
            g["int"].append(t["interactive"].cpu().numpy())
            g["verbs"].append(t["verbs"].cpu().numpy())
        n += B
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0)  # noqa: E731
    return {**{f"q_{k}": cat(v) for k, v in q.items()}, **{f"g_{k}": cat(v) for k, v in g.items()}}


def pair_match(img: np.ndarray, boxes: np.ndarray, g_img: np.ndarray, g_boxes: np.ndarray) -> BestMatch:
    """Each predicted pair's best ground truth of its image by min(IoU_h, IoU_o) (IoU_h alone
    for a ground truth without object, whose object box is all zeros); ties: the earlier one.
    ``boxes`` [N, 8] / ``g_boxes`` [M, 8]: human then object box, pixels."""
    no_obj = ~g_boxes[:, 4:].any(-1)
    both = best_match(img, (boxes[:, :4], boxes[:, 4:]), np.where(no_obj, -1, g_img),
                      (g_boxes[:, :4], g_boxes[:, 4:]), plus_one=False)
    human = best_match(img, (boxes[:, :4],), np.where(no_obj, g_img, -1), (g_boxes[:, :4],), plus_one=False)
    take = (human.gt >= 0) & ((both.gt < 0) | (human.overlap > both.overlap)
                              | ((human.overlap == both.overlap) & (human.gt < both.gt)))
    return BestMatch(np.where(take, human.gt, both.gt), np.where(take, human.overlap, both.overlap))


def pair_ap(scores: np.ndarray, img: np.ndarray, boxes: np.ndarray, g_img: np.ndarray, g_boxes: np.ndarray,
            thresh: float = 0.5) -> float:
    """TIN++ matching: each prediction (by descending score, ties in input order) takes its
    best ground truth (:func:`pair_match`); a TP when that overlap >= ``thresh`` and no
    better-ranked prediction took it. 11-point AP at k / 10; NaN without ground truth."""
    match = pair_match(img, boxes, g_img, g_boxes)
    order = rank_order(scores, None)
    tp = first_come_true_positives(order, match.gt, (match.gt >= 0) & (match.overlap >= thresh))
    pr = apm.ranked_pr(np.zeros(len(order), dtype=np.int64), tp[order], np.array([len(g_img)], dtype=np.float64))
    return float(apm.eleven_point_ap(pr, apm.TENTHS)[0])


def interactiveness_ap(c: dict[str, np.ndarray]) -> float:
    gt = c["g_int"] > 0
    return pair_ap(c["q_int"], c["q_img"], c["q_boxes"], c["g_img"][gt], c["g_boxes"][gt])


def hoi_map(c: dict[str, np.ndarray]) -> float:
    """Mean pair AP over the (verb, object) classes that have ground truth in the split."""
    g_pair, g_verb = np.nonzero(c["g_verbs"])
    classes = np.unique(np.stack([g_verb, c["g_obj_label"][g_pair]], 1), axis=0)
    aps = []
    for verb, obj in classes:
        qs = c["q_obj_label"] == obj
        gs = g_pair[(g_verb == verb) & (c["g_obj_label"][g_pair] == obj)]
        score = c["q_verb"][qs, verb] * c["q_obj_prob"][qs]
        aps.append(pair_ap(score, c["q_img"][qs], c["q_boxes"][qs], c["g_img"][gs], c["g_boxes"][gs]))
    return float(np.mean(aps)) if aps else float("nan")


def validate_stage1(net: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
    return {"int_ap": interactiveness_ap(collect(net, loader, device))}


def validate_stage2(net: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
    return {"hoi_map": hoi_map(collect(net, loader, device))}
