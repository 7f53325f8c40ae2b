"""Mask equations (1)-(6), filtering and merging (Sec. 3.4, eq. 7) on hand-computed grids."""

from __future__ import annotations

import math

import pytest
import torch

from model.interactiveness import merge_queries
from model.masks import (
    block_diagonal_hidden, box_cells, box_masks, ensure_visible, head_mask, merged_layer_masks,
    part_layer_masks, rasterize_part_masks, select_parts,
)

H = W = 4  # 4 x 4 grid of a 128 x 128 image, stride 32
FOOT, LEG, HIP, HAND, ARM, HEAD = range(6)
NAN = float("nan")


def cells(*rc: tuple[int, int]) -> torch.Tensor:
    """Bool[16] with the given (row, col) cells on."""
    m = torch.zeros(H, W, dtype=torch.bool)
    for r, c in rc:
        m[r, c] = True
    return m.flatten()


def persons() -> tuple[torch.Tensor, torch.Tensor]:
    """Image 0: person A (right hand, head), person B (left hand, right foot); image 1: person C
    whose right arm covers the image. Absent parts are NaN (light nothing)."""
    boxes = torch.full((3, 10, 4), NAN)
    boxes[0, 6] = torch.tensor([5, 40, 20, 50.0])  # A right hand: touches cell (1,0), no corner
    boxes[0, 5] = torch.tensor([0, 0, 40, 30.0])  # A head: (0,0), (0,1) under both rules
    boxes[1, 9] = torch.tensor([100, 100, 120, 110.0])  # B left hand: touches (3,3), no corner
    boxes[1, 0] = torch.tensor([64, 64, 100, 70.0])  # B right foot: (2,2), (2,3) under both rules
    boxes[2, 7] = torch.tensor([0, 0, 127, 127.0])  # C right arm: everything
    return boxes, torch.tensor([0, 0, 1])


def test_rasterize_touch_rule() -> None:
    boxes, index = persons()
    m = rasterize_part_masks(boxes, index, 2, (H, W), rule="touch").flatten(2)  # [2, 6, 16]
    assert m.shape == (2, 6, 16) and m.dtype == torch.bool
    assert torch.equal(m[0, FOOT], cells((2, 2), (2, 3)))
    assert torch.equal(m[0, HAND], cells((1, 0), (3, 3)))  # union over persons A and B
    assert torch.equal(m[0, HEAD], cells((0, 0), (0, 1)))
    for g in (LEG, HIP, ARM):
        assert not m[0, g].any()
    assert m[1, ARM].all() and m[1].sum() == 16


def test_rasterize_corner_rule_drops_parts_smaller_than_a_cell() -> None:
    boxes, index = persons()
    m = rasterize_part_masks(boxes, index, 2, (H, W), rule="corner").flatten(2)
    assert torch.equal(m[0, FOOT], cells((2, 2), (2, 3)))
    assert torch.equal(m[0, HEAD], cells((0, 0), (0, 1)))
    assert not m[0, HAND].any()  # both hands lie between cell corners
    assert m[1, ARM].all()


def test_rasterize_without_persons() -> None:
    m = rasterize_part_masks(torch.zeros(0, 10, 4), torch.zeros(0, dtype=torch.long), 3, (2, 5))
    assert m.shape == (3, 6, 2, 5) and not m.any()


def test_box_cells_and_box_masks_rules() -> None:
    box = torch.tensor([25.6, 25.6, 51.2, 51.2])
    assert torch.equal(box_cells(box, (H, W), rule="touch").flatten(), cells((0, 0), (0, 1), (1, 0), (1, 1)))
    assert torch.equal(box_cells(box, (H, W), rule="corner").flatten(), cells((1, 1)))
    # eq. 2 from normalised cx, cy, w, h relative to the unpadded image (H 64, W 128)
    boxes = torch.tensor([[[0.5, 0.5, 0.5, 0.5]]])  # x 32..96, y 16..48
    m = box_masks(boxes, torch.tensor([[64, 128]]), (H, W), rule="touch")
    assert torch.equal(m[0, 0], cells((0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)))


def layout() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Part masks of image 0 (touch rule), and two queries: q0 targets person A (human box
    rows 0-1, cols 0-1) with the object at (1,2); q1 has human box (3,3), object (3,0)."""
    boxes, index = persons()
    part = rasterize_part_masks(boxes, index, 2, (H, W))[:1].flatten(2)  # [1, 6, 16]
    hum = torch.stack([cells((0, 0), (0, 1), (1, 0), (1, 1)), cells((3, 3))])[None]  # [1, 2, 16]
    obj = torch.stack([cells((1, 2)), cells((3, 0))])[None]
    return part, hum, obj


def test_progressive_masks_per_part_eqs_3_to_5() -> None:
    part, hum, obj = layout()
    m = part_layer_masks(part, hum, obj)  # [3, 1, 2, 6, 16]
    others_q0 = cells((2, 2), (2, 3), (3, 3))  # all parts minus A's box (eq. 3's m_hum')
    assert torch.equal(m[0, 0, 0, HAND], others_q0 | cells((1, 0), (1, 2)))
    assert torch.equal(m[1, 0, 0, HAND], cells((1, 0), (3, 3), (1, 2)))  # eq. 4: hands of all persons
    assert torch.equal(m[2, 0, 0, HAND], cells((1, 0), (1, 2)))  # eq. 5: only A's hand
    assert torch.equal(m[2, 0, 0, LEG], cells((1, 2)))  # no legs: the object alone
    # q1's human box holds B's hand: layer 1 shows every part outside it
    assert torch.equal(m[0, 0, 1, HEAD], cells((0, 0), (0, 1), (1, 0), (2, 2), (2, 3), (3, 0)))
    assert torch.equal(m[2, 0, 1, HAND], cells((3, 3), (3, 0)))


def test_merged_masks_eq_6_and_no_selection_fallback() -> None:
    part, hum, obj = layout()
    selected = torch.zeros(1, 2, 6, dtype=torch.bool)
    selected[0, 0, HAND] = selected[0, 0, HEAD] = True  # q1 keeps nothing
    m = merged_layer_masks(part, hum, obj, selected)  # [3, 1, 2, 16]
    sel = cells((1, 0), (3, 3), (0, 0), (0, 1))
    assert torch.equal(m[0, 0, 0], cells((2, 2), (2, 3), (3, 3), (1, 2)) | sel)
    assert torch.equal(m[1, 0, 0], sel | cells((1, 2)))
    assert torch.equal(m[2, 0, 0], cells((1, 0), (0, 0), (0, 1), (1, 2)))
    others_q1 = cells((0, 0), (0, 1), (1, 0), (2, 2), (2, 3))
    assert torch.equal(m[0, 0, 1], others_q1 | cells((3, 0)))  # decision 5: other persons + object
    assert torch.equal(m[1, 0, 1], cells((3, 0))) and torch.equal(m[2, 0, 1], cells((3, 0)))
    flat = merged_layer_masks(part, hum, obj, selected, progressive=False)
    assert all(torch.equal(flat[j], m[1]) for j in range(3))  # eq. 4 everywhere


def test_merged_equals_literal_eq_6_on_random_layouts() -> None:
    g = torch.Generator().manual_seed(0)
    part = torch.rand(2, 6, 30, generator=g) < 0.2
    hum, obj = torch.rand(2, 5, 30, generator=g) < 0.3, torch.rand(2, 5, 30, generator=g) < 0.1
    selected = torch.rand(2, 5, 6, generator=g) < 0.4
    selected[:, :, 0] = True  # every query keeps a part: eq. 6 applies unchanged
    literal = (part_layer_masks(part, hum, obj) & selected[None, ..., None]).any(3)  # max_k(m_j^{ik} n^{ik})
    assert torch.equal(merged_layer_masks(part, hum, obj, selected), literal)


def test_select_parts_fraction_rounds_up_and_breaks_ties_low() -> None:
    scores = torch.tensor([[[0.9, 0.1, 0.1, 0.1, 0.1, 0.1], [0.5, 0.5, 0.2, 0.1, 0.1, 0.1]]])
    n = select_parts(scores, "fraction", 0.25)  # 12 scores -> 3 kept
    expected = torch.zeros(1, 2, 6, dtype=torch.bool)
    expected[0, 0, 0] = expected[0, 1, 0] = expected[0, 1, 1] = True
    assert torch.equal(n, expected)
    ties = select_parts(torch.full((2, 3, 6), 0.5), "fraction", 0.25)  # 18 -> ceil(4.5) = 5 per image
    assert ties.sum().item() == 10 and ties[:, 0, :5].all() and not ties[:, 0, 5].any()
    assert math.ceil(0.25 * 64 * 6) == select_parts(torch.rand(1, 64, 6), "fraction").sum().item()


def test_select_parts_per_query_topk() -> None:
    scores = torch.tensor([[[0.1, 0.7, 0.7, 0.3, 0.9, 0.0]]])
    assert select_parts(scores, "per_query_topk", topk=3).flatten().tolist() == [False, True, True, False, True, False]
    assert select_parts(torch.zeros(2, 4, 6), "per_query_topk", topk=2)[..., :2].all()


def test_merge_queries_eq_7() -> None:
    d = torch.tensor([[[1.0, 2.0]]])  # [1, 1, 2]
    d_part = torch.arange(12, dtype=torch.float32).view(1, 1, 6, 2)
    n = torch.tensor([[[True, False, True, False, False, False]]])
    p = torch.tensor([[[0.5, 0.9, 0.25, 0.1, 0.1, 0.1]]])
    expected = d + 0.5 * d_part[:, :, 0] + 0.25 * d_part[:, :, 2]  # unselected parts add nothing
    assert torch.allclose(merge_queries(d, d_part, n, p), expected)


def test_ensure_visible_hides_padding_and_never_empties_a_row() -> None:
    valid = torch.tensor([[True, True, False]])
    visible = torch.tensor([[[True, False, True], [False, False, True], [False, False, False]]])
    out = ensure_visible(visible, valid)
    assert out.tolist() == [[[True, False, False], [True, True, False], [True, True, False]]]


def test_head_mask_layout_matches_multihead_attention() -> None:
    visible = torch.rand(2, 3, 5) < 0.5
    hidden = head_mask(visible, heads=4)
    assert hidden.shape == (8, 3, 5)
    for b in range(2):
        for h in range(4):
            assert torch.equal(hidden[b * 4 + h], ~visible[b])


def test_block_diagonal_hidden() -> None:
    m = block_diagonal_hidden(3, 2)
    assert m.shape == (6, 6) and not m[0, 1] and m[0, 2] and not m[5, 4] and m[5, 0]


@pytest.mark.parametrize("rule", ["touch", "corner"])
def test_rasterize_is_vectorised_over_many_persons(rule: str) -> None:
    boxes = torch.rand(200, 10, 4) * 400
    boxes[..., 2:] += boxes[..., :2]
    m = rasterize_part_masks(boxes, torch.randint(0, 4, (200,)), 4, (25, 42), rule=rule)
    assert m.shape == (4, 6, 25, 42)
