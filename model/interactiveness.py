"""Interactiveness classifier (Sec. 3.2-3.4), the paper's contribution.

Inputs are the decoded pair embeddings D of the box detector, the encoder memory z, the six
body-part masks m_part^k of all persons (eq. 1) and each query's predicted human/object boxes
(eq. 2, detached: masks carry no gradient). Schemes (``ModelConfig.ablation``):

- one-time passing (``full``, ``no_progressive``): a one-layer decoder h (no mask) + FFN gives
  p_part [B, Q, 6]; filtering keeps n^{ik} (decision 5); merged mask (eq. 6) and merged query
  d_mer = d + sum_k d_part^k w^k (eq. 7, d_part^k = f_part^k(d), decision 6; w^k = n^k p_part^k
  literally, p_part^k with ``part_weighting: soft``, see :func:`part_weights`) go through
  the 3-layer masked decoder f_dec2 with progressive masks (eqs. 3-5) or eq. 4 everywhere;
  p_int = sigmoid(f_int(e_mer)).
- six passes (``intuitive``: m = m_part^k; ``no_saliency``: all-ones; ``no_one_time``:
  eqs. 3-5 per part) plus the unmasked pass E^0, stacked along the query axis with a
  block-diagonal self-attention mask so f_dec2 runs once; p^{ik} = sigmoid(f_int(concat(e^{ik},
  e^{i0}))), p_int = max_k p^{ik}.
- ``no_parts``: instance level only, one unmasked pass, p_int = sigmoid(f_int(e^0)).

Decoders follow DETR: zero content, D (or d_mer, or the part queries) as positional query.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from model.config import ModelConfig
from model.detector import MLP
from model.masks import (
    NUM_GROUPS, block_diagonal_hidden, box_masks, ensure_visible, head_mask,
    merged_layer_masks, part_layer_masks, select_parts,
)
from model.transformer import Decoder, DecoderLayer, xavier_init

ONE_TIME = ("full", "no_progressive")
PASSES = ("intuitive", "no_saliency", "no_one_time")


@dataclass
class Scene:
    """What the classifier reads besides D: encoder memory and pos [B, HW, C], valid tokens
    [B, HW] (True = inside the image), part masks [B, 6, HW] (visible polarity), valid image
    size [B, 2] (H, W pixels) and the feature grid (h, w)."""

    memory: Tensor
    pos: Tensor
    valid: Tensor
    part: Tensor
    valid_hw: Tensor
    grid_hw: tuple[int, int]


class PartQueries(nn.Module):
    """Six per-part FFNs f_part^k (two layers, ReLU) applied at once: [B, Q, C] -> [B, Q, 6, C]."""

    def __init__(self, d: int, parts: int = NUM_GROUPS) -> None:
        super().__init__()
        self.w1, self.w2 = nn.Parameter(torch.empty(parts, d, d)), nn.Parameter(torch.empty(parts, d, d))
        self.b1, self.b2 = nn.Parameter(torch.zeros(parts, d)), nn.Parameter(torch.zeros(parts, d))
        for k in range(parts):  # init-time loop: xavier per part, as DETR's Linear layers
            nn.init.xavier_uniform_(self.w1.data[k])
            nn.init.xavier_uniform_(self.w2.data[k])

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(torch.einsum("bqc,kcd->bqkd", x, self.w1) + self.b1)  # [B, Q, 6, C]
        return torch.einsum("bqkd,kde->bqke", h, self.w2) + self.b2


def part_weights(p_part: Tensor, selected: Tensor, mode: str = "literal") -> Tensor:
    """The weight of each d_part^k in eq. (7): p_part, n [B, Q, 6] -> [B, Q, 6].

    ``literal``: n^{ik} p_part^{ik} (the paper's text). Its gradient reaches p_part only
    through the parts already selected, so the top-k filter keeps whatever initialisation
    favoured (issue 13). ``soft``: p_part^{ik} for every part (n only on the masks): every
    part's score learns from the merged query. ``straight_through``: the literal value in the
    forward pass, the soft gradient in the backward pass (unselected parts get the gradient
    they would have if they were added with weight 0)."""
    n = selected.to(p_part.dtype)
    if mode == "literal":
        return n * p_part
    if mode == "soft":
        return p_part
    if mode == "straight_through":
        return n * p_part + (1 - n) * (p_part - p_part.detach())
    raise ValueError(f"unknown part weighting {mode!r}")


def merge_queries(d: Tensor, part_queries: Tensor, selected: Tensor, p_part: Tensor, mode: str = "literal") -> Tensor:
    """Eq. (7): d [B, Q, C], d_part [B, Q, 6, C], n [B, Q, 6], p_part [B, Q, 6] -> d_mer [B, Q, C]
    (weights by :func:`part_weights`)."""
    return d + torch.einsum("bqk,bqkc->bqc", part_weights(p_part, selected, mode), part_queries)


class InteractivenessClassifier(nn.Module):
    """D, scene, predicted boxes -> interactiveness logits, part scores, optional attention."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d, self.cfg, self.heads = cfg.hidden_dim, cfg, cfg.nheads
        layer = DecoderLayer(d, cfg.nheads, cfg.dim_feedforward, cfg.dropout)
        self.decoder = Decoder(layer, cfg.dec_layers_int, d)  # f_dec2
        xavier_init(self.decoder)
        if cfg.ablation in ONE_TIME:
            self.importance = Decoder(layer, 1, d)  # h
            xavier_init(self.importance)
            self.importance_head = MLP(d, d, NUM_GROUPS, 2)
        if cfg.ablation != "no_parts":
            self.part_queries = PartQueries(d)
        self.int_head = nn.Linear(2 * d if cfg.ablation in PASSES else d, 1)  # f_int

    def forward(
        self, d: Tensor, scene: Scene, sub_boxes: Tensor, obj_boxes: Tensor, need_weights: bool = False
    ) -> dict:
        """d [B, Q, C]; sub/obj boxes [B, Q, 4] normalised cx, cy, w, h -> "pred_int_logits"
        [B, Q], "pred_part_scores" [B, Q, 6], "pred_part_logits" [B, Q, 6] (one-time: h's
        logits; six passes: per-part interactiveness logits, also "pred_part_int_logits"),
        and with need_weights "attention"."""
        if self.cfg.ablation in ONE_TIME:
            return self._one_time(d, scene, sub_boxes.detach(), obj_boxes.detach(), need_weights)
        if self.cfg.ablation in PASSES:
            return self._passes(d, scene, sub_boxes.detach(), obj_boxes.detach(), need_weights)
        return self._instance(d, scene, need_weights)

    def _box_masks(self, scene: Scene, sub: Tensor, obj: Tensor) -> tuple[Tensor, Tensor]:
        boxes = torch.stack([sub, obj], 1)  # [B, 2, Q, 4]
        both = box_masks(boxes, scene.valid_hw, scene.grid_hw, self.cfg.stride, self.cfg.mask_rule)
        return both[:, 0], both[:, 1]  # [B, Q, HW] each

    def _decode(
        self, queries: Tensor, scene: Scene, visible: list[Tensor], self_hidden: Tensor | None, need_weights: bool
    ) -> tuple[Tensor, list[Tensor | None], list[Tensor]]:
        """Masked f_dec2: visible[j] [B, S, HW] per layer -> last output [B, S, C], weights,
        and the masks actually applied."""
        applied = [ensure_visible(v, scene.valid) for v in visible]
        hidden = [head_mask(v, self.heads) for v in applied]
        hs, weights = self.decoder(
            scene.memory, scene.pos, queries, hidden=hidden, self_hidden=self_hidden, need_weights=need_weights
        )
        return hs[-1], weights, applied

    def _one_time(self, d: Tensor, scene: Scene, sub: Tensor, obj: Tensor, need_weights: bool) -> dict:
        hs_h, w_h = self.importance(scene.memory, scene.pos, d, padding=~scene.valid, need_weights=need_weights)
        part_logits = self.importance_head(hs_h[-1])  # [B, Q, 6]
        p_part = part_logits.sigmoid()
        cfg = self.cfg
        selected = select_parts(p_part, cfg.part_filter, cfg.part_filter_fraction, cfg.part_filter_topk)  # n^{ik}
        d_mer = merge_queries(d, self.part_queries(d), selected, p_part, cfg.part_weighting)  # eq. 7
        hum, objm = self._box_masks(scene, sub, obj)
        layers = merged_layer_masks(scene.part, hum, objm, selected, progressive=cfg.ablation == "full")
        e, weights, applied = self._decode(d_mer, scene, list(layers[: cfg.dec_layers_int]), None, need_weights)
        out = {"pred_int_logits": self.int_head(e).squeeze(-1), "pred_part_scores": p_part,
               "pred_part_logits": part_logits, "part_selected": selected}
        if need_weights:
            out["attention"] = _attention(weights, applied, scene.grid_hw, passes=1)
            out["attention"]["importance_weights"] = w_h[0].unflatten(-1, scene.grid_hw)  # [B, Q, h, w]
        return out

    def _pass_masks(self, scene: Scene, sub: Tensor, obj: Tensor, q: int) -> list[Tensor]:
        """Per layer: [B, 7, Q, HW] visible masks of the E^0 pass and the six part passes."""
        b, _, n = scene.part.shape
        ones = scene.valid[:, None, None, :].expand(b, 1, q, n)  # M^0
        if self.cfg.ablation == "no_saliency":
            per_part = [scene.valid[:, None, None, :].expand(b, NUM_GROUPS, q, n)] * 3
        elif self.cfg.ablation == "intuitive":
            per_part = [scene.part[:, :, None, :].expand(b, NUM_GROUPS, q, n)] * 3
        else:
            hum, objm = self._box_masks(scene, sub, obj)
            per_part = list(part_layer_masks(scene.part, hum, objm).transpose(2, 3))  # [B, 6, Q, HW] each
        return [torch.cat([ones, m], dim=1) for m in per_part[: self.cfg.dec_layers_int]]

    def _passes(self, d: Tensor, scene: Scene, sub: Tensor, obj: Tensor, need_weights: bool) -> dict:
        b, q, c = d.shape
        queries = torch.cat([d[:, None], self.part_queries(d).transpose(1, 2)], dim=1)  # [B, 7, Q, C]
        visible = [m.flatten(1, 2) for m in self._pass_masks(scene, sub, obj, q)]  # [B, 7Q, HW]
        self_hidden = block_diagonal_hidden(1 + NUM_GROUPS, q, d.device)
        e, weights, applied = self._decode(queries.flatten(1, 2), scene, visible, self_hidden, need_weights)
        e = e.view(b, 1 + NUM_GROUPS, q, c)
        e0 = e[:, :1].expand(b, NUM_GROUPS, q, c)
        part_int = self.int_head(torch.cat([e[:, 1:], e0], dim=-1)).squeeze(-1).transpose(1, 2)  # [B, Q, 6]
        out = {"pred_int_logits": part_int.amax(-1), "pred_part_scores": part_int.sigmoid(),
               "pred_part_logits": part_int, "pred_part_int_logits": part_int}
        if need_weights:
            out["attention"] = _attention(weights, applied, scene.grid_hw, passes=1 + NUM_GROUPS)
        return out

    def _instance(self, d: Tensor, scene: Scene, need_weights: bool) -> dict:
        visible = [scene.valid[:, None, :].expand(-1, d.shape[1], -1)] * self.cfg.dec_layers_int
        e, weights, applied = self._decode(d, scene, visible, None, need_weights)
        logits = self.int_head(e).squeeze(-1)  # [B, Q]
        # No part scores exist without body parts; the instance score stands in for each group
        # so that consumers of "pred_part_scores" keep working (documented in README).
        stand_in = logits.sigmoid()[..., None].expand(-1, -1, NUM_GROUPS)
        out = {"pred_int_logits": logits, "pred_part_scores": stand_in}
        if need_weights:
            out["attention"] = _attention(weights, applied, scene.grid_hw, passes=1)
        return out


def _attention(weights: list[Tensor], applied: list[Tensor], grid_hw: tuple[int, int], passes: int) -> dict:
    """Stack per-layer head-averaged cross-attention [B, S*Q, HW] and the applied visible
    masks into [L, B, passes, Q, h, w] (pass 0 = E^0 for the six-pass schemes)."""
    def grid(xs: list[Tensor]) -> Tensor:
        x = torch.stack(xs)  # [L, B, S*Q, HW]
        return x.view(x.shape[0], x.shape[1], passes, -1, *grid_hw)

    return {"weights": grid(weights), "visible": grid(applied)}
