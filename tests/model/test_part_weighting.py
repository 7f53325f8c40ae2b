"""Eq. (7)'s part weights (issue 13): in the default (soft) form every part's importance gets
a gradient, so the part filter can change; the literal form keeps the initial selection."""

from __future__ import annotations

import pytest
import torch

from model.bpm import InteractivenessNet
from model.config import preset
from model.interactiveness import merge_queries, part_weights
from model.masks import select_parts
from tests.model.test_forward import N_OBJ, N_VERB, batch, part_masks, tiny, trained_biases


def test_part_weights_values_and_gradients() -> None:
    p = torch.tensor([[[0.9, 0.2, 0.6]]], requires_grad=True)
    n = torch.tensor([[[True, False, True]]])
    for mode, value in (("literal", [0.9, 0.0, 0.6]), ("soft", [0.9, 0.2, 0.6]), ("straight_through", [0.9, 0.0, 0.6])):
        w = part_weights(p, n, mode)
        assert torch.allclose(w.detach(), torch.tensor([[value]]))
        (grad,) = torch.autograd.grad((w * torch.tensor([1.0, 2.0, 3.0])).sum(), p)
        unselected = 0.0 if mode == "literal" else 2.0
        assert torch.allclose(grad, torch.tensor([[[1.0, unselected, 3.0]]]))
    with pytest.raises(ValueError):
        part_weights(p, n, "gumbel")


def test_default_is_soft_and_unselected_parts_get_a_gradient() -> None:
    assert preset("demo").part_weighting == "soft"
    torch.manual_seed(0)
    net = trained_biases(InteractivenessNet(tiny(), N_OBJ, N_VERB))
    images, mask = batch([(64, 96), (64, 96)])
    out = net(images, mask, part_masks(images, [0, 1]))
    logits = out["pred_part_logits"]
    logits.retain_grad()
    out["pred_int_logits"].sum().backward()
    unselected = ~out["part_selected"]
    assert unselected.any()
    assert (logits.grad[unselected].abs() > 0).float().mean() > 0.9  # every unselected part, up to exact zeros


def _train_selection(mode: str, steps: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch where part 4 alone decides: queries d carry no label information, part 4's
    query d_part^4 = +/-u by the label, the other parts' queries are label-free noise. The
    importance logits start favouring part 0 (top-1 per query). Trains the importance bias and
    a linear readout of d_mer with SGD; returns the selections before and after."""
    g = torch.Generator().manual_seed(seed)
    n, c, k_star = 64, 16, 4
    y = (torch.arange(n) % 2).float()
    d = torch.randn(1, n, c, generator=g)
    u = torch.randn(c, generator=g)
    dpart = torch.randn(1, n, 6, c, generator=g)
    dpart[0, :, k_star] = (2 * y - 1)[:, None] * u
    bias = torch.tensor([2.0, 1.0, 1.0, 1.0, 0.0, 1.0], requires_grad=True)
    readout = torch.zeros(c, requires_grad=True)
    opt = torch.optim.SGD([bias, readout], lr=0.5)
    before = select_parts(bias.expand(1, n, 6).sigmoid(), "per_query_topk", topk=1)
    for _ in range(steps):
        p = bias.expand(1, n, 6).sigmoid()
        sel = select_parts(p, "per_query_topk", topk=1)
        logit = merge_queries(d, dpart, sel, p, mode)[0] @ readout
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return before, select_parts(bias.expand(1, n, 6).sigmoid(), "per_query_topk", topk=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_selection_moves_to_the_deciding_part_when_soft(seed: int) -> None:
    before, after = _train_selection("soft", seed=seed)
    assert before[0, :, 0].all()
    assert after[0, :, 4].all()  # the part that decides is now the one selected


@pytest.mark.parametrize("mode", ["literal", "straight_through"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_literal_and_straight_through_never_find_it(mode: str, seed: int) -> None:
    """The deciding part contributes nothing while unselected, so nothing learns to read it
    and its importance gets no (literal) or no useful (straight-through) gradient."""
    _, after = _train_selection(mode, seed=seed)
    assert not after[0, :, 4].any()
