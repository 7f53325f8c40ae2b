"""Drawing for ``predict`` and ``show``: boxes, labels on background boxes, legends, COCO
skeletons, HAKE part boxes, overlays of stride-32 cell grids (part masks, attention) and tile
grids. PIL only, plus one matplotlib colormap for heat maps.

Conventions: boxes are ``x1, y1, x2, y2`` float pixels of the image a figure is made from;
every function that draws onto a display copy takes the display ``scale`` (display px per
image px) and applies it. Cell grids are ``[h, w]`` arrays over the network input, whose cell ``(r, c)``
covers input pixels ``[32 r, 32 r + 32) x [32 c, 32 c + 32)``. Colours are RGB tuples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Colour = tuple[int, int, int]
Rect = tuple[float, float, float, float]

# Distinct, saturated colours (Trubetskoy's list); white or black text is chosen per colour.
PAIR_COLOURS: tuple[Colour, ...] = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
    (240, 50, 230), (210, 245, 60), (0, 128, 128), (170, 110, 40), (128, 0, 0), (0, 0, 128),
)
# one colour per body-part group, in PART_GROUP_NAMES order: foot, leg, hip, hand, arm, head
GROUP_COLOURS: tuple[Colour, ...] = (
    (255, 140, 0), (30, 144, 255), (148, 0, 211), (255, 20, 147), (50, 205, 50), (255, 215, 0),
)
# COCO-17 limbs (keypoint index pairs)
COCO_SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
                 (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))
BACKGROUND: Colour = (255, 255, 255)
INK: Colour = (20, 20, 20)
DISPLAY_LONG = (640, 1280)  # detection figures: longer image side scaled into this range (px)


@cache
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled scalable font at ``size`` px."""
    return ImageFont.load_default(size=size)


def text_colour(bg: Colour) -> Colour:
    """Black or white, whichever reads better on ``bg`` (relative luminance)."""
    r, g, b = bg
    return INK if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (255, 255, 255)


def fit_scale(width: int, height: int, long_range: tuple[int, int] = DISPLAY_LONG) -> float:
    """Display px per image px: small images are enlarged and huge ones reduced so that the
    longer side lies in ``long_range``."""
    long = max(width, height, 1)
    return float(np.clip(long, *long_range) / long)


def scaled(image: Image.Image, scale: float) -> Image.Image:
    """An RGB copy of ``image`` resized by ``scale`` (bilinear; box-filtered when reducing)."""
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resample = Image.Resampling.BILINEAR if scale >= 1 else Image.Resampling.BOX
    return image.convert("RGB").resize(size, resample)


def draw_box(draw: ImageDraw.ImageDraw, box: Sequence[float], colour: Colour, width: int = 3,
             dashed: bool = False) -> None:
    """A rectangle in display pixels; ``dashed`` for object boxes (persons are solid)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not dashed:
        draw.rectangle([x1, y1, max(x1, x2), max(y1, y2)], outline=colour, width=width)
        return
    dash, gap = 3 * width + 4, 2 * width + 2
    for a, b, fixed, horizontal in ((x1, x2, y1, True), (x1, x2, y2, True), (y1, y2, x1, False), (y1, y2, x2, False)):
        for s in np.arange(a, b, dash + gap):  # a handful of segments per edge
            e = min(s + dash, b)
            xy = [s, fixed, e, fixed] if horizontal else [fixed, s, fixed, e]
            draw.line(xy, fill=colour, width=width)


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def draw_label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, colour: Colour,
               size: int = 15, taken: list[Rect] | None = None) -> Rect:
    """``text`` on a filled box of ``colour`` with its bottom-left at ``xy`` (display px), kept
    inside the canvas and moved down past labels already in ``taken`` (which it joins)."""
    fnt = font(size)
    l, t, r, b = draw.textbbox((0, 0), text, font=fnt)
    w, h = r - l + 8, b - t + 6
    cw, ch = draw.im.size
    x = float(np.clip(xy[0], 0, max(0, cw - w)))
    y = float(np.clip(xy[1] - h, 0, max(0, ch - h)))
    taken = taken if taken is not None else []
    for _ in range(len(taken) + 1):  # at most one shift per placed label
        rect = (x, y, x + w, y + h)
        hit = [o for o in taken if _overlaps(rect, o)]
        if not hit:
            break
        y = min(max(o[3] for o in hit) + 1, max(0, ch - h))
    rect = (x, y, x + w, y + h)
    draw.rectangle(rect, fill=colour)
    draw.text((x + 4 - l, y + 3 - t), text, font=fnt, fill=text_colour(colour))
    taken.append(rect)
    return rect


@dataclass
class PairDrawing:
    """One human-object pair to draw. Boxes in pixels of the image it is drawn on, before
    the figure's display scale (``obj`` None or NaN: no object);
    ``tag`` the short label at the object (e.g. "1 hold cup 0.83"); ``legend`` the legend
    lines; ``colour`` the pair's colour."""

    human: np.ndarray
    obj: np.ndarray | None
    tag: str
    legend: list[str]
    colour: Colour


def _centre(box: Sequence[float]) -> tuple[float, float]:
    return (float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2)


def draw_pairs(canvas: Image.Image, pairs: Sequence[PairDrawing], scale: float) -> Image.Image:
    """Human boxes solid, object boxes dashed, a line between their centres, the rank at the
    human and the tag at the object, all in the pair's colour (drawn onto ``canvas``)."""
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(canvas.width / 320))
    for p in reversed(pairs):  # best pair drawn last, on top
        h = np.asarray(p.human, np.float64) * scale
        draw_box(draw, h, p.colour, width)
        if p.obj is not None and np.isfinite(p.obj).all():
            o = np.asarray(p.obj, np.float64) * scale
            draw_box(draw, o, p.colour, width, dashed=True)
            draw.line([_centre(h), _centre(o)], fill=p.colour, width=max(1, width - 1))
    taken: list[Rect] = []
    for p in pairs:
        anchor = p.obj if p.obj is not None and np.isfinite(p.obj).all() else p.human
        a = np.asarray(anchor, np.float64) * scale
        draw_label(draw, (a[0], a[1]), p.tag, p.colour, taken=taken)
    return canvas


def legend_panel(rows: Sequence[tuple[Colour | None, Sequence[str]]], width: int, height: int,
                 title: str = "") -> Image.Image:
    """A white panel listing ``(colour swatch or None, lines)`` rows under ``title``."""
    panel = Image.new("RGB", (width, max(height, 40)), BACKGROUND)
    draw = ImageDraw.Draw(panel)
    y = 8
    if title:
        draw.text((10, y), title, font=font(16), fill=INK)
        y += 26
    for colour, lines in rows:
        if y > panel.height - 20:
            draw.text((10, y), "...", font=font(14), fill=INK)
            break
        if colour is not None:
            draw.rectangle([10, y + 2, 26, y + 16], fill=colour, outline=INK)
        for k, line in enumerate(lines):
            draw.text((34, y), line, font=font(15 if k == 0 else 13), fill=INK if k == 0 else (90, 90, 90))
            y += 19 if k == 0 else 16
        y += 6
    return panel


def banner(text: str, width: int, size: int = 17, colour: Colour = (40, 40, 40)) -> Image.Image:
    """A one-line title strip of ``width`` px (text clipped by the canvas when too long)."""
    strip = Image.new("RGB", (width, size + 14), colour)
    ImageDraw.Draw(strip).text((10, 6), text, font=font(size), fill=text_colour(colour))
    return strip


def stack(parts: Sequence[Image.Image], horizontal: bool = False, gap: int = 0) -> Image.Image:
    """Images side by side (or one under the other) on white, top/left aligned."""
    if horizontal:
        size = (sum(p.width for p in parts) + gap * (len(parts) - 1), max(p.height for p in parts))
    else:
        size = (max(p.width for p in parts), sum(p.height for p in parts) + gap * (len(parts) - 1))
    out = Image.new("RGB", size, BACKGROUND)
    pos = 0
    for p in parts:
        out.paste(p, (pos, 0) if horizontal else (0, pos))
        pos += (p.width if horizontal else p.height) + gap
    return out


def detection_figure(image: Image.Image, pairs: Sequence[PairDrawing], title: str,
                     note: str | None = None, legend_width: int = 380, info: str | None = None) -> Image.Image:
    """The predict PNG: title strip, the image (display-scaled) with the pairs, and a legend
    with one entry per pair; ``info`` (e.g. conversions applied) in a grey strip and ``note``
    (e.g. "no person found") in a red strip under the title."""
    scale = fit_scale(image.width, image.height)
    canvas = draw_pairs(scaled(image, scale), pairs, scale)
    rows = [(p.colour, p.legend) for p in pairs] or [(None, ["no detections"])]
    key = (None, ["solid box: person, dashed box: object", "scores: verb x object probability"])
    legend = legend_panel([*rows, key], legend_width, canvas.height, title="detections (best first)")
    body = stack([canvas, legend], horizontal=True)
    strips = [banner(title, body.width)]
    if info:
        strips.append(banner(info, body.width, size=14, colour=(225, 225, 225)))
    if note:
        strips.append(banner(note, body.width, colour=(200, 30, 30)))
    return stack([*strips, body])


def draw_skeletons(canvas: Image.Image, keypoints: np.ndarray, scale: float, threshold: float = 0.2) -> None:
    """COCO-17 skeletons of ``keypoints`` [N, 17, 3] (original px, score); limbs whose two
    joints score >= ``threshold`` are drawn, low-score joints as hollow dots."""
    draw = ImageDraw.Draw(canvas)
    kp = np.asarray(keypoints, np.float64)
    r = max(3, round(canvas.width / 140))
    for person in kp:
        if not np.isfinite(person).all():
            continue
        xy, ok = person[:, :2] * scale, person[:, 2] >= threshold
        for a, b in COCO_SKELETON:
            if ok[a] and ok[b]:
                draw.line([tuple(xy[a]), tuple(xy[b])], fill=INK, width=r + 1)  # dark outline
                draw.line([tuple(xy[a]), tuple(xy[b])], fill=(255, 255, 255), width=max(1, r - 1))
        for (x, y), good in zip(xy, ok):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=(255, 0, 0) if good else None, outline=INK)


def draw_part_boxes(canvas: Image.Image, part_boxes: np.ndarray, groups: Sequence[int], scale: float,
                    valid: np.ndarray | None = None) -> None:
    """Part boxes [N, 10, 4] (original px) outlined in their group's colour (``groups`` maps
    part -> group); ``valid`` [N, 10] False hides a part."""
    draw = ImageDraw.Draw(canvas)
    boxes = np.asarray(part_boxes, np.float64) * scale
    show = np.ones(boxes.shape[:2], bool) if valid is None else np.asarray(valid, bool)
    for n, k in zip(*np.nonzero(show & np.isfinite(boxes).all(-1))):
        draw_box(draw, boxes[n, k], GROUP_COLOURS[groups[k]], width=2)


def cell_map(grid: np.ndarray, input_hw: tuple[int, int], tile_hw: tuple[int, int], stride: int = 32) -> np.ndarray:
    """Nearest-cell lookup: the value of the stride cell under each tile pixel, where the tile
    shows the ``input_hw`` network input. grid [h, w] -> [tile_h, tile_w] (vectorised)."""
    th, tw = tile_hw
    rows = np.floor((np.arange(th) + 0.5) * input_hw[0] / th / stride).astype(np.int64)
    cols = np.floor((np.arange(tw) + 0.5) * input_hw[1] / tw / stride).astype(np.int64)
    g = np.asarray(grid)
    return g[np.clip(rows, 0, g.shape[0] - 1)[:, None], np.clip(cols, 0, g.shape[1] - 1)[None, :]]


def overlay_cells(tile: Image.Image, cells: np.ndarray, colour: Colour, alpha: float = 0.55) -> Image.Image:
    """``tile`` dimmed outside ``cells`` (bool [H, W] in tile px) and tinted with ``colour`` inside."""
    img = np.asarray(tile.convert("RGB"), np.float32)
    on = np.asarray(cells, bool)[..., None]
    tint = (1 - alpha) * img + alpha * np.asarray(colour, np.float32)
    out = np.where(on, tint, 0.45 * img + 0.55 * 255 * 0.15)
    return Image.fromarray(out.clip(0, 255).astype(np.uint8))


def overlay_heat(tile: Image.Image, heat: np.ndarray, visible: np.ndarray | None = None,
                 alpha: float = 0.6) -> Image.Image:
    """``tile`` with ``heat`` ([H, W] in tile px, any non-negative scale, shown relative to its
    maximum) in the turbo colormap; cells outside ``visible`` (the attention mask) greyed out."""
    from matplotlib import colormaps

    h = np.asarray(heat, np.float32)
    top = float(h.max()) if h.size and h.max() > 0 else 1.0
    colour = colormaps["turbo"](h / top)[..., :3] * 255  # [H, W, 3]
    img = np.asarray(tile.convert("RGB"), np.float32)
    out = (1 - alpha) * img + alpha * colour
    if visible is not None:
        grey = img.mean(-1, keepdims=True) * 0.35 + 30
        out = np.where(np.asarray(visible, bool)[..., None], out, grey)
    return Image.fromarray(out.clip(0, 255).astype(np.uint8))


def titled(tile: Image.Image, title: str, size: int = 14) -> Image.Image:
    """``tile`` under a white strip holding ``title``."""
    strip = Image.new("RGB", (tile.width, size + 10), BACKGROUND)
    ImageDraw.Draw(strip).text((4, 4), title, font=font(size), fill=INK)
    return stack([strip, tile])


def grid_figure(rows: Sequence[Sequence[Image.Image]], title: str, gap: int = 6) -> Image.Image:
    """Rows of tiles (any count per row, left aligned) under a title strip."""
    lines = [stack(list(r), horizontal=True, gap=gap) for r in rows if r]
    body = stack(lines, gap=gap) if lines else Image.new("RGB", (400, 40), BACKGROUND)
    return stack([banner(title, body.width), body], gap=gap)


def bar_tile(values: Sequence[float], colours: Sequence[Colour], labels: Sequence[str],
             highlighted: Sequence[bool] | None, size: tuple[int, int]) -> Image.Image:
    """Horizontal bars of ``values`` in [0, 1], one per label; bars not ``highlighted`` are
    drawn hollow (e.g. body parts dropped by the filtering of Sec. 3.4)."""
    w, h = size
    tile = Image.new("RGB", (w, h), BACKGROUND)
    draw = ImageDraw.Draw(tile)
    n = max(1, len(values))
    row = h / n
    fnt = font(int(np.clip(row * 0.45, 10, 16)))
    left, right = 52, w - 48
    for i, (v, colour, label) in enumerate(zip(values, colours, labels)):
        y0, y1 = i * row + row * 0.2, (i + 1) * row - row * 0.2
        x1 = left + float(np.clip(v, 0, 1)) * (right - left)
        fill = colour if highlighted is None or highlighted[i] else None
        draw.rectangle([left, y0, max(left + 1, x1), y1], fill=fill, outline=colour, width=2)
        draw.text((4, y0), label, font=fnt, fill=INK)
        draw.text((right + 4, y0), f"{v:.2f}", font=fnt, fill=INK)
    return tile
