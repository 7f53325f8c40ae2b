"""Body-part saliency masks (Sec. 3.2-3.4, eqs. 1-6), vectorised over persons, queries, parts
and grid cells.

Polarity: every mask here is **visible** polarity, as in the paper (True = token attended,
False = masked). Only :func:`head_mask` turns a mask into PyTorch's attention polarity
(True = hidden). Masks live on the stride-32 feature grid, flattened row-major to ``HW``.

Rasterisation rules (decision 4): ``touch`` (default, as the released code): a cell is on when
the box touches it, floor(coordinate / stride) with both ends inclusive, so a part smaller than
a cell still lights one; ``corner``: the paper's eq. (1), a cell is on when its top-left corner
(index * stride) lies inside the box.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from model.common.body_parts import PART_TO_GROUP

Rule = Literal["touch", "corner"]
NUM_GROUPS = 6


def box_cells(boxes: Tensor, grid_hw: tuple[int, int], stride: int = 32, rule: Rule = "touch") -> Tensor:
    """Cells covered by boxes: [..., 4] (x1, y1, x2, y2 pixels) -> Bool[..., h, w].

    Non-finite coordinates give an empty mask (every comparison with NaN is False)."""
    h, w = grid_hw
    rows = torch.arange(h, device=boxes.device, dtype=boxes.dtype)
    cols = torch.arange(w, device=boxes.device, dtype=boxes.dtype)
    x1, y1, x2, y2 = boxes.unbind(-1)
    if rule == "touch":
        in_rows = _between(rows, torch.floor(y1 / stride), torch.floor(y2 / stride))
        in_cols = _between(cols, torch.floor(x1 / stride), torch.floor(x2 / stride))
    else:
        in_rows = _between(rows * stride, y1, y2)
        in_cols = _between(cols * stride, x1, x2)
    # outer product; a uint8 product is ~5x faster on CPU than a broadcast bool &
    cells = in_rows[..., :, None].to(torch.uint8) * in_cols[..., None, :].to(torch.uint8)
    return cells.view(torch.bool)  # [..., h, w]


def _between(index: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """index [n], lo/hi [...] -> Bool[..., n]: lo <= index <= hi."""
    return (index >= lo[..., None]) & (index <= hi[..., None])


def rasterize_part_masks(
    part_boxes: Tensor,
    image_index: Tensor,
    batch_size: int,
    grid_hw: tuple[int, int],
    stride: int = 32,
    rule: Rule = "touch",
) -> Tensor:
    """Eq. (1): the six group masks m_part^k of every image, union over its persons.

    part_boxes [N, 10, 4] (x1, y1, x2, y2 pixels in the network-input frame, HAKE part order),
    image_index [N] (image of each person in the batch) -> Bool[B, 6, h, w], True = covered
    by that body-part group of some person (visible polarity)."""
    h, w = grid_hw
    if part_boxes.shape[0] == 0:
        return torch.zeros(batch_size, NUM_GROUPS, h, w, dtype=torch.bool, device=part_boxes.device)
    cells = box_cells(part_boxes.float(), grid_hw, stride, rule).flatten(2).float()  # [N, 10, h*w]
    group = F.one_hot(torch.tensor(PART_TO_GROUP, device=part_boxes.device), NUM_GROUPS).float()  # [10, 6]
    per_person = torch.einsum("nps,pg->ngs", cells, group)  # [N, 6, h*w] counts
    per_image = per_person.new_zeros(batch_size, NUM_GROUPS, h * w).index_add_(0, image_index.long(), per_person)
    return (per_image > 0).view(batch_size, NUM_GROUPS, h, w)


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def box_masks(
    boxes: Tensor, valid_hw: Tensor, grid_hw: tuple[int, int], stride: int = 32, rule: Rule = "touch"
) -> Tensor:
    """Eq. (2): predicted boxes [B, ..., 4] (normalised cx, cy, w, h relative to each image's
    unpadded size ``valid_hw`` [B, 2] = (H, W) pixels) -> Bool[B, ..., h*w]."""
    scale = valid_hw.flip(-1).repeat(1, 2).float()  # [B, 4] = (W, H, W, H)
    scale = scale.view(scale.shape[0], *([1] * (boxes.dim() - 2)), 4)
    xyxy = cxcywh_to_xyxy(boxes.float()) * scale  # pixels of the network input (fp32 under AMP)
    return box_cells(xyxy, grid_hw, stride, rule).flatten(-2)


def any_(x: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    """``x.any(dim)`` for bool tensors, computed as a uint8 max: ~25x faster on CPU."""
    return x.view(torch.uint8).amax(dim, keepdim=keepdim).view(torch.bool)


def merged_layer_masks(part: Tensor, hum: Tensor, obj: Tensor, selected: Tensor, progressive: bool = True) -> Tensor:
    """Eqs. (3)-(6): the merged mask m_j^i of each masked layer j for one-time passing.

    part [B, 6, HW], hum/obj [B, Q, HW], selected n^{ik} [B, Q, 6] -> Bool[3, B, Q, HW].
    Because m_hum' and m_obj do not depend on k, max_k(m_j^{ik} n^{ik}) equals the formulas
    below whenever a query keeps a part; a query that keeps none gets m_hum' | m_obj in layer 1
    and m_obj in layers 2-3 instead of an all-hidden row (decision 5). ``progressive=False``
    (Table 5, "w/o progressive mask") uses eq. (4) in all three layers."""
    sel = selected_union(part, selected)  # [B, Q, HW] chosen parts of all persons
    out = torch.empty(3, *sel.shape, dtype=torch.bool, device=sel.device)  # written in place
    torch.bitwise_or(sel, obj, out=out[1])  # eq. 4
    if not progressive:
        out[0], out[2] = out[1], out[1]
        return out
    others = any_(part, 1)[:, None, :] & ~hum  # m_hum' = all parts minus the target's box
    torch.bitwise_or(others | sel, obj, out=out[0])  # eq. 3
    torch.bitwise_or(sel & hum, obj, out=out[2])  # eq. 5
    return out


def selected_union(part: Tensor, selected: Tensor) -> Tensor:
    """any_k(part_k & n^{ik}): part [B, 6, HW], selected [B, Q, 6] -> Bool[B, Q, HW].

    Each cell's parts are packed into a 6-bit code and each query's selection into a 6-bit
    mask, so the union is one byte-wise AND (about 2x faster than a [Q, 6] x [6, HW] matmul)."""
    bits = 2 ** torch.arange(NUM_GROUPS, dtype=torch.uint8, device=part.device)  # [6]
    code = (part.to(torch.uint8) * bits[None, :, None]).sum(1, dtype=torch.uint8)  # [B, HW]
    chosen = (selected.to(torch.uint8) * bits).sum(-1, dtype=torch.uint8)  # [B, Q]
    return (code[:, None, :] & chosen[:, :, None]).to(torch.bool)


def part_layer_masks(part: Tensor, hum: Tensor, obj: Tensor) -> Tensor:
    """Eqs. (3)-(5) per part, unmerged (six passes, "w/o one-time passing"):
    part [B, 6, HW], hum/obj [B, Q, HW] -> Bool[3, B, Q, 6, HW]."""
    p = part[:, None]  # [B, 1, 6, HW]
    h, o = hum[:, :, None], obj[:, :, None]  # [B, Q, 1, HW]
    others = any_(part, 1)[:, None, None, :] & ~h
    return torch.stack([others | p | o, p | o, (p & h) | o])


def ensure_visible(visible: Tensor, valid: Tensor) -> Tensor:
    """Hide padding and guarantee every row sees a token: visible [..., B, S, HW] and valid
    tokens [B, HW] -> [..., B, S, HW]. A row with nothing left (no persons, no object cell
    inside the image) falls back to every valid token, the unmasked attention of the image: a
    fully hidden softmax row would be NaN."""
    vis = visible & valid[:, None, :]
    empty = ~any_(vis, -1, keepdim=True)  # [..., B, S, 1]
    fallback = empty.view(torch.uint8) * valid[:, None, :].view(torch.uint8)  # u8: ~15x faster than bool &
    return vis | fallback.view(torch.bool)


def head_mask(visible: Tensor, heads: int) -> Tensor:
    """Visible [B, S, HW] -> hidden Bool[B * heads, S, HW] in nn.MultiheadAttention's layout
    (index b * heads + h), True = not attended."""
    b, s, n = visible.shape
    return (~visible)[:, None].expand(b, heads, s, n).reshape(b * heads, s, n)


def block_diagonal_hidden(passes: int, queries: int, device: torch.device | None = None) -> Tensor:
    """Self-attention mask [P*Q, P*Q] (True = hidden) keeping passes stacked along the query
    axis independent: a query only attends to the queries of its own pass."""
    group = torch.arange(passes, device=device).repeat_interleave(queries)
    return group[:, None] != group[None, :]


def select_parts(
    scores: Tensor, mode: Literal["fraction", "per_query_topk"], fraction: float = 0.25, topk: int = 3
) -> Tensor:
    """Filtering (Sec. 3.4, decision 5): p_part [B, Q, 6] -> n [B, Q, 6] (True = kept).

    ``fraction``: the top ``ceil(fraction * Q * 6)`` scores over all queries and parts of one
    image; ``per_query_topk``: the top ``topk`` parts of each query (the released code, k=3).
    Ties go to the lower flat index (stable sort). Hard selection: no gradient."""
    b, q, k = scores.shape
    flat = scores.detach().reshape(b, q * k) if mode == "fraction" else scores.detach()
    count = math.ceil(round(fraction * q * k, 6)) if mode == "fraction" else topk
    order = torch.sort(flat, dim=-1, descending=True, stable=True).indices
    positions = torch.arange(flat.shape[-1], device=flat.device).expand_as(order)
    rank = torch.empty_like(order).scatter_(-1, order, positions)  # rank of every score
    return (rank < count).reshape(b, q, k)
