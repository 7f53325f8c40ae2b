"""The pure-torch stand-ins for torchvision's compiled ops (active only where those are missing)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from model import torchvision_fallback as tvf
from model.box_geometry import pairwise_iou_or_zero

tv = tvf.ensure_torchvision()


NATIVE_PROBE = """
import importlib.util, pathlib, torch
folder = pathlib.Path(next(iter(importlib.util.find_spec("torchvision").submodule_search_locations)))
ok = False
for lib in folder.glob("_C*.so"):
    try:
        torch.ops.load_library(str(lib))
        ok = hasattr(torch.ops.torchvision, "nms")
    except (OSError, RuntimeError):
        pass
print(ok)
"""


def test_fallback_is_active_exactly_when_native_ops_are_missing():
    # Probe the native library in a fresh interpreter, untouched by the fallback.
    native = subprocess.run([sys.executable, "-c", NATIVE_PROBE], capture_output=True, text=True, check=True)
    assert tvf.fallback_active() == (native.stdout.strip() == "False")


def test_torchvision_ops_and_models_import():
    boxes = torch.tensor([[0.0, 0, 10, 10]])
    assert tv.ops.nms(boxes, torch.tensor([1.0]), 0.5).tolist() == [0]
    assert sum(p.numel() for p in tv.models.resnet18().parameters()) == 11_689_512


def reference_nms(boxes: torch.Tensor, scores: torch.Tensor, thr: float) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    keep: list[int] = []
    for i in order:
        if all(float(pairwise_iou_or_zero(boxes[i : i + 1], boxes[j : j + 1], eps=0.0)) <= thr for j in keep):
            keep.append(i)
    return keep


def test_nms_hand_case():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    # box 3 wins; 0 (IoU 1) and 1 (IoU 81/119 = 0.68) are suppressed; 2 is disjoint
    assert tvf.nms(boxes, scores, 0.5).tolist() == [3, 2]
    # at a threshold above 0.68, box 1 survives
    assert tvf.nms(boxes, scores, 0.7).tolist() == [3, 1, 2]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nms_matches_reference_on_random_boxes(seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(60, 2, generator=g) * 50
    wh = torch.rand(60, 2, generator=g) * 30 + 1
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(60, generator=g)
    assert tvf.nms(boxes, scores, 0.4).tolist() == reference_nms(boxes, scores, 0.4)


def test_nms_empty():
    assert tvf.nms(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0


def test_roi_align_on_a_linear_ramp_is_exact():
    # Bilinear interpolation of f(y, x) = 100 c + 8 y + x is exact, so each bin's value is f at
    # the mean of its sample points.
    c, h, w = 2, 8, 8
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float), torch.arange(w, dtype=torch.float), indexing="ij")
    x = torch.stack([100 * k + 8 * yy + xx for k in range(c)])[None]  # [1, C, H, W]
    rois = torch.tensor([[0, 1.5, 2.0, 5.5, 6.0]])
    out = tvf.roi_align(x, rois, 1.0, 2, 2, 2, True)
    # aligned: start = (1.0, 1.5) (x, y), size 4 × 4, bins of 2, samples at +0.5 and +1.5
    # bin (0, 0): mean x = 1.0 + 1.0 = 2.0, mean y = 1.5 + 1.0 = 2.5
    expected00 = 8 * 2.5 + 2.0
    assert out.shape == (1, 2, 2, 2)
    assert out[0, 0, 0, 0].item() == pytest.approx(expected00)
    assert out[0, 1, 1, 1].item() == pytest.approx(100 + 8 * 4.5 + 4.0)


def test_roi_align_matches_torchvision_api_and_backprops():
    x = torch.randn(2, 3, 10, 12, requires_grad=True)
    rois = torch.tensor([[1, 0.0, 0.0, 20.0, 16.0], [0, 4.0, 2.0, 9.0, 18.0]])
    out = tv.ops.roi_align(x, rois, (3, 4), spatial_scale=0.5, sampling_ratio=-1, aligned=False)
    assert out.shape == (2, 3, 3, 4) and torch.isfinite(out).all()
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_roi_align_outside_the_map_is_zero():
    x = torch.ones(1, 1, 4, 4)
    out = tvf.roi_align(x, torch.tensor([[0, 20.0, 20.0, 30.0, 30.0]]), 1.0, 2, 2, 1, True)
    assert torch.count_nonzero(out) == 0


def test_other_ops_fail_clearly_under_the_fallback():
    if not tvf.fallback_active():
        pytest.skip("native torchvision ops are available")
    with pytest.raises(NotImplementedError, match="roi_pool"):
        tv.ops.roi_pool(torch.zeros(1, 1, 4, 4), torch.tensor([[0, 0.0, 0, 2, 2]]), 2)
