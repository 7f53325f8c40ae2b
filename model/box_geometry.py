"""The one box-geometry module: conversions, areas and (generalised) IoU, on torch tensors
(matcher, losses, post-processing, NMS) and on numpy arrays (``*_np``: evaluation, scene
statistics, pair NMS). Boxes are ``x1, y1, x2, y2`` unless a name says ``cxcywh``.

Conventions are parameters, never hidden: ``plus_one`` is the inclusive-pixel convention of
the official evaluators (ho-rcnn, vsrl_eval: width = x2 - x1 + 1), which also leave an inverted
box's area negative (``clip_areas=False``); everything else is continuous with clipped areas
(TIN/BPM, torchvision). An empty or NaN union gives IoU 0 in the ``*_np`` functions and in
:func:`pairwise_iou_or_zero`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def cxcywh_to_xyxy(b: Tensor) -> Tensor:
    """[..., 4] centre/size boxes -> [..., 4] corner boxes."""
    cx, cy, w, h = b.unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def xyxy_to_cxcywh(b: Tensor) -> Tensor:
    """[..., 4] corner boxes -> [..., 4] centre/size boxes."""
    x1, y1, x2, y2 = b.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def area(b: Tensor) -> Tensor:
    """[..., 4] corner boxes -> [...] areas (0 for inverted boxes)."""
    return (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)


def pairwise_iou(a: Tensor, b: Tensor, eps: float = 1e-7) -> tuple[Tensor, Tensor]:
    """IoU and union of every box of ``a`` [..., N, 4] with every box of ``b`` [..., M, 4]
    (leading dims broadcast, e.g. one image per batch row): ([..., N, M], [..., N, M])."""
    lt = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])  # [..., N, M, 2]
    rb = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])  # [..., N, M, 2]
    inter = (rb - lt).clamp(min=0).prod(-1)  # [..., N, M]
    union = area(a)[..., :, None] + area(b)[..., None, :] - inter
    return inter / union.clamp(min=eps), union


def pairwise_iou_or_zero(a: Tensor, b: Tensor, eps: float = 1e-12) -> Tensor:
    """:func:`pairwise_iou` [..., N, M], 0 where the union is empty or NaN (NaN boxes match
    nothing). ``eps`` floors the divisor; 0 divides by the union as it is (torchvision)."""
    iou, union = pairwise_iou(a, b, eps)
    return torch.where(union > 0, iou, torch.zeros_like(iou))


def pairwise_giou(a: Tensor, b: Tensor, eps: float = 1e-7) -> Tensor:
    """Generalised IoU of every box of ``a`` [..., N, 4] with every box of ``b`` [..., M, 4]:
    [..., N, M] (leading dims broadcast)."""
    iou, union = pairwise_iou(a, b, eps)
    lt = torch.minimum(a[..., :, None, :2], b[..., None, :, :2])
    rb = torch.maximum(a[..., :, None, 2:], b[..., None, :, 2:])
    hull = (rb - lt).clamp(min=0).prod(-1)  # [..., N, M] smallest enclosing box
    return iou - (hull - union) / hull.clamp(min=eps)


def elementwise_giou(a: Tensor, b: Tensor, eps: float = 1e-7) -> Tensor:
    """Generalised IoU of matching rows of ``a`` and ``b`` [N, 4]: [N] (no N x N matrix)."""
    lt = torch.maximum(a[:, :2], b[:, :2])
    rb = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area(a) + area(b) - inter
    hull = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).clamp(min=0).prod(-1)
    return inter / union.clamp(min=eps) - (hull - union) / hull.clamp(min=eps)


def area_np(b: np.ndarray, plus_one: bool = False, clip: bool = True) -> np.ndarray:
    """[..., 4] boxes -> [...] areas, in the boxes' dtype; ``clip``: 0 for inverted boxes."""
    one = b.dtype.type(1) if plus_one else None
    w, h = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    if one is not None:
        w, h = w + one, h + one
    return np.clip(w, 0, None) * np.clip(h, 0, None) if clip else w * h


def intersection_np(a: np.ndarray, b: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """Intersection areas of boxes ``a`` [..., 4] and ``b`` [..., 4], broadcast against each
    other (``a[:, None]``, ``b[None]`` for every pair): [...]."""
    w = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    h = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    if plus_one:
        one = a.dtype.type(1)
        w, h = w + one, h + one
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def iou_np(a: np.ndarray, b: np.ndarray, plus_one: bool = False, clip_areas: bool = True) -> np.ndarray:
    """IoU of boxes ``a`` [..., 4] and ``b`` [..., 4] broadcast against each other: [...],
    in the inputs' dtype; 0 where the union is empty or NaN (never a match)."""
    inter = intersection_np(a, b, plus_one)
    union = area_np(a, plus_one, clip_areas) + area_np(b, plus_one, clip_areas) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)
