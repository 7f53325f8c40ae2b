"""Hungarian matching of predicted pair queries to ground-truth (human, object) pairs, with
QPIC's costs (paper Sec. 3.5; reference notes §2.3).

Cost of assigning query q to ground-truth pair t:

    C = w_class * (-p_q(object class of t))
      + w_bbox  * max(L1(sub_q, sub_t), L1(obj_q, obj_t))       (object L1 counts 0 without object)
      + w_giou  * max(-GIoU(sub_q, sub_t), -GIoU(obj_q, obj_t)) (object term = subject term without object)
      + w_int   * (-p_q(interactive flag of t))                 (stage 1, when the output has it)
      + w_verb  * QPIC's verb cost                               (stage 2, when the output has it)

The max over subject and object is QPIC's: a pair query is only as good as its worse box.

Batched (no per-image work on the device, one device-to-host transfer per step): the costs of
every decoder layer (the final one and the auxiliary ones) of every image are computed at once
on the device against each image's own targets in a padded layout, [L, B, Q, Tmax]; that
tensor is copied to the host once and only the assignments run per (layer, image), on CPU, with
scipy's ``linear_sum_assignment``; the matched (layer, image, query, pair) indices go back to
the device in one non-blocking copy. Auxiliary decoder layers carry box and class outputs only,
so the interactiveness/verb terms apply to the final layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from model.box_geometry import cxcywh_to_xyxy, pairwise_giou
from model.packed_targets import PackedTargets, pack
from model.train_config import LossConfig

Indices = list[tuple[Tensor, Tensor]]  # per image: (query indices, target indices), both Long[K]
BOX_KEYS = ("pred_obj_logits", "pred_sub_boxes", "pred_obj_boxes")  # what every decoder layer outputs
_BIG = 1e8  # stands in for NaN/inf costs, so that a diverged net reaches the loss check


class HungarianMatcher(torch.nn.Module):
    """One-to-one assignment of queries to ground-truth pairs, per image."""

    def __init__(self, weights: LossConfig = LossConfig()) -> None:
        """``weights``: the ``train.loss`` params; the matcher reads their ``cost_*`` terms."""
        super().__init__()
        self.w = weights

    @torch.no_grad()
    def cost_matrix(self, outputs: dict[str, Tensor], targets: list[dict[str, Tensor]] | PackedTargets) -> Tensor:
        """The cost of every query of every image against that image's targets: [B, Q, Tmax]
        (image b's first ``sizes[b]`` columns are its targets, the rest padding)."""
        packed = targets if isinstance(targets, PackedTargets) else pack(targets)
        layers = {k: outputs[k][None] for k in BOX_KEYS}
        return self.layer_costs(layers, outputs, packed)[0]

    @torch.no_grad()
    def layer_costs(self, layers: dict[str, Tensor], final: dict[str, Tensor], packed: PackedTargets) -> Tensor:
        """Costs [L, B, Q, Tmax] of the stacked decoder layers ``layers`` (BOX_KEYS, each
        [L, B, Q, ...]; the last layer is ``final``'s, whose interactiveness/verb outputs add
        their terms to it) against the padded targets of each image."""
        index, valid = packed.padded_index()  # [B, Tm]
        prob = layers["pred_obj_logits"].float().softmax(-1)  # [L, B, Q, C+1]
        sub, obj = layers["pred_sub_boxes"].float(), layers["pred_obj_boxes"].float()  # [L, B, Q, 4]
        L, B, Q = prob.shape[:3]
        t_lab = packed.obj_labels[index]  # [B, Tm]
        t_sub, t_obj = packed.sub_boxes[index][None], packed.obj_boxes[index][None]  # [1, B, Tm, 4]
        has_obj = packed.has_obj[index][None, :, None, :]  # [1, B, 1, Tm]

        l1_sub = (sub[..., :, None, :] - t_sub[..., None, :, :]).abs().sum(-1)  # [L, B, Q, Tm]
        l1_obj = (obj[..., :, None, :] - t_obj[..., None, :, :]).abs().sum(-1) * has_obj.to(sub.dtype)
        giou_sub = pairwise_giou(cxcywh_to_xyxy(sub), cxcywh_to_xyxy(t_sub))  # [L, B, Q, Tm]
        giou_obj = pairwise_giou(cxcywh_to_xyxy(obj), cxcywh_to_xyxy(t_obj))
        giou_obj = torch.where(has_obj, giou_obj, giou_sub)
        cls = prob.gather(-1, t_lab[None, :, None, :].expand(L, B, Q, -1))  # [L, B, Q, Tm]
        cost = (
            self.w.cost_class * -cls
            + self.w.cost_bbox * torch.maximum(l1_sub, l1_obj)
            + self.w.cost_giou * torch.maximum(-giou_sub, -giou_obj)
        )
        if "pred_int_logits" in final and self.w.cost_int:  # the final layer's extra terms
            cost[-1] += self.w.cost_int * _int_cost(final["pred_int_logits"], packed.interactive[index])
        if "pred_verb_logits" in final and self.w.cost_verb:
            cost[-1] += self.w.cost_verb * _verb_cost(final["pred_verb_logits"], packed.verbs[index])
        return torch.nan_to_num(cost, nan=_BIG, posinf=_BIG, neginf=-_BIG)

    @torch.no_grad()
    def match_layers(self, layers: dict[str, Tensor], final: dict[str, Tensor], packed: PackedTargets) -> Matches:
        """Optimal assignments of every layer and image (see :meth:`layer_costs`): one
        transfer of the costs to the host, scipy per (layer, image), one transfer back."""
        L = layers["pred_obj_logits"].shape[0]
        device = layers["pred_obj_logits"].device
        if sum(packed.sizes) == 0:
            return Matches(torch.zeros(4, 0, dtype=torch.long, device=device), [0] * L)
        cost = self.layer_costs(layers, final, packed).cpu().numpy()  # the step's one sync
        rows, counts = [], []
        for lay in range(L):
            n = 0
            for b, (size, offset) in enumerate(zip(packed.sizes, packed.offsets)):
                if size == 0:
                    continue
                q, t = linear_sum_assignment(cost[lay, b, :, :size])
                rows.append(np.stack([np.full_like(q, lay), np.full_like(q, b), q, t + offset]))
                n += len(q)
            counts.append(n)
        index = torch.from_numpy(np.concatenate(rows, 1).astype(np.int64))
        if device.type == "cuda":
            index = index.pin_memory()
        return Matches(index.to(device, non_blocking=True), counts)

    @torch.no_grad()
    def forward(self, outputs: dict[str, Tensor], targets: list[dict[str, Tensor]]) -> Indices:
        """Per image, (query indices, target indices) of the optimal assignment; empty when
        the image has no target."""
        packed = pack(targets)
        layers = {k: outputs[k][None] for k in BOX_KEYS}
        m = self.match_layers(layers, outputs, packed).layer(0)
        b, q, t = (x.cpu() for x in m)
        offsets = torch.tensor(packed.offsets + [0], dtype=torch.long)
        return [(q[b == i], t[b == i] - offsets[i]) for i in range(len(targets))]


@dataclass
class Matches:
    """Matched (layer, image, query, flat pair index) of every layer, Long[4, K] on the device,
    grouped by layer, then image, then query (ascending); ``counts``: matches per layer
    (host ints, so that splitting by layer needs no read-back)."""

    index: Tensor
    counts: list[int]

    def layer(self, lay: int) -> tuple[Tensor, Tensor, Tensor]:
        """(image, query, flat pair index) of layer ``lay``'s matches, Long[K_l] each."""
        start = sum(self.counts[:lay])
        part = self.index[:, start:start + self.counts[lay]]
        return part[1], part[2], part[3]


def _int_cost(logits: Tensor, y: Tensor) -> Tensor:
    """-p(query has the target's interactiveness label): logits [B, Q], y [B, Tm] -> [B, Q, Tm]."""
    p = logits.float().sigmoid()[:, :, None]  # [B, Q, 1]
    y = y.to(p.dtype)[:, None, :]  # [B, 1, Tm]
    return -(p * y + (1 - p) * (1 - y))


def _verb_cost(logits: Tensor, y: Tensor) -> Tensor:
    """QPIC's verb cost: minus the mean of the soft recall of the target's positive verbs and
    of its negative verbs: logits [B, Q, V], y [B, Tm, V] -> [B, Q, Tm]."""
    p = logits.float().sigmoid()  # [B, Q, V]
    y = y.to(p.dtype)
    pos = (p @ y.transpose(1, 2)) / (y.sum(-1)[:, None, :] + 1e-4)
    neg = ((1 - p) @ (1 - y).transpose(1, 2)) / ((1 - y).sum(-1)[:, None, :] + 1e-4)
    return -(pos + neg) / 2


def assign(cost: Tensor) -> tuple[Tensor, Tensor]:
    """Optimal assignment of one image's [Q, T] cost block, sorted by query index."""
    if cost.shape[1] == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty
    rows, cols = linear_sum_assignment(cost.numpy())
    return torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)
