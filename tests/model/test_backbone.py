"""Backbones: frozen batch norm, frozen stem + layer1, stride 32, exact padding, sine positions."""

from __future__ import annotations

import math

import pytest
import torch

from model.backbone import Backbone, FrozenBatchNorm2d
from model.position import sine_position


def randomise_norms(backbone: Backbone) -> None:
    """Non-trivial statistics, so padding would leak through BN shifts without the fix."""
    g = torch.Generator().manual_seed(0)
    for m in backbone.modules():
        if isinstance(m, (FrozenBatchNorm2d, torch.nn.BatchNorm2d)):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
            m.bias.data.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)


def test_resnet_frozen_bn_stem_and_layer1() -> None:
    bb = Backbone("resnet18")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in bb.modules())
    assert sum(isinstance(m, FrozenBatchNorm2d) for m in bb.modules()) > 0
    for name, p in bb.body.named_parameters():
        assert p.requires_grad == name.startswith(("layer2", "layer3", "layer4")), name
    frozen = {n for n, _ in bb.body.named_buffers() if n.startswith("bn1")}
    assert frozen == {"bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"}
    before = bb.body.bn1.running_mean.clone()
    bb.train()(torch.randn(1, 3, 64, 64), torch.zeros(1, 64, 64, dtype=torch.bool))
    assert torch.equal(before, bb.body.bn1.running_mean)  # training mode does not update them


def test_frozen_bn_loads_torchvision_names() -> None:
    bn = FrozenBatchNorm2d(3)
    state = {"weight": torch.full((3,), 2.0), "bias": torch.ones(3), "running_mean": torch.zeros(3),
             "running_var": torch.ones(3), "num_batches_tracked": torch.tensor(5)}
    bn.load_state_dict(state)
    assert torch.allclose(bn(torch.zeros(1, 3, 1, 1)).flatten(), torch.ones(3), atol=1e-4)


@pytest.mark.parametrize("name", ["demo", "resnet18"])
@pytest.mark.parametrize("hw", [(64, 96), (70, 100), (33, 31)])
def test_stride_32_grid_and_mask(name: str, hw: tuple[int, int]) -> None:
    bb = Backbone(name).eval()
    feats, mask = bb(torch.randn(1, 3, *hw), torch.zeros(1, *hw, dtype=torch.bool))
    assert feats.shape[-2:] == (math.ceil(hw[0] / 32), math.ceil(hw[1] / 32)) == mask.shape[-2:]
    assert feats.shape[1] == bb.num_channels and not mask.any()


@pytest.mark.parametrize("name", ["demo", "resnet18"])
def test_exact_padding(name: str) -> None:
    torch.manual_seed(0)
    image = torch.randn(1, 3, 70, 100)
    padded = torch.zeros(2, 3, 128, 160)
    padded[0, :, :70, :100] = image[0]
    padded[1] = torch.randn(3, 128, 160)
    pmask = torch.ones(2, 128, 160, dtype=torch.bool)
    pmask[0, :70, :100] = False
    pmask[1] = False
    diffs = {}
    for exact in (True, False):
        bb = Backbone(name, exact_padding=exact).eval()
        randomise_norms(bb)
        with torch.no_grad():
            alone, mask_alone = bb(image, torch.zeros(1, 70, 100, dtype=torch.bool))
            batch, mask_batch = bb(padded, pmask)
        h, w = alone.shape[-2:]
        assert torch.equal(mask_batch[0, :h, :w], mask_alone[0])
        assert mask_batch[0, h:].all() and mask_batch[0, :, w:].all()
        diffs[exact] = (batch[0, :, :h, :w] - alone[0]).abs().max().item()
    assert diffs[True] < 1e-4 < diffs[False]


def test_sine_position_is_padding_invariant() -> None:
    alone = sine_position(torch.zeros(1, 3, 4, dtype=torch.bool), 32)  # [1, 12, 32]
    mask = torch.ones(1, 5, 7, dtype=torch.bool)
    mask[0, :3, :4] = False
    padded = sine_position(mask, 32).view(1, 5, 7, 32)[:, :3, :4].reshape(1, 12, 32)
    assert torch.allclose(alone, padded, atol=1e-6)
    assert torch.isfinite(sine_position(torch.ones(1, 2, 2, dtype=torch.bool), 32)).all()
