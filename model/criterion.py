"""The set criterion of both training stages (paper Sec. 3.5, QPIC's losses).

Stage 1:  L1 = L_det + L_int        Stage 2:  L2 = L_det + L_verb
L_det = object-class CE (weight 1, no-object class weighted ``eos_coef`` = 0.1)
      + box L1 (2.5) + GIoU loss (1), on the subject box and on the object box
        (ARCHITECTURE decision 3: QPIC's weights; the paper's text swaps the two box weights).
L_int  = BCE (the released code's 2-way CE) or focal loss over every query: matched queries
         take their pair's interactiveness flag, the others 0.
L_verb = QPIC's focal loss over every query's verb vector (unmatched queries: all zeros).

Auxiliary losses: L_det again for every earlier box-decoder layer in ``aux_outputs``, each
with its own Hungarian matching (DETR/QPIC; the released BPM code reuses the final layer's).
V-COCO pairs without an object are left out of the object box losses.

Every sum is divided by a count taken over the whole global batch (all-reduced under DDP and
divided by the world size, as DETR does), so that DDP's gradient averaging reproduces the
gradient of a single process that sees the same global batch. The counts depend on the targets
and the number of queries only (the matcher assigns min(Q, T) pairs per image), so that with
gradient accumulation the engine computes them once for all micro-batches of an optimiser step
(:meth:`SetCriterion.normalisers`) and the summed gradients equal those of one large batch.

Batched (issue #18): the targets come packed (model/packed_targets.py), every decoder layer is
matched in one call (model/matcher.py: one device-to-host transfer per step) and the detection
losses of all layers are computed at once on the stacked layer outputs [L, B, Q, ...], summed per
layer; nothing is read back from the device and no Python loop runs over images or layers.
tests/reference_criterion.py keeps the former per-image implementation as the reference.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from model.box_geometry import cxcywh_to_xyxy, elementwise_giou
from model.losses import bce_terms, focal_terms, part_label_loss, weighted_ce_terms
from model.matcher import BOX_KEYS, HungarianMatcher, Matches
from model.packed_targets import PackedTargets, pack
from model.train_config import LossConfig

DET_KEYS = ("loss_obj_ce", "loss_sub_bbox", "loss_obj_bbox", "loss_sub_giou", "loss_obj_giou")


def _global_counts(values: list[float], device: torch.device) -> Tensor:
    """``values`` summed over DDP ranks and divided by the world size (plain values otherwise);
    built on the host and copied without waiting (a pageable copy would synchronise)."""
    t = torch.tensor(values, dtype=torch.float32)
    t = (t.pin_memory() if device.type == "cuda" else t).to(device, non_blocking=True)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)
        t = t / dist.get_world_size()
    return t


def _target_counts(targets: list[dict[str, Tensor]] | PackedTargets, pos_key: str) -> tuple[list[int], float, float]:
    """(pairs per image, pairs with an object, positives of ``pos_key``) of per-image or packed
    targets (host tensors: no device read-back)."""
    if isinstance(targets, PackedTargets):
        return list(targets.sizes), float(targets.has_obj.sum()), float(getattr(targets, pos_key).sum())
    sizes = [len(t["obj_labels"]) for t in targets]
    return sizes, sum(float(t["has_obj"].sum()) for t in targets), sum(float(t[pos_key].sum()) for t in targets)


class SetCriterion(nn.Module):
    """Hungarian matching + the stage's losses; ``forward`` returns unweighted losses and
    :meth:`total` their weighted sum."""

    def __init__(self, stage: int, num_obj_classes: int, num_verbs: int,
                 matcher: HungarianMatcher | None = None, weights: LossConfig = LossConfig()) -> None:
        super().__init__()
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage}")
        self.stage, self.num_verbs, self.w = stage, num_verbs, weights
        self.matcher = matcher or HungarianMatcher(weights)
        class_weight = torch.ones(num_obj_classes + 1)
        class_weight[-1] = weights.eos_coef  # the no-object class
        self.register_buffer("class_weight", class_weight, persistent=False)

    # ------------------------------------------------------------------ public
    def forward(self, outputs: dict, targets: list[dict[str, Tensor]] | PackedTargets,
                norm: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Losses of one (micro-)batch. ``targets``: per-image dicts or packed (the engine's,
        on the outputs' device); ``norm``: the counts to divide by (:meth:`normalisers` of every
        image of the optimiser step); None = this batch's own."""
        packed = targets if isinstance(targets, PackedTargets) else pack(targets)
        device = outputs["pred_obj_logits"].device
        if norm is None:
            norm = self.normalisers(targets, outputs["pred_obj_logits"].shape[1], device)
        aux = outputs.get("aux_outputs", []) if self.w.aux else []
        layers = {k: torch.stack([a[k] for a in aux] + [outputs[k]]) for k in BOX_KEYS}  # [L, B, Q, ...]
        matches = self.matcher.match_layers(layers, outputs, packed)
        det = self._detection(layers, packed, matches, norm)  # [L] per key
        losses = {k: v[-1] for k, v in det.items()}
        final = matches.layer(len(aux))
        if self.stage == 1:
            losses.update(self._interactiveness(outputs, packed, final, norm))
        else:
            losses.update(self._verbs(outputs, packed, final, norm))
        for i in range(len(aux)):
            losses.update({f"{k}_{i}": v[i] for k, v in det.items()})
        return losses

    def weight(self, key: str) -> float:
        """Coefficient of loss ``key`` (aux suffixes ``_0``, ``_1``, ... share their base's)."""
        base = key.rsplit("_", 1)[0] if key[-1].isdigit() else key
        return {
            "loss_obj_ce": self.w.obj_ce, "loss_sub_bbox": self.w.bbox, "loss_obj_bbox": self.w.bbox,
            "loss_sub_giou": self.w.giou, "loss_obj_giou": self.w.giou, "loss_int": self.w.int,
            "loss_consistency": self.w.consistency, "loss_verb": self.w.verb, "loss_part": self.w.part,
        }[base]

    def total(self, losses: dict[str, Tensor]) -> Tensor:
        """The training objective: weighted sum of ``losses`` (one stacked product, not a
        Python sum of ~35 scalar products)."""
        values = torch.stack([v.float() for v in losses.values()])
        w = torch.tensor([self.weight(k) for k in losses], dtype=values.dtype)
        w = (w.pin_memory() if values.is_cuda else w).to(values.device, non_blocking=True)
        return (values * w).sum()

    # ------------------------------------------------------------------ parts
    def normalisers(self, targets: list[dict[str, Tensor]] | PackedTargets, num_queries: int,
                    device: torch.device) -> dict[str, Tensor]:
        """Global counts the loss sums are divided by (the same for every decoder layer), from
        ``targets`` (every image this rank contributes to the step) and the number of queries:
        pairs, pairs with an object, the CE class-weight sum, queries and positives (of all
        targets, as DETR counts every target box). A collective under DDP."""
        sizes, n_obj, n_pos = _target_counts(targets, "interactive" if self.stage == 1 else "verbs")
        queries = len(sizes) * num_queries
        matched = sum(min(num_queries, n) for n in sizes)  # what the Hungarian matcher assigns
        ce = self.w.eos_coef * (queries - matched) + matched  # sum of the CE class weights
        c = _global_counts([sum(sizes), n_obj, ce, queries, n_pos], device)
        return {"pairs": c[0].clamp(min=1), "obj_pairs": c[1].clamp(min=1), "ce": c[2].clamp(min=1e-6),
                "queries": c[3].clamp(min=1), "pos": c[4].clamp(min=1)}

    def _detection(self, layers: dict[str, Tensor], packed: PackedTargets, matches: Matches,
                   norm: dict[str, Tensor]) -> dict[str, Tensor]:
        """L_det of every stacked layer at once: ``layers`` [L, B, Q, ...] -> {key: [L]}."""
        logits = layers["pred_obj_logits"]  # [L, B, Q, C+1]
        lay, b, q, t = matches.index  # Long[K] each, every layer's matches
        labels = torch.full(logits.shape[:3], logits.shape[-1] - 1, dtype=torch.long, device=logits.device)
        labels[lay, b, q] = packed.obj_labels[t]
        ce = weighted_ce_terms(logits.float(), labels, self.class_weight).flatten(1).sum(1)  # [L]
        losses = {"loss_obj_ce": ce / norm["ce"]}
        has_obj = packed.has_obj[t].to(torch.float32)  # [K]
        for role, mask, n in (("sub", None, norm["pairs"]), ("obj", has_obj, norm["obj_pairs"])):
            pred = layers[f"pred_{role}_boxes"][lay, b, q].float()  # [K, 4]
            gt = getattr(packed, f"{role}_boxes")[t]  # [K, 4]
            l1 = (pred - gt).abs().sum(-1)  # [K]
            giou = 1 - elementwise_giou(cxcywh_to_xyxy(pred), cxcywh_to_xyxy(gt))  # [K]
            if mask is not None:  # pairs without an object take no part in the object box losses
                l1, giou = l1 * mask, giou * mask
            per_layer = torch.zeros(2, logits.shape[0], device=logits.device)  # sums per layer
            per_layer.index_add_(1, lay, torch.stack([l1, giou]))
            losses[f"loss_{role}_bbox"] = per_layer[0] / n
            losses[f"loss_{role}_giou"] = per_layer[1] / n
        return losses

    @staticmethod
    def _query_targets(shape: torch.Size, values: Tensor, final: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        """Per-query targets [B, Q, ...]: the matched pair's row of ``values`` (packed, [T, ...]),
        zeros for unmatched queries."""
        b, q, t = final
        y = torch.zeros(shape, device=values.device)
        y[b, q] = values[t].to(y.dtype)
        return y

    def _interactiveness(self, out: dict, packed: PackedTargets, final: tuple[Tensor, Tensor, Tensor],
                         norm: dict[str, Tensor]) -> dict[str, Tensor]:
        logits = out["pred_int_logits"].float()  # [B, Q]
        y = self._query_targets(logits.shape, packed.interactive, final)
        if self.w.int_loss == "focal":
            loss = focal_terms(logits, y, self.w.focal_gamma).sum() / norm["pos"]
        else:
            loss = bce_terms(logits, y).sum() / norm["queries"]
        losses = {"loss_int": loss}
        if self.w.consistency and "pred_part_scores" in out:
            part_max = out["pred_part_scores"].float().amax(-1)  # [B, Q]
            mse = (logits.sigmoid() - part_max).pow(2).sum() / norm["queries"]
            losses["loss_consistency"] = mse
        # --- issue 13: optional part-level supervision of the matched queries' part scores
        if self.w.part and "pred_part_logits" in out and packed.part_labels is not None:
            b, q, t = final
            losses["loss_part"] = part_label_loss(out["pred_part_logits"][b, q], packed.part_labels[t])
        return losses

    def _verbs(self, out: dict, packed: PackedTargets, final: tuple[Tensor, Tensor, Tensor],
               norm: dict[str, Tensor]) -> dict[str, Tensor]:
        logits = out["pred_verb_logits"].float()  # [B, Q, V]
        y = self._query_targets(logits.shape, packed.verbs, final)
        return {"loss_verb": focal_terms(logits, y, self.w.focal_gamma).sum() / norm["pos"]}


def build_criterion(stage: int, num_obj_classes: int, num_verbs: int, loss: LossConfig | None = None) -> SetCriterion:
    """The criterion of ``stage``: its loss coefficients and its matcher's costs both from
    ``loss`` (the ``train.loss`` params; defaults when None)."""
    loss = loss or LossConfig()
    return SetCriterion(stage, num_obj_classes, num_verbs, HungarianMatcher(loss), loss)
