"""Elementwise loss functions used by the set criterion (no matching, no normalisation here:
each returns per-element losses that the criterion sums and divides by a batch-wide count)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def focal_terms(logits: Tensor, targets: Tensor, gamma: float = 2.0) -> Tensor:
    """CornerNet-style focal loss of independent sigmoids (QPIC's verb loss), per element:
    ``-(y (1-p)^g log p + (1-y) p^g log(1-p))``. Written with logsigmoid so that saturated
    logits stay finite."""
    p = logits.sigmoid()
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    pos = targets * (1 - p).pow(gamma) * log_p
    neg = (1 - targets) * p.pow(gamma) * log_not_p
    return -(pos + neg)


def bce_terms(logits: Tensor, targets: Tensor) -> Tensor:
    """Binary cross-entropy on logits, per element."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")


def weighted_ce_sum(logits: Tensor, labels: Tensor, class_weight: Tensor) -> Tensor:
    """Sum over rows of ``class_weight[label] * CE(logits, label)`` (the caller divides by the
    batch-wide sum of the weights, which is what a weighted mean-reduced CE computes)."""
    return F.cross_entropy(logits, labels, weight=class_weight, reduction="sum")


def part_label_loss(part_logits: Tensor, labels: Tensor) -> Tensor:
    """Body-part supervision (paper Sec. 5.3, the HAKE-supervised variant): BCE of the part
    scores p_part^k against part-level interactiveness labels, averaged over the labelled
    entries. part_logits [K, 6] (logits of the matched queries), labels [K, 6] (1 = part
    involved, 0 = not, NaN = unknown: rows without labels are ignored). 0 without labels."""
    known = ~labels.isnan()
    terms = F.binary_cross_entropy_with_logits(part_logits.float(), labels.nan_to_num(0.0).float(), reduction="none")
    return (terms * known).sum() / known.sum().clamp(min=1)


def weighted_ce_terms(logits: Tensor, labels: Tensor, class_weight: Tensor) -> Tensor:
    """``class_weight[label] * CE(logits, label)`` per row: logits [..., C], labels [...] ->
    [...] (summed per decoder layer by the criterion)."""
    flat = F.cross_entropy(logits.flatten(0, -2), labels.flatten(), weight=class_weight, reduction="none")
    return flat.view(labels.shape)
