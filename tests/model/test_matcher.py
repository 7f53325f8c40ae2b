"""Hungarian matcher: known assignments, batched = per image, empty targets, QPIC cost terms."""

from __future__ import annotations

import torch

from model.matcher import HungarianMatcher, assign
from model.train_config import LossConfig


def _target(sub, obj, labels, has_obj=None, interactive=None, verbs=None):
    sub, obj = torch.tensor(sub, dtype=torch.float32), torch.tensor(obj, dtype=torch.float32)
    n = len(labels)
    return {"sub_boxes": sub.view(n, 4), "obj_boxes": obj.view(n, 4), "obj_labels": torch.tensor(labels, dtype=torch.long),
            "has_obj": torch.ones(n, dtype=torch.bool) if has_obj is None else torch.tensor(has_obj),
            "interactive": torch.ones(n) if interactive is None else torch.tensor(interactive, dtype=torch.float32),
            "verbs": torch.zeros(n, 3) if verbs is None else torch.tensor(verbs, dtype=torch.float32)}


def _outputs(B=2, Q=5, C=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"pred_obj_logits": torch.randn(B, Q, C + 1, generator=g),
            "pred_sub_boxes": torch.rand(B, Q, 4, generator=g) * 0.5 + 0.25,
            "pred_obj_boxes": torch.rand(B, Q, 4, generator=g) * 0.5 + 0.25,
            "pred_int_logits": torch.randn(B, Q, generator=g),
            "pred_verb_logits": torch.randn(B, Q, 3, generator=g)}


def test_assign_hand_built_costs():
    cost = torch.tensor([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0], [0.5, 9.0, 9.0]])
    q, t = assign(cost)
    # optimum: q1->t1 (0), q2->t2 (2), q3->t0 (0.5) = 2.5
    assert dict(zip(q.tolist(), t.tolist())) == {1: 1, 2: 2, 3: 0}
    assert cost[q, t].sum() == 2.5


def test_matches_obvious_queries():
    """Queries that copy a ground-truth pair are matched to it."""
    tgt = _target([[.3, .3, .2, .2], [.7, .7, .2, .2]], [[.4, .4, .1, .1], [.6, .6, .1, .1]], [1, 2])
    out = _outputs(B=1, Q=4)
    out["pred_sub_boxes"][0, 3], out["pred_obj_boxes"][0, 3] = tgt["sub_boxes"][0], tgt["obj_boxes"][0]
    out["pred_sub_boxes"][0, 1], out["pred_obj_boxes"][0, 1] = tgt["sub_boxes"][1], tgt["obj_boxes"][1]
    out["pred_obj_logits"][0, 3, 1] = out["pred_obj_logits"][0, 1, 2] = 10.0
    (q, t), = HungarianMatcher()(out, [tgt])
    assert dict(zip(q.tolist(), t.tolist())) == {1: 1, 3: 0}


def test_batched_equals_per_image():
    out = _outputs(B=3, Q=6)
    targets = [
        _target([[.3, .3, .2, .2]] * 2, [[.5, .5, .1, .1], [.2, .6, .1, .2]], [0, 3], interactive=[1, 0]),
        _target(torch.zeros(0, 4).tolist(), torch.zeros(0, 4).tolist(), []),
        _target([[.6, .4, .3, .5]] * 3, [[.1, .1, .1, .1], [0, 0, 0, 0], [.8, .8, .2, .2]], [1, 4, 2],
                has_obj=[True, False, True], verbs=[[1, 0, 0], [0, 1, 1], [0, 0, 1]]),
    ]
    m = HungarianMatcher()
    batched = m(out, targets)
    for b in range(3):
        single = m({k: v[b:b + 1] for k, v in out.items()}, [targets[b]])[0]
        assert torch.equal(batched[b][0], single[0]) and torch.equal(batched[b][1], single[1])
    assert len(batched[1][0]) == 0
    assert [len(q) for q, _ in batched] == [2, 0, 3]


def test_all_targets_empty():
    empty = _target(torch.zeros(0, 4).tolist(), torch.zeros(0, 4).tolist(), [])
    res = HungarianMatcher()(_outputs(B=2), [empty, empty])
    assert all(len(q) == 0 and len(t) == 0 for q, t in res)


def test_cost_terms_follow_qpic():
    """Class cost = -p(class); L1 = max over sub/obj (object term 0 without object); GIoU
    term = max of -GIoU (object term replaced by the subject's without object)."""
    out = _outputs(B=1, Q=1, C=2)
    out["pred_obj_logits"][:] = torch.tensor([0.0, 0.0, 0.0])
    out["pred_sub_boxes"][:] = torch.tensor([.5, .5, .2, .2])
    out["pred_obj_boxes"][:] = torch.tensor([.5, .5, .2, .2])
    tgt = _target([[.5, .5, .2, .2], [.5, .5, .2, .2]], [[.6, .5, .2, .2], [0, 0, 0, 0]], [0, 1], has_obj=[True, False])
    w = LossConfig(cost_int=0, cost_verb=0)
    c = HungarianMatcher(w).cost_matrix(out, [tgt])[0, 0]
    # pair 0: subject boxes equal (L1 0, GIoU 1); object shifted by 0.1: L1 0.1, IoU = GIoU = 1/3
    # (hull = union), so L1 term max(0, 0.1) and GIoU term max(-1, -1/3)
    assert torch.isclose(c[0], torch.tensor(-1 / 3 + 2.5 * 0.1 - 1 / 3), atol=1e-5)
    # pair 1 has no object: L1 from the subject only (0), GIoU term = the subject's (-1)
    assert torch.isclose(c[1], torch.tensor(-1 / 3 + 0 - 1.0), atol=1e-5)


def test_interactiveness_cost_uses_the_label():
    """-p for an interactive target, -(1 - p) for a non-interactive one."""
    out = _outputs(B=1, Q=1)
    out["pred_int_logits"][:] = 2.0
    tgt = _target([[.5, .5, .2, .2]] * 2, [[.5, .5, .2, .2]] * 2, [0, 0], interactive=[1, 0])
    without = HungarianMatcher(LossConfig(cost_int=0, cost_verb=0)).cost_matrix(out, [tgt])[0, 0]
    with_int = HungarianMatcher(LossConfig(cost_int=1, cost_verb=0)).cost_matrix(out, [tgt])[0, 0]
    p = torch.sigmoid(torch.tensor(2.0))
    assert torch.allclose(with_int - without, torch.stack([-p, -(1 - p)]), atol=1e-6)


def test_verb_cost_is_qpic_soft_recall():
    out = _outputs(B=1, Q=1)
    out["pred_verb_logits"][:] = torch.tensor([10.0, -10.0, 0.0])
    tgt = _target([[.5, .5, .2, .2]], [[.5, .5, .2, .2]], [0], verbs=[[1, 0, 0]])
    without = HungarianMatcher(LossConfig(cost_verb=0)).cost_matrix(out, [tgt])[0, 0, 0]
    with_verb = HungarianMatcher(LossConfig(cost_verb=1)).cost_matrix(out, [tgt])[0, 0, 0]
    # positives: p = 1 -> recall 1; negatives: 1 - p = (1, 0.5) over 2 -> 0.75; cost -(1 + 0.75) / 2
    assert torch.isclose(with_verb - without, torch.tensor(-0.875), atol=1e-3)


def test_nan_predictions_do_not_crash_the_assignment():
    out = _outputs(B=1, Q=3)
    out["pred_sub_boxes"][0, 0] = float("nan")
    tgt = _target([[.5, .5, .2, .2]], [[.5, .5, .2, .2]], [0])
    (q, t), = HungarianMatcher()(out, [tgt])
    assert len(q) == 1
