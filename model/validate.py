"""Validation metrics computed during training, on the split carved from the training set.

- stage 1: ``int_ap``, interactiveness AP with the TIN++ protocol (reference notes §6.1): all
  queries of all images ranked by p_int, a prediction is a true positive when its best ground
  truth pair by min(IoU_h, IoU_o) reaches 0.5 and is still unused; 11-point AP; ground truth =
  the interactive pairs (decision 11).
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

from model.box_geometry import cxcywh_to_xyxy, iou_np

RECALL_POINTS = np.linspace(0, 1, 11)


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
    from model.common.progress import bar

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


def pair_overlap(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """min(IoU_h, IoU_o) of predicted [N, 8] vs ground-truth [M, 8] pairs (IoU_h alone for a
    ground truth without object, whose object box is all zeros)."""
    ih, io = iou_np(pred[:, None, :4], gt[None, :, :4]), iou_np(pred[:, None, 4:], gt[None, :, 4:])
    no_obj = ~gt[:, 4:].any(-1)
    return np.where(no_obj[None, :], ih, np.minimum(ih, io))


def voc11(tp: np.ndarray, npos: int) -> float:
    """11-point interpolated AP of a ranked true-positive vector."""
    if npos == 0:
        return float("nan")
    ctp = np.cumsum(tp)
    rec, prec = ctp / npos, ctp / np.arange(1, len(tp) + 1)
    return float(np.mean([prec[rec >= t].max() if (rec >= t).any() else 0.0 for t in RECALL_POINTS]))


def pair_ap(scores: np.ndarray, img: np.ndarray, boxes: np.ndarray, g_img: np.ndarray, g_boxes: np.ndarray,
            thresh: float = 0.5) -> float:
    """TIN++ matching: each prediction (by descending score) takes its best ground truth of the
    image by pair overlap; a TP when that overlap >= ``thresh`` and the ground truth is unused."""
    order = np.argsort(-scores, kind="stable")
    best = np.full(len(scores), -1)
    best_ov = np.zeros(len(scores))
    for i in np.unique(img):  # one overlap matrix per image, not per prediction
        p, gi = np.flatnonzero(img == i), np.flatnonzero(g_img == i)
        if len(gi):
            ov = pair_overlap(boxes[p], g_boxes[gi])
            best[p], best_ov[p] = gi[ov.argmax(1)], ov.max(1)
    used = np.zeros(len(g_img), dtype=bool)
    tp = np.zeros(len(order))
    for rank, k in enumerate(order):  # sequential by nature: a ground truth is used once
        if best[k] >= 0 and best_ov[k] >= thresh and not used[best[k]]:
            used[best[k]] = True
            tp[rank] = 1
    return voc11(tp, len(g_img))


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
