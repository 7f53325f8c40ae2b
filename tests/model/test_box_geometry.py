"""model/box_geometry.py: the one IoU, with its conventions as parameters (hand-computed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.box_geometry import area_np, iou_np, pairwise_iou, pairwise_iou_or_zero

A = np.array([[0.0, 0.0, 10.0, 10.0]])
B = np.array([[5.0, 0.0, 15.0, 10.0]])


def test_continuous_and_inclusive_pixel_conventions() -> None:
    assert iou_np(A, B)[0] == pytest.approx(50 / 150)  # 5 x 10 of two 10 x 10 boxes
    assert iou_np(A, B, plus_one=True)[0] == pytest.approx(66 / 176)  # 6 x 11 of two 11 x 11 boxes


def test_inverted_boxes_have_zero_area_unless_the_evaluator_says_otherwise() -> None:
    inverted = np.array([[10.0, 10.0, 5.0, 5.0]])
    assert area_np(inverted)[0] == 0.0
    assert area_np(inverted, clip=False)[0] == 25.0  # (-5) x (-5), as the official evaluators compute it
    assert area_np(inverted, plus_one=True, clip=False)[0] == 16.0


def test_nan_and_empty_boxes_match_nothing() -> None:
    empty, nan = np.zeros((1, 4)), np.full((1, 4), np.nan)
    assert iou_np(empty, empty)[0] == 0.0 and iou_np(nan, A)[0] == 0.0
    t = torch.tensor(np.concatenate([A, nan]), dtype=torch.float32)
    assert pairwise_iou_or_zero(t, t).tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert torch.isnan(pairwise_iou(t, t)[0][1, 1])  # the loss path keeps NaN visible


def test_broadcasting_gives_every_pair_and_numpy_equals_torch() -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 20, (5, 4)).astype(np.float32)
    b = rng.uniform(0, 20, (3, 4)).astype(np.float32)
    a[:, 2:] += a[:, :2]
    b[:, 2:] += b[:, :2]
    every = iou_np(a[:, None], b[None])
    assert every.shape == (5, 3) and every.dtype == np.float32
    np.testing.assert_allclose(every, pairwise_iou_or_zero(torch.from_numpy(a), torch.from_numpy(b)).numpy(), rtol=1e-6)
