"""Hungarian matching of predicted pair queries to ground-truth (human, object) pairs, with
QPIC's costs (paper Sec. 3.5; reference notes §2.3).

Cost of assigning query q to ground-truth pair t:

    C = w_class * (-p_q(object class of t))
      + w_bbox  * max(L1(sub_q, sub_t), L1(obj_q, obj_t))       (object L1 counts 0 without object)
      + w_giou  * max(-GIoU(sub_q, sub_t), -GIoU(obj_q, obj_t)) (object term = subject term without object)
      + w_int   * (-p_q(interactive flag of t))                 (stage 1, when the output has it)
      + w_verb  * QPIC's verb cost                               (stage 2, when the output has it)

The max over subject and object is QPIC's: a pair query is only as good as its worse box. The
cost matrix is built once for the whole batch ([B, Q, sum T]); only the assignment itself runs
per image, on CPU, with scipy's ``linear_sum_assignment``. Auxiliary decoder layers carry box
and class outputs only, so the interactiveness/verb terms drop out there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from model.box_geometry import cxcywh_to_xyxy, pairwise_giou

Indices = list[tuple[Tensor, Tensor]]  # per image: (query indices, target indices), both Long[K]
_BIG = 1e8  # stands in for NaN/inf costs, so that a diverged net reaches the loss check


@dataclass(frozen=True)
class MatcherWeights:
    """Weights of the cost terms (QPIC / the released config: 1, 2.5, 1, interactiveness 1)."""

    cost_class: float = 1.0
    cost_bbox: float = 2.5
    cost_giou: float = 1.0
    cost_int: float = 1.0
    cost_verb: float = 1.0


class HungarianMatcher(torch.nn.Module):
    """One-to-one assignment of queries to ground-truth pairs, per image."""

    def __init__(self, weights: MatcherWeights = MatcherWeights()) -> None:
        super().__init__()
        self.w = weights

    @torch.no_grad()
    def cost_matrix(self, outputs: dict[str, Tensor], targets: list[dict[str, Tensor]]) -> Tensor:
        """The cost of every query of every image against every target of the batch:
        [B, Q, sum T] (only the diagonal image blocks are used)."""
        B, Q = outputs["pred_obj_logits"].shape[:2]
        prob = outputs["pred_obj_logits"].flatten(0, 1).float().softmax(-1)  # [BQ, C+1]
        sub = outputs["pred_sub_boxes"].flatten(0, 1).float()  # [BQ, 4]
        obj = outputs["pred_obj_boxes"].flatten(0, 1).float()  # [BQ, 4]
        t_lab = torch.cat([t["obj_labels"] for t in targets])  # [T]
        t_sub = torch.cat([t["sub_boxes"] for t in targets])  # [T, 4]
        t_obj = torch.cat([t["obj_boxes"] for t in targets])  # [T, 4]
        has_obj = torch.cat([t["has_obj"] for t in targets]).to(sub.dtype)  # [T]

        l1_sub = torch.cdist(sub, t_sub, p=1)  # [BQ, T]
        l1_obj = torch.cdist(obj, t_obj, p=1) * has_obj  # [BQ, T]
        giou_sub = pairwise_giou(cxcywh_to_xyxy(sub), cxcywh_to_xyxy(t_sub))  # [BQ, T]
        giou_obj = pairwise_giou(cxcywh_to_xyxy(obj), cxcywh_to_xyxy(t_obj))
        giou_obj = torch.where(has_obj.bool(), giou_obj, giou_sub)
        cost = (
            self.w.cost_class * -prob[:, t_lab]
            + self.w.cost_bbox * torch.maximum(l1_sub, l1_obj)
            + self.w.cost_giou * torch.maximum(-giou_sub, -giou_obj)
        )
        if "pred_int_logits" in outputs and self.w.cost_int:
            cost = cost + self.w.cost_int * self._int_cost(outputs["pred_int_logits"], targets)
        if "pred_verb_logits" in outputs and self.w.cost_verb:
            cost = cost + self.w.cost_verb * self._verb_cost(outputs["pred_verb_logits"], targets)
        cost = torch.nan_to_num(cost, nan=_BIG, posinf=_BIG, neginf=-_BIG)
        return cost.view(B, Q, -1)

    @staticmethod
    def _int_cost(logits: Tensor, targets: list[dict[str, Tensor]]) -> Tensor:
        """-p(query has the target's interactiveness label): [BQ, T]."""
        p = logits.flatten().float().sigmoid()[:, None]  # [BQ, 1]
        y = torch.cat([t["interactive"] for t in targets]).to(p.dtype)[None, :]  # [1, T]
        return -(p * y + (1 - p) * (1 - y))

    @staticmethod
    def _verb_cost(logits: Tensor, targets: list[dict[str, Tensor]]) -> Tensor:
        """QPIC's verb cost: minus the mean of the soft recall of the target's positive verbs
        and of its negative verbs: [BQ, T]."""
        p = logits.flatten(0, 1).float().sigmoid()  # [BQ, V]
        y = torch.cat([t["verbs"] for t in targets]).to(p.dtype)  # [T, V]
        pos = (p @ y.T) / (y.sum(-1)[None, :] + 1e-4)
        neg = ((1 - p) @ (1 - y).T) / ((1 - y).sum(-1)[None, :] + 1e-4)
        return -(pos + neg) / 2

    @torch.no_grad()
    def forward(self, outputs: dict[str, Tensor], targets: list[dict[str, Tensor]]) -> Indices:
        """Per image, (query indices, target indices) of the optimal assignment; empty when
        the image has no target."""
        sizes = [len(t["obj_labels"]) for t in targets]
        if sum(sizes) == 0:
            empty = torch.zeros(0, dtype=torch.long)
            return [(empty, empty) for _ in targets]
        cost = self.cost_matrix(outputs, targets).cpu()  # [B, Q, sum T]
        blocks = cost.split(sizes, dim=-1)
        return [assign(blocks[b][b]) for b in range(len(targets))]


def assign(cost: Tensor) -> tuple[Tensor, Tensor]:
    """Optimal assignment of one image's [Q, T] cost block, sorted by query index."""
    if cost.shape[1] == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty
    rows, cols = linear_sum_assignment(cost.numpy())
    return torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)
