"""Box conversions and (generalised) IoU on torch tensors, shared by the matcher, the losses and
the validation metric. Boxes are ``x1, y1, x2, y2`` unless a name says ``cxcywh``."""

from __future__ import annotations

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
