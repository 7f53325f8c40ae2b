"""Drawing helpers of predict and show: display scaling, nearest-cell overlays, labels kept
inside the canvas and apart, figures that always come out as RGB images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipeline import visualize as vis


@pytest.mark.parametrize(("w", "h", "long"), [(64, 48, 640), (800, 600, 800), (4000, 3000, 1280)])
def test_fit_scale_brings_the_longer_side_into_range(w, h, long):
    assert max(w, h) * vis.fit_scale(w, h) == pytest.approx(long)


def test_text_colour_reads_on_dark_and_light():
    assert vis.text_colour((0, 0, 128)) == (255, 255, 255)
    assert vis.text_colour((210, 245, 60)) == vis.INK


def test_cell_map_puts_each_cell_under_its_pixels():
    grid = np.zeros((2, 3), bool)
    grid[1, 2] = True  # input pixels x 64..96, y 32..64 of a 64 x 96 input
    tile = vis.cell_map(grid, (64, 96), (128, 192))  # tile = input x 2
    assert tile.shape == (128, 192)
    ys, xs = np.nonzero(tile)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (64, 127, 128, 191)


def test_cell_map_clips_a_partial_last_cell():
    grid = np.arange(4).reshape(2, 2)  # a 40 x 40 input: 2 x 2 cells, the second partly outside
    tile = vis.cell_map(grid, (40, 40), (40, 40))
    assert tile[0, 0] == 0 and tile[39, 39] == 3 and tile[0, 39] == 1


def test_labels_stay_inside_and_do_not_overlap():
    canvas = Image.new("RGB", (200, 100), "white")
    draw = ImageDraw.Draw(canvas)
    taken: list = []
    rects = [vis.draw_label(draw, (150, 5), "a long label text", vis.PAIR_COLOURS[i], taken=taken) for i in range(3)]
    for r in rects:
        assert r[0] >= 0 and r[1] >= 0 and r[2] <= 200 and r[3] <= 100
    for i in range(3):
        for j in range(i + 1, 3):
            assert not vis._overlaps(rects[i], rects[j])


def test_detection_figure_has_title_legend_and_note():
    img = Image.new("RGB", (96, 64), (120, 160, 200))
    pair = vis.PairDrawing(np.array([5, 5, 40, 60.0]), np.array([30, 20, 60, 40.0]), "1 hold cup 0.5",
                           ["1. hold cup 0.5", "interactiveness 0.9"], vis.PAIR_COLOURS[0])
    fig = vis.detection_figure(img, [pair], "title", note="a note")
    plain = vis.detection_figure(img, [], "title")
    assert fig.mode == "RGB" and fig.width > 640  # image scaled to >= 640 px plus the legend
    assert fig.height > plain.height  # the note strip
    px = np.asarray(fig)
    assert (np.abs(px.astype(int) - vis.PAIR_COLOURS[0]).sum(-1) == 0).sum() > 100  # the pair is drawn


def test_missing_object_box_is_skipped():
    img = Image.new("RGB", (64, 64), "white")
    pair = vis.PairDrawing(np.array([5, 5, 40, 60.0]), np.full(4, np.nan), "1 stand", ["1. stand"], vis.PAIR_COLOURS[1])
    assert vis.detection_figure(img, [pair], "t").mode == "RGB"


def test_overlays_keep_size_and_handle_empty_inputs():
    tile = Image.new("RGB", (30, 20), (100, 100, 100))
    heat = vis.overlay_heat(tile, np.zeros((20, 30)), np.zeros((20, 30), bool))
    cells = vis.overlay_cells(tile, np.ones((20, 30), bool), (255, 0, 0))
    assert heat.size == cells.size == (30, 20)
    assert not np.isnan(np.asarray(heat, float)).any()
    assert np.asarray(cells)[0, 0, 0] > np.asarray(cells)[0, 0, 1]  # tinted red


def test_bar_tile_and_grid_figure():
    bars = vis.bar_tile([0.1, 0.9], vis.GROUP_COLOURS[:2], ["foot", "leg"], [False, True], (120, 60))
    assert bars.size == (120, 60)
    fig = vis.grid_figure([[bars, bars], [bars]], "grid")
    assert fig.width >= 240 and fig.height >= 120


def test_skeletons_and_part_boxes_ignore_missing_values():
    canvas = Image.new("RGB", (100, 100), "white")
    kp = np.full((2, 17, 3), np.nan, np.float32)
    kp[0] = np.c_[np.linspace(10, 90, 17), np.linspace(10, 90, 17), np.full(17, 0.9)]
    vis.draw_skeletons(canvas, kp, 1.0)
    boxes = np.tile(np.array([10, 10, 30, 30], np.float32), (1, 10, 1))
    valid = np.zeros((1, 10), bool)
    valid[0, 5] = True
    vis.draw_part_boxes(canvas, boxes, (0, 1, 1, 0, 2, 5, 3, 4, 4, 3), 1.0, valid)
    px = np.asarray(canvas).astype(int)
    assert (np.abs(px - vis.GROUP_COLOURS[5]).sum(-1) == 0).any()  # head box drawn
    assert not (np.abs(px - vis.GROUP_COLOURS[0]).sum(-1) == 0).any()  # hidden parts not drawn
