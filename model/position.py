"""Fixed sine positional encodings: DETR's 2-D encoding from the padding mask, and the sine
embedding of box coordinates used by anchor-box queries."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def sine_position(mask: Tensor, dim: int, temperature: float = 10000.0) -> Tensor:
    """DETR's normalised sine encoding: padding mask [B, h, w] (True = padding) -> [B, h*w, dim].

    Coordinates are cumulative counts over the valid region, normalised to (0, 2*pi], so a
    padded image gets the same encoding on its valid cells as alone. Channels: (y, x) halves,
    each interleaving sin and cos.
    """
    valid = (~mask).float()
    y = valid.cumsum(1)  # [B, h, w]
    x = valid.cumsum(2)
    eps = 1e-6
    y = y / (y[:, -1:, :].clamp(min=1) + eps) * 2 * math.pi  # per column: / valid height
    x = x / (x[:, :, -1:].clamp(min=1) + eps) * 2 * math.pi  # per row: / valid width
    pos = torch.cat([_sine(y, dim // 2, temperature), _sine(x, dim // 2, temperature)], dim=-1)
    return pos.flatten(1, 2)  # [B, h*w, dim]


def _sine(coord: Tensor, n: int, temperature: float) -> Tensor:
    """[...] -> [..., n]: sin/cos pairs at geometrically spaced frequencies."""
    i = torch.arange(n, dtype=torch.float32, device=coord.device)
    freq = temperature ** (2 * (i // 2) / n)
    arg = coord[..., None] / freq  # [..., n]
    return torch.stack([arg[..., 0::2].sin(), arg[..., 1::2].cos()], dim=-1).flatten(-2)


def sine_boxes(boxes: Tensor, dim: int, temperature: float = 10000.0) -> Tensor:
    """Sine embedding of K normalised box coordinates [..., K] -> [..., dim]; each coordinate
    gets dim / K channels (anchor-box queries)."""
    k = boxes.shape[-1]
    return _sine(boxes * 2 * math.pi, dim // k, temperature).flatten(-2)
