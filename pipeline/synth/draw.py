"""Pixels of a synthetic scene: background, stick figures, objects (each class its own shape and
colour) and occluding screens, drawn with PIL; plus which keypoints stay visible.

Everything random was decided in the layout (``synth_scene``), so drawing a scene is a pure
function of it: the same scene gives the same pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from pipeline.synth.body import BONES, hidden_keypoints
from pipeline.synth.catalog import (
    BICYCLE, BOTTLE, CHAIR, CHAIR_SEAT, CUP, HORSE, KITE, SADDLE, SPORTS_BALL, SUITCASE, TV, UNDER,
)
from pipeline.synth.scene import Background, Person, Scene, Thing

# base colour per class; each object adds its own small tint
COLORS = {SPORTS_BALL: (236, 118, 28), CUP: (204, 36, 40), BOTTLE: (36, 150, 64), CHAIR: (205, 150, 70),
          BICYCLE: (36, 80, 210), HORSE: (140, 74, 34), SUITCASE: (122, 48, 164), TV: (40, 44, 56),
          KITE: (20, 185, 205)}  # flags bring their own colour (Thing.color)
OCCLUDER = (96, 138, 72)  # a hedge-green screen; not a COCO class, never annotated


def render(scene: Scene) -> tuple[Image.Image, list[np.ndarray]]:
    """The RGB image of ``scene`` and, per person, a (17,) bool array of keypoints that are
    visible: drawn, not covered by a person drawn later or by a screen, not on the far side
    of a profile head."""
    img = _background(scene.width, scene.height, scene.background)
    ids = Image.new("L", (scene.width, scene.height), 0)  # which person owns each pixel
    draw, id_draw = ImageDraw.Draw(img), ImageDraw.Draw(ids)
    held = {p.obj for p in scene.persons if p.obj is not None and not _under(scene.objects[p.obj])}
    for i, thing in enumerate(scene.objects):
        if i not in held:
            draw_object(draw, thing)
    for k, person in enumerate(scene.persons):
        draw_person(draw, person)
        draw_person(id_draw, person, fill=k + 1)
        if person.obj in held:
            draw_object(draw, scene.objects[person.obj])
    for rect in scene.occluders:
        draw.rectangle(tuple(rect), fill=OCCLUDER, outline=(70, 104, 52), width=2)
        id_draw.rectangle(tuple(rect), fill=255)
    owner = np.asarray(ids)
    return img, [_visible(owner, k + 1, p) for k, p in enumerate(scene.persons)]


def _under(thing: Thing) -> bool:
    return thing.coco_id in UNDER


def _background(w: int, h: int, bg: Background) -> Image.Image:
    """Plain colour, optional ground band below the horizon, optional smooth low-amplitude
    noise (a coarse random grid upsampled bilinearly)."""
    arr = np.empty((h, w, 3), dtype=np.float32)
    arr[:] = bg.color
    if bg.ground is not None:
        arr[int(bg.horizon * h):] = bg.ground
    if bg.texture > 0:
        rng = np.random.default_rng(bg.texture_seed)
        coarse = rng.normal(0, bg.texture, (max(2, h // 16), max(2, w // 16))).astype(np.float32)
        smooth = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BILINEAR))
        arr += smooth[..., None] + rng.normal(0, bg.texture / 4, (h, w, 1)).astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def draw_person(draw: ImageDraw.ImageDraw, person: Person, fill: int | None = None) -> None:
    """Limbs as thick lines with round joints, head as a skin-coloured disc with a dark rim and
    eye dots. ``fill`` draws everything in one value (for the ownership mask)."""
    body = person.body
    kp = body.keypoints
    color = fill if fill is not None else person.color
    width = max(1, int(round(body.line)))
    neck, hip = kp[[5, 6]].mean(axis=0), kp[[11, 12]].mean(axis=0)
    segments = [(neck, hip)] + [(kp[a], kp[b]) for a, b in BONES]
    for a, b in segments:
        draw.line([tuple(a), tuple(b)], fill=color, width=width)
    r = body.line / 2
    for x, y in kp[5:]:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=color)
    cx, cy, hr = body.head
    rim = max(1, int(round(body.line / 2)))
    draw.ellipse((cx - hr, cy - hr, cx + hr, cy + hr), fill=fill if fill is not None else person.skin,
                 outline=color, width=rim)
    if fill is None and hr >= 5:
        er = max(0.8, hr * 0.12)
        hidden = hidden_keypoints(body)
        for i in (1, 2):
            if not hidden[i]:
                x, y = kp[i]
                draw.ellipse((x - er, y - er, x + er, y + er), fill=person.color)


def _visible(owner: np.ndarray, pid: int, person: Person) -> np.ndarray:
    """A keypoint is visible when its pixel or a 4-neighbour belongs to person ``pid``."""
    h, w = owner.shape
    xy = np.floor(person.body.keypoints).astype(int)
    vis = np.zeros(len(xy), dtype=bool)
    for dx, dy in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
        x, y = np.clip(xy[:, 0] + dx, 0, w - 1), np.clip(xy[:, 1] + dy, 0, h - 1)
        vis |= owner[y, x] == pid
    return vis & ~hidden_keypoints(person.body)


def _shade(rgb: tuple[int, int, int], tint: tuple[int, int, int], k: float = 1.0) -> tuple[int, int, int]:
    return tuple(int(np.clip(k * (c + t), 0, 255)) for c, t in zip(rgb, tint, strict=True))


class _Frame:
    """Maps (u, v) in [0, 1]² of an object's box to pixels; u runs from the object's back to its
    front (the side it faces), v from top to bottom."""

    def __init__(self, thing: Thing) -> None:
        self.x1, self.y1, self.x2, self.y2 = (float(v) for v in thing.box)
        self.w, self.h = self.x2 - self.x1, self.y2 - self.y1
        self.facing = thing.facing

    def __call__(self, u: float, v: float) -> tuple[float, float]:
        x = self.x1 + u * self.w if self.facing > 0 else self.x2 - u * self.w
        return x, self.y1 + v * self.h

    def rect(self, u1: float, v1: float, u2: float, v2: float) -> tuple[float, float, float, float]:
        (xa, ya), (xb, yb) = self(u1, v1), self(u2, v2)
        return min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)

    def lw(self, frac: float) -> int:
        return max(1, int(round(frac * min(self.w, self.h))))


def draw_object(draw: ImageDraw.ImageDraw, thing: Thing) -> None:
    """Draw ``thing`` inside its box in its class's shape and colour."""
    base = thing.color if thing.color is not None else COLORS[thing.coco_id]
    DRAWERS[thing.coco_id](draw, _Frame(thing), _shade(base, thing.tint))


def _rrect(d: ImageDraw.ImageDraw, rect: tuple[float, float, float, float], radius: int, **kw: object) -> None:
    """A rounded rectangle whose radius shrinks to fit (PIL refuses radii over half a side)."""
    radius = min(radius, int((rect[2] - rect[0]) / 2), int((rect[3] - rect[1]) / 2))
    if radius >= 1:
        d.rounded_rectangle(rect, radius=radius, **kw)
    else:
        d.rectangle(rect, **kw)


def _ball(d: ImageDraw.ImageDraw, f: _Frame, c: tuple[int, int, int]) -> None:
    d.ellipse(f.rect(0, 0, 1, 1), fill=c, outline=_shade(c, (0, 0, 0), 0.55), width=f.lw(0.07))
    seam, lw = _shade(c, (0, 0, 0), 0.5), f.lw(0.05)
    d.line([f(0.5, 0.04), f(0.5, 0.96)], fill=seam, width=lw)
    d.line([f(0.04, 0.5), f(0.96, 0.5)], fill=seam, width=lw)


def _cup(d: ImageDraw.ImageDraw, f: _Frame, c: tuple[int, int, int]) -> None:
    d.polygon([f(0.0, 0.0), f(0.72, 0.0), f(0.62, 1.0), f(0.1, 1.0)], fill=c)
    d.arc(f.rect(0.5, 0.2, 1.0, 0.7), 0, 360, fill=c, width=f.lw(0.12))
    d.line([f(0.0, 0.04), f(0.72, 0.04)], fill=(245, 245, 245), width=f.lw(0.1))


def _bottle(d: ImageDraw.ImageDraw, f: _Frame, c: tuple[int, int, int]) -> None:
    _rrect(d, f.rect(0.0, 0.38, 1.0, 1.0), f.lw(0.2), fill=c)
    d.polygon([f(0.0, 0.4), f(1.0, 0.4), f(0.68, 0.2), f(0.32, 0.2)], fill=c)
    d.rectangle(f.rect(0.32, 0.06, 0.68, 0.22), fill=c)
    d.rectangle(f.rect(0.28, 0.0, 0.72, 0.07), fill=(230, 230, 230))


def _chair(d: ImageDraw.ImageDraw, f: _Frame, c: tuple[int, int, int]) -> None:
    lw = f.lw(0.09)
    d.line([f(0.06, 0.0), f(0.06, 1.0)], fill=c, width=lw)  # back post, down to the floor
    d.line([f(0.0, CHAIR_SEAT), f(1.0, CHAIR_SEAT)], fill=c, width=lw)  # seat
    d.line([f(0.94, CHAIR_SEAT), f(0.94, 1.0)], fill=c, width=lw)  # front leg
    for v in (0.12, 0.3):
        d.line([f(0.06, v), f(0.3, v)], fill=c, width=max(1, lw // 2))  # back rail


def _bicycle(d: ImageDraw.ImageDraw, f: _Frame, c: tuple[int, int, int]) -> None:
    r = 0.36 * f.h / f.w  # wheel radius as a fraction of the width
    rv = 0.36
    lw = f.lw(0.05)
    for u in (r, 1 - r):
        d.ellipse(f.rect(u - r, 1 - 2 * rv, u + r, 1.0), outline=(30, 30, 30), width=lw)
    rear, front, crank = f(r, 1 - rv), f(1 - r, 1 - rv), f(0.45, 1 - rv)
    seat_u, seat_v = SADDLE[BICYCLE]
    seat, bar = f(seat_u, seat_v + 0.04), f(0.86, 0.06)
    d.line([rear, seat, crank, rear], fill=c, width=lw)
    d.line([seat, f(0.8, 0.22), crank], fill=c, width=lw)
    d.line([f(0.8, 0.22), front], fill=c, width=lw)
    d.line([f(0.8, 0.22), bar], fill=c, width=lw)
    d.line([f(seat_u - 0.08, seat_v), f(seat_u + 0.06, seat_v)], fill=(30, 30, 30), width=lw + 1)
    d.line([bar, f(0.92, 0.04)], fill=(30, 30, 30), width=lw)


def _horse(d: ImageDraw.ImageDraw, f: _Frame, c: tuple[int, int, int]) -> None:
    dark = _shade(c, (0, 0, 0), 0.6)
    leg = f.lw(0.06)
    for u in (0.2, 0.3, 0.66, 0.76):
        d.line([f(u, 0.55), f(u, 0.98)], fill=c, width=leg)
        d.line([f(u, 0.94), f(u, 1.0)], fill=dark, width=leg)
    d.ellipse(f.rect(0.1, 0.28, 0.85, 0.66), fill=c)
    d.polygon([f(0.7, 0.32), f(0.8, 0.12), f(0.92, 0.1), f(0.86, 0.45)], fill=c)  # neck
    d.ellipse(f.rect(0.8, 0.04, 1.0, 0.22), fill=c)  # head
    d.line([f(0.72, 0.3), f(0.8, 0.1)], fill=dark, width=leg)  # mane
    d.line([f(0.11, 0.36), f(0.0, 0.62)], fill=dark, width=leg)  # tail


def _suitcase(d: ImageDraw.ImageDraw, f: _Frame, c: tuple[int, int, int]) -> None:
    _rrect(d, f.rect(0.34, 0.0, 0.66, 0.22), f.lw(0.06), outline=(40, 40, 40), width=f.lw(0.06))
    _rrect(d, f.rect(0.0, 0.14, 1.0, 1.0), f.lw(0.12), fill=c)
    for u in (0.25, 0.75):
        d.line([f(u, 0.16), f(u, 0.98)], fill=_shade(c, (0, 0, 0), 0.6), width=f.lw(0.05))


def _tv(d: ImageDraw.ImageDraw, f: _Frame, c: tuple[int, int, int]) -> None:
    d.rectangle(f.rect(0.42, 0.8, 0.58, 0.95), fill=c)
    d.rectangle(f.rect(0.25, 0.93, 0.75, 1.0), fill=c)
    d.rectangle(f.rect(0.0, 0.0, 1.0, 0.82), fill=c)
    d.rectangle(f.rect(0.07, 0.08, 0.93, 0.74), fill=(96, 170, 226))


def _flag(d: ImageDraw.ImageDraw, f: _Frame, c: tuple[int, int, int]) -> None:
    """A signal flag: a dark pole along the box's back edge, the cloth at the top."""
    pole = max(1, int(round(0.05 * f.h)))
    d.rectangle(f.rect(0.08, 0.03, 1.0, 0.4), fill=c, outline=_shade(c, (0, 0, 0), 0.6), width=max(1, pole // 2))
    d.line([f(0.06, 0.0), f(0.06, 1.0)], fill=(60, 60, 60), width=pole)


DRAWERS: dict[int, Callable[[ImageDraw.ImageDraw, _Frame, tuple[int, int, int]], None]] = {
    SPORTS_BALL: _ball, CUP: _cup, BOTTLE: _bottle, CHAIR: _chair, BICYCLE: _bicycle, HORSE: _horse,
    SUITCASE: _suitcase, TV: _tv, KITE: _flag,
}
