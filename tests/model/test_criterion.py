"""Set criterion: every loss on hand-computed values, aux losses, normalisation, weights."""

from __future__ import annotations

import math

import pytest
import torch

from model.criterion import SetCriterion
from model.losses import focal_terms
from model.train_config import LossConfig

GT_SUB = [0.5, 0.5, 0.2, 0.2]
GT_OBJ = [0.3, 0.3, 0.2, 0.2]


def _target(has_obj=(True,), interactive=(1.0,), verbs=((1.0, 0.0),)):
    n = len(has_obj)
    obj = torch.tensor([GT_OBJ if h else [0, 0, 0, 0] for h in has_obj], dtype=torch.float32)
    return {"sub_boxes": torch.tensor([GT_SUB] * n), "obj_boxes": obj, "obj_labels": torch.zeros(n, dtype=torch.long),
            "has_obj": torch.tensor(has_obj), "interactive": torch.tensor(interactive),
            "verbs": torch.tensor(verbs, dtype=torch.float32)}


def _outputs(stage=1, n_match=1):
    """Q = 3 queries; query i < n_match sits on the ground truth shifted by 0.1 in x (object)."""
    sub = torch.tensor([[GT_SUB, [.1, .9, .05, .05], [.9, .1, .05, .05]]])
    obj = torch.tensor([[[0.4, 0.3, 0.2, 0.2], [.9, .9, .05, .05], [.1, .1, .05, .05]]])
    if n_match == 2:
        sub[0, 1], obj[0, 1] = torch.tensor(GT_SUB), torch.tensor([0.4, 0.3, 0.2, 0.2])
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    out = {"pred_obj_logits": logits, "pred_sub_boxes": sub, "pred_obj_boxes": obj}
    if stage == 1:
        out["pred_int_logits"] = torch.tensor([[1.0, -1.0, 0.0]])
        out["pred_part_scores"] = torch.full((1, 3, 6), 0.5)
    else:
        out["pred_verb_logits"] = torch.zeros(1, 3, 2)
    return out


def _crit(stage=1, **kw):
    return SetCriterion(stage, num_obj_classes=2, num_verbs=2, weights=LossConfig(**kw))


def test_object_ce_weights_no_object_by_eos_coef():
    losses = _crit()(_outputs(), [_target()])
    ce0 = math.log(math.exp(2) + 2) - 2  # matched query, class 0
    ce_bg = math.log(3)  # two unmatched queries, no-object class, weight 0.1
    expected = (ce0 + 0.1 * 2 * ce_bg) / (1 + 0.1 * 2)
    assert math.isclose(losses["loss_obj_ce"].item(), expected, rel_tol=1e-5)


def test_box_losses():
    losses = _crit()(_outputs(), [_target()])
    assert math.isclose(losses["loss_sub_bbox"].item(), 0.0, abs_tol=1e-6)
    assert math.isclose(losses["loss_sub_giou"].item(), 0.0, abs_tol=1e-6)
    assert math.isclose(losses["loss_obj_bbox"].item(), 0.1, rel_tol=1e-5)  # |dx| = 0.1, summed over coordinates
    # two 0.2 x 0.2 boxes overlapping 0.1 x 0.2: IoU 1/3, hull = union -> GIoU 1/3
    assert math.isclose(losses["loss_obj_giou"].item(), 2 / 3, rel_tol=1e-5)


def test_pairs_without_object_are_left_out_of_object_box_losses():
    t = _target(has_obj=(True, False), interactive=(1.0, 1.0), verbs=((1.0, 0.0), (0.0, 1.0)))
    losses = _crit()(_outputs(n_match=2), [t])
    assert math.isclose(losses["loss_obj_bbox"].item(), 0.1, rel_tol=1e-5)  # one object pair, divided by one
    assert math.isclose(losses["loss_sub_bbox"].item(), 0.0, abs_tol=1e-6)


def test_interactiveness_bce_over_all_queries():
    t = _target(interactive=(1.0,))
    loss = _crit()(_outputs(), [t])["loss_int"].item()
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731 - softplus
    expected = (sp(-1.0) + sp(-1.0) + sp(0.0)) / 3  # query 0 target 1 (logit 1); others target 0 (logits -1, 0)
    assert math.isclose(loss, expected, rel_tol=1e-5)


def test_non_interactive_pair_gets_target_zero():
    loss = _crit()(_outputs(), [_target(interactive=(0.0,))])["loss_int"].item()
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    assert math.isclose(loss, (sp(1.0) + sp(-1.0) + sp(0.0)) / 3, rel_tol=1e-5)


def test_interactiveness_focal_normalised_by_positives():
    loss = _crit(int_loss="focal")(_outputs(), [_target()])["loss_int"].item()
    logits, y = torch.tensor([1.0, -1.0, 0.0]), torch.tensor([1.0, 0.0, 0.0])
    assert math.isclose(loss, focal_terms(logits, y).sum().item() / 1, rel_tol=1e-5)


def test_verb_focal_loss_value():
    loss = _crit(stage=2)(_outputs(stage=2), [_target(verbs=((1.0, 0.0),))])["loss_verb"].item()
    # every logit 0 (p = 0.5): each of the 3 x 2 entries costs 0.25 * log 2; one positive
    assert math.isclose(loss, 6 * 0.25 * math.log(2), rel_tol=1e-5)


def test_focal_terms_finite_for_saturated_logits():
    v = focal_terms(torch.tensor([100.0, -100.0]), torch.tensor([0.0, 1.0]))
    assert torch.isfinite(v).all() and (v > 10).all()


def test_consistency_loss_optional():
    out = _outputs()
    assert "loss_consistency" not in _crit()(out, [_target()])
    loss = _crit(consistency=1.0)(out, [_target()])["loss_consistency"].item()
    p = torch.sigmoid(torch.tensor([1.0, -1.0, 0.0]))
    assert math.isclose(loss, ((p - 0.5) ** 2).mean().item(), rel_tol=1e-5)


def test_aux_losses_use_their_own_matching():
    out = _outputs()
    aux = {k: out[k].clone() for k in ("pred_obj_logits", "pred_sub_boxes", "pred_obj_boxes")}
    aux["pred_sub_boxes"] = aux["pred_sub_boxes"].roll(1, dims=1)  # the good query is now query 1
    aux["pred_obj_boxes"] = aux["pred_obj_boxes"].roll(1, dims=1)
    out["aux_outputs"] = [aux]
    losses = _crit()(out, [_target()])
    assert math.isclose(losses["loss_sub_bbox_0"].item(), 0.0, abs_tol=1e-6)  # re-matched, not final-layer indices
    assert math.isclose(losses["loss_obj_bbox_0"].item(), 0.1, rel_tol=1e-5)
    assert "loss_int_0" not in losses


def test_total_applies_weights():
    crit = _crit()
    losses = crit(_outputs(), [_target()])
    expected = (losses["loss_obj_ce"] + 2.5 * (losses["loss_sub_bbox"] + losses["loss_obj_bbox"])
                + losses["loss_sub_giou"] + losses["loss_obj_giou"] + losses["loss_int"])
    assert torch.isclose(crit.total(losses), expected)
    assert crit.weight("loss_sub_bbox_3") == 2.5


def test_empty_targets_give_finite_losses():
    t = {k: v[:0] for k, v in _target().items()}
    losses = _crit()(_outputs(), [t])
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_sub_bbox"].item() == 0.0


@pytest.mark.parametrize("stage", [1, 2])
def test_micro_batches_divided_by_the_steps_counts_add_up_to_the_whole_batch(stage):
    """Gradient accumulation: every micro-batch's losses use the counts of the whole step, so
    their sum is the loss of the whole batch (and so are the gradients)."""
    crit = _crit(stage)
    a, b = _outputs(stage), _outputs(stage, n_match=2)
    ta = _target()
    tb = _target(has_obj=(True, False), interactive=(1.0, 0.0), verbs=((1.0, 0.0), (1.0, 1.0)))
    whole = crit({k: torch.cat([a[k], b[k]]) for k in a}, [ta, tb])
    norm = crit.normalisers([ta, tb], num_queries=3, device=torch.device("cpu"))
    first, second = crit(a, [ta], norm), crit(b, [tb], norm)
    for k, v in whole.items():
        assert torch.isclose(first[k] + second[k], v, atol=1e-6), k
