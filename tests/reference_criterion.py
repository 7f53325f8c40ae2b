"""The per-image matching and losses as they were before the batched rewrite (issue #18), kept
compact as the reference the optimised criterion is tested against (tests/model/test_batched_step.py)
and timed against (tests/benchmarks/bench_train.py). Not used by training.

Per layer and image: a [B*Q, sum T] cost on the device, one device-to-host copy per layer,
per-image index tensors built on the host and gathered per image; one ``.tolist()`` per step.
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from torch.profiler import record_function

from model.box_geometry import cxcywh_to_xyxy, elementwise_giou, pairwise_giou
from model.criterion import SetCriterion
from model.distributed import all_mean
from model.losses import bce_terms, focal_terms, weighted_ce_sum
from model.matcher import _BIG, HungarianMatcher

Indices = list[tuple[Tensor, Tensor]]


def reference_match(m: HungarianMatcher, outputs: dict, targets: list[dict]) -> Indices:
    """The old ``HungarianMatcher.forward``: flat [B, Q, sum T] cost, diagonal blocks."""
    sizes = [len(t["obj_labels"]) for t in targets]
    if sum(sizes) == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return [(empty, empty) for _ in targets]
    with torch.no_grad():
        B, Q = outputs["pred_obj_logits"].shape[:2]
        prob = outputs["pred_obj_logits"].flatten(0, 1).float().softmax(-1)
        sub = outputs["pred_sub_boxes"].flatten(0, 1).float()
        obj = outputs["pred_obj_boxes"].flatten(0, 1).float()
        cat = lambda k: torch.cat([t[k] for t in targets])  # noqa: E731
        t_lab, t_sub, t_obj, has_obj = cat("obj_labels"), cat("sub_boxes"), cat("obj_boxes"), cat("has_obj").to(sub.dtype)
        l1_sub = torch.cdist(sub, t_sub, p=1)
        l1_obj = torch.cdist(obj, t_obj, p=1) * has_obj
        giou_sub = pairwise_giou(cxcywh_to_xyxy(sub), cxcywh_to_xyxy(t_sub))
        giou_obj = torch.where(has_obj.bool(), pairwise_giou(cxcywh_to_xyxy(obj), cxcywh_to_xyxy(t_obj)), giou_sub)
        w = m.w
        cost = w.cost_class * -prob[:, t_lab] + w.cost_bbox * torch.maximum(l1_sub, l1_obj) \
            + w.cost_giou * torch.maximum(-giou_sub, -giou_obj)
        if "pred_int_logits" in outputs and w.cost_int:
            p = outputs["pred_int_logits"].flatten().float().sigmoid()[:, None]
            y = cat("interactive").to(p.dtype)[None, :]
            cost = cost + w.cost_int * -(p * y + (1 - p) * (1 - y))
        if "pred_verb_logits" in outputs and w.cost_verb:
            p = outputs["pred_verb_logits"].flatten(0, 1).float().sigmoid()
            y = cat("verbs").to(p.dtype)
            pos = (p @ y.T) / (y.sum(-1)[None, :] + 1e-4)
            neg = ((1 - p) @ (1 - y).T) / ((1 - y).sum(-1)[None, :] + 1e-4)
            cost = cost + w.cost_verb * -(pos + neg) / 2
        cost = torch.nan_to_num(cost, nan=_BIG, posinf=_BIG, neginf=-_BIG).view(B, Q, -1).cpu()
    blocks = cost.split(sizes, dim=-1)
    out = []
    for b in range(len(targets)):
        if sizes[b] == 0:
            out.append((torch.zeros(0, dtype=torch.long),) * 2)
            continue
        rows, cols = linear_sum_assignment(blocks[b][b].numpy())
        out.append((torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)))
    return out


def _matched(indices: Indices) -> tuple[Tensor, Tensor]:
    b = torch.cat([torch.full_like(q, i) for i, (q, _) in enumerate(indices)])
    return b, torch.cat([q for q, _ in indices])


def _gather(targets: list[dict], key: str, indices: Indices) -> Tensor:
    return torch.cat([t[key][j] for t, (_, j) in zip(targets, indices)])


class ReferenceCriterion(SetCriterion):
    """The old per-image ``SetCriterion.forward`` (same weights, normalisers and total)."""

    last_indices: list[Indices]  # per layer (final first, then aux 0, 1, ...), for tests

    def forward(self, outputs: dict, targets: list[dict], norm: dict | None = None) -> dict[str, Tensor]:
        indices = reference_match(self.matcher, outputs, targets)
        self.last_indices = [indices]
        if norm is None:
            norm = self.normalisers(targets, outputs["pred_obj_logits"].shape[1], outputs["pred_obj_logits"].device)
        losses = self._det(outputs, targets, indices, norm)
        key, name = ("interactive", "pred_int_logits") if self.stage == 1 else ("verbs", "pred_verb_logits")
        logits = outputs[name].float()
        y = torch.zeros(logits.shape, device=logits.device)
        b, q = _matched(indices)
        y[b, q] = _gather(targets, key, indices).to(y.dtype)
        if self.stage == 2:
            losses["loss_verb"] = focal_terms(logits, y, self.w.focal_gamma).sum() / norm["pos"]
        elif self.w.int_loss == "focal":
            losses["loss_int"] = focal_terms(logits, y, self.w.focal_gamma).sum() / norm["pos"]
        else:
            losses["loss_int"] = bce_terms(logits, y).sum() / norm["queries"]
        if self.stage == 1 and self.w.consistency and "pred_part_scores" in outputs:
            part_max = outputs["pred_part_scores"].float().amax(-1)
            losses["loss_consistency"] = (logits.sigmoid() - part_max).pow(2).sum() / norm["queries"]
        for i, aux in enumerate(outputs.get("aux_outputs", []) if self.w.aux else []):
            aux_indices = reference_match(self.matcher, aux, targets)
            self.last_indices.append(aux_indices)
            losses.update({f"{k}_{i}": v for k, v in self._det(aux, targets, aux_indices, norm).items()})
        return losses

    def _det(self, out: dict, targets: list[dict], indices: Indices, norm: dict) -> dict[str, Tensor]:
        logits = out["pred_obj_logits"]
        b, q = _matched(indices)
        labels = torch.full(logits.shape[:2], logits.shape[-1] - 1, dtype=torch.long, device=logits.device)
        labels[b, q] = _gather(targets, "obj_labels", indices)
        losses = {"loss_obj_ce": weighted_ce_sum(logits.flatten(0, 1).float(), labels.flatten(), self.class_weight) / norm["ce"]}
        has_obj = _gather(targets, "has_obj", indices).to(logits.dtype)
        for role, mask, n in (("sub", None, norm["pairs"]), ("obj", has_obj, norm["obj_pairs"])):
            pred = out[f"pred_{role}_boxes"][b, q].float()
            gt = _gather(targets, f"{role}_boxes", indices)
            l1 = (pred - gt).abs().sum(-1)
            giou = 1 - elementwise_giou(cxcywh_to_xyxy(pred), cxcywh_to_xyxy(gt))
            if mask is not None:
                l1, giou = l1 * mask, giou * mask
            losses[f"loss_{role}_bbox"] = l1.sum() / n
            losses[f"loss_{role}_giou"] = giou.sum() / n
        return losses


def reference_step(trainer, model, micro: list, criterion: ReferenceCriterion) -> dict[str, float]:
    """The old ``Trainer.step``: every target moved to the device key by key, the losses read
    back (and checked) every step."""
    targets = [t for b in micro for t in b.targets]
    trainer.opt.zero_grad(set_to_none=True)
    sums: dict[str, Tensor] = {}
    norm = None
    for batch in micro:
        batch = batch.to(trainer.ctx.device)
        with trainer._autocast(), record_function("forward"):
            outputs = model(batch.images, batch.pixel_mask, batch.part_masks)
        with record_function("criterion"):
            if norm is None:
                norm = criterion.normalisers(targets, outputs["pred_obj_logits"].shape[1], trainer.ctx.device)
            losses = criterion(outputs, batch.targets, norm)
            total = criterion.total(losses)
        with record_function("backward"):
            (trainer.scaler.scale(total) if trainer.scaler is not None else total).backward()
        for k, v in {"loss": total.detach(), **{k: v.detach() for k, v in losses.items()}}.items():
            sums[k] = sums.get(k, 0) + v
    with record_function("readback"):
        values = all_mean(torch.stack(list(sums.values())).float())
        if not torch.isfinite(values).all():
            raise FloatingPointError("non-finite loss")
    with record_function("optimiser"):
        trainer._optimise()
    return dict(zip(sums, values.tolist()))
