"""Scene layout of one synthetic image: who stands where, in which pose, doing what with which
object; distractor objects; occluding screens. Pure geometry, no pixels.

Boxes are (x1, y1, x2, y2) float64 in continuous pixel coordinates of the image (pixel (i, j)
covers [i, i+1) × [j, j+1)); the format writers convert them to each dataset's convention.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.synth.body import Body, pose_body
from pipeline.synth.catalog import ACTIONS, IDLE_POSES, PLACE, object_classes, object_size
from pipeline.synth.config import SynthConfig

ATTEMPTS = 40  # random positions tried per figure or object before giving up
DISTRACTOR_CLEARANCE = 0.45  # distractor to person box gap, fraction of the person's height
FOOTPRINT = ("hold", "look", "kick", "carry", "sit_on", "ride")  # actions, smallest extent first
Rng = np.random.Generator


@dataclass
class Thing:
    """An object: COCO class, extent, which way it faces (+1 right), colour jitter; ``color``
    replaces the class's base colour (the flags of cross_person scenes)."""

    coco_id: int
    box: np.ndarray
    facing: int
    tint: tuple[int, int, int]
    distractor: bool
    color: tuple[int, int, int] | None = None


@dataclass
class Person:
    """A figure; ``action`` and ``obj`` (index into Scene.objects) when it interacts. ``obj``
    without ``action``: an object drawn with the figure (in front of it) that it does not
    interact with (the no_interaction player of a cross_person scene)."""

    body: Body
    color: tuple[int, int, int]
    skin: tuple[int, int, int]
    action: str | None = None
    obj: int | None = None
    visible: np.ndarray | None = None  # (17,) bool, filled in by the renderer

    @property
    def box(self) -> np.ndarray:
        return self.body.box()


@dataclass
class Background:
    color: tuple[int, int, int]
    ground: tuple[int, int, int] | None  # lower band colour, None = plain
    horizon: float  # fraction of the height where the ground starts
    texture: float  # noise amplitude (0 = none)
    texture_seed: int


@dataclass
class Scene:
    width: int
    height: int
    kind: str
    background: Background
    persons: list[Person] = field(default_factory=list)
    objects: list[Thing] = field(default_factory=list)
    occluders: list[np.ndarray] = field(default_factory=list)
    no_interaction: list[tuple[int, int]] = field(default_factory=list)  # (person, object)


def union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])])


def intersects(a: np.ndarray, b: np.ndarray, gap: float = 0.0) -> bool:
    """True when boxes ``a`` and ``b`` come closer than ``gap`` pixels."""
    return bool(a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap)


@dataclass
class Unit:
    """A figure and its object (if any), not yet placed: the hip centre is at the origin."""

    body: Body
    thing: Thing | None
    action: str | None

    def extent(self) -> np.ndarray:
        return self.body.box() if self.thing is None else union(self.body.box(), self.thing.box)

    def scaled(self, s: float) -> Unit:
        thing = None if self.thing is None else replace(self.thing, box=self.thing.box * s)
        return Unit(self.body.scaled(s), thing, self.action)


def make_scene(rng: Rng, cfg: SynthConfig, kind: str, size: tuple[int, int], interactions: bool = True) -> Scene:
    """Lay out one image of scene ``kind`` (see ``SceneMix``) of ``size`` = (width, height) px.

    With ``interactions`` at least one person interacts (so the image has a HOI to annotate);
    without, nobody does (HICO-DET test images that its annotation file omits).
    """
    w, h = size
    scene = Scene(w, h, kind, _background(rng, cfg.texture_rate))
    if kind == "cross_person":
        from pipeline.synth.cross import lay_out  # imported here: synth_cross builds on this module
        lay_out(rng, cfg, scene, interactions)
        return scene
    n, heights, rate = _kind_params(rng, cfg, kind)
    units = [_unit(rng, cfg, a, rng.uniform(*heights) * h) for a in _actions(rng, cfg, kind, n, rate, interactions)]
    if kind in ("tiny", "occluded"):
        for unit in units:
            _place_free(rng, scene, unit, overlap=kind == "occluded")
    else:
        _place_grid(rng, scene, units)
    if interactions and not any(p.action for p in scene.persons):
        # every interacting figure failed to fit: add the smallest interaction there is
        action = min(cfg.actions, key=FOOTPRINT.index)
        _place_free(rng, scene, _unit(rng, cfg, action, heights[0] * h), overlap=False)
    _add_distractors(rng, cfg, scene)
    if interactions:
        _pair_no_interaction(rng, cfg, scene)
    if kind == "occluded" and rng.random() < cfg.occluder_rate:
        scene.occluders.append(_occluder(rng, scene))
    return scene


def _kind_params(rng: Rng, cfg: SynthConfig, kind: str) -> tuple[int, tuple[float, float], float]:
    """(number of persons, height range as fractions of the image height, interaction rate)."""
    lo, hi = cfg.crowd_size
    if kind == "sparse":
        return 1, cfg.person_height, cfg.sparse_interact_rate
    if kind in ("crowded", "group"):
        return int(rng.integers(lo, hi + 1)), cfg.person_height, (1.0 if kind == "group" else cfg.interact_rate)
    if kind == "tiny":
        return int(rng.integers(1, 4)), cfg.tiny_height, cfg.interact_rate
    if kind == "occluded":
        return int(rng.integers(2, 4)), cfg.occluded_height, cfg.interact_rate
    raise ValueError(f"unknown scene kind {kind!r}")


def _actions(rng: Rng, cfg: SynthConfig, kind: str, n: int, rate: float, interactions: bool) -> list[str | None]:
    """Each person's action (None = idle); a group shares one; at least one unless not
    ``interactions``."""
    if not interactions:
        return [None] * n
    wants = rng.random(n) < rate
    if not wants.any():
        wants[rng.integers(n)] = True
    shared = str(rng.choice(cfg.actions))
    return [(shared if kind == "group" else str(rng.choice(cfg.actions))) if want else None for want in wants]


def _background(rng: Rng, texture_rate: float) -> Background:
    """A light plain colour, half the time with a darker ground band, sometimes textured."""
    base = tuple(int(v) for v in rng.integers(175, 246, 3))
    ground = tuple(int(v) for v in np.clip(np.array(base) - rng.integers(15, 45, 3), 120, 255))
    has_ground, horizon = rng.random() < 0.5, float(rng.uniform(0.55, 0.8))
    texture = float(rng.uniform(5, 14)) if rng.random() < texture_rate else 0.0
    return Background(base, ground if has_ground else None, horizon, texture, int(rng.integers(2**31)))


def _unit(rng: Rng, cfg: SynthConfig, action: str | None, height: float) -> Unit:
    """A figure (hip at the origin) and, when it interacts, its object placed at the body part."""
    pose = ACTIONS[action].pose if action else str(rng.choice(IDLE_POSES))
    body = pose_body(pose, height, rng)
    if action is None:
        return Unit(body, None, None)
    coco = int(rng.choice(ACTIONS[action].objects))
    wh = object_size(coco, height, rng.uniform(*cfg.object_scale))
    return Unit(body, Thing(coco, PLACE[action](body, coco, wh, rng), body.facing, _tint(rng), False), action)


def _tint(rng: Rng) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(-14, 15, 3))


def _commit(rng: Rng, scene: Scene, unit: Unit, shift: np.ndarray) -> None:
    person = Person(unit.body.translated(*shift), _dark(rng), _skin(rng), unit.action)
    if unit.thing is not None:
        scene.objects.append(replace(unit.thing, box=unit.thing.box + np.tile(shift, 2)))
        person.obj = len(scene.objects) - 1
    scene.persons.append(person)


def _place_grid(rng: Rng, scene: Scene, units: list[Unit]) -> None:
    """One unit per cell of a 1×n or 2×⌈n/2⌉ grid (whichever lets the figures be larger), at a
    random spot of its cell; a unit larger than its cell shrinks to fit. Boxes never overlap."""
    n = len(units)
    grids = {(1, n), (2, -(-n // 2))} if n > 1 else {(1, 1)}
    margin = 0.02 * min(scene.width, scene.height)

    def fit(unit: Unit, rows: int, cols: int) -> float:
        ext = unit.extent()
        room = (scene.width / cols - 2 * margin, scene.height / rows - 2 * margin)
        return min(1.0, room[0] / (ext[2] - ext[0]), room[1] / (ext[3] - ext[1]))

    rows, cols = max(sorted(grids), key=lambda g: min(fit(u, *g) for u in units))
    cells = rng.permutation(rows * cols)[:n]
    for unit, cell in zip(units, cells, strict=True):
        unit = unit.scaled(fit(unit, rows, cols))
        ext = unit.extent()
        cx0, cy0 = (cell % cols) * scene.width / cols, (cell // cols) * scene.height / rows
        room_x = scene.width / cols - 2 * margin - (ext[2] - ext[0])
        room_y = scene.height / rows - 2 * margin - (ext[3] - ext[1])
        x = cx0 + margin + rng.uniform(0, max(room_x, 0)) - ext[0]
        y = cy0 + margin + rng.uniform(0, max(room_y, 0)) - ext[1]
        _commit(rng, scene, unit, np.array([x, y]))


def _place_free(rng: Rng, scene: Scene, unit: Unit, overlap: bool) -> bool:
    """Place ``unit`` at a random spot clear of everything, or, with ``overlap``, sideways over
    the previous person. Shrinks by 15 % every 8 failed tries, gives up the overlap after 24;
    returns False when it never fits."""
    margin = 0.02 * min(scene.width, scene.height)
    taken = [p.box for p in scene.persons] + [t.box for t in scene.objects]
    anchor = scene.persons[-1].box if overlap and scene.persons else None
    for attempt in range(ATTEMPTS):
        if attempt in (8, 16, 24, 32):
            unit = unit.scaled(0.85)
        use_anchor = anchor if attempt < 24 else None
        ext = unit.extent()
        shift = _offset(rng, ext, scene, margin, use_anchor, unit.body.box())
        if shift is None:
            continue
        if use_anchor is None and any(intersects(ext + np.tile(shift, 2), b, gap=2.0) for b in taken):
            continue
        _commit(rng, scene, unit, shift)
        return True
    return False


def _offset(rng: Rng, box: np.ndarray, scene: Scene, margin: float, anchor: np.ndarray | None,
            person: np.ndarray | None = None) -> np.ndarray | None:
    """A random translation that puts ``box`` (a unit's extent) inside the image, ``margin`` px
    clear of the edges; with ``anchor``, one that makes the unit's ``person`` box overlap the
    anchor box sideways by 25-60 % of the narrower width, feet at about the anchor's level."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    if scene.width - 2 * margin - bw < 0 or scene.height - 2 * margin - bh < 0:
        return None
    lo = np.array([margin - box[0], margin - box[1]])  # allowed shifts keep box inside
    hi = np.array([scene.width - margin - box[2], scene.height - margin - box[3]])
    if anchor is None:
        return rng.uniform(lo, hi)
    person = box if person is None else person
    pw = person[2] - person[0]
    overlap = rng.uniform(0.25, 0.6) * min(pw, anchor[2] - anchor[0])
    y = float(np.clip(anchor[3] - person[3] + rng.uniform(-0.1, 0.1) * bh, lo[1], hi[1]))
    first = rng.choice((-1, 1))
    for side in (first, -first):
        x = (anchor[2] - overlap - person[0]) if side > 0 else (anchor[0] + overlap - pw - person[0])
        if lo[0] <= x <= hi[0]:
            return np.array([x, y])
    return None


def _dark(rng: Rng) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(10, 75, 3))


def _skin(rng: Rng) -> tuple[int, int, int]:
    return int(rng.integers(200, 246)), int(rng.integers(150, 200)), int(rng.integers(120, 170))


def is_clear(box: np.ndarray, scene: Scene, person_gaps: list[float]) -> bool:
    """``box`` keeps ``person_gaps[i]`` pixels from person i and 2 px from every object."""
    if any(intersects(box, p.box, gap) for p, gap in zip(scene.persons, person_gaps, strict=True)):
        return False
    return not any(intersects(box, t.box, 2.0) for t in scene.objects)


def place_clear(rng: Rng, scene: Scene, size_at: Callable[[int], np.ndarray], margin: float,
                person_gaps: list[float]) -> np.ndarray | None:
    """A free-standing box (x1, y1, x2, y2 px) that :func:`is_clear` accepts, or None: up to
    ATTEMPTS random positions of ``size_at(attempt)`` (a box at the origin), stopping early
    when the box no longer fits inside the margin."""
    for attempt in range(ATTEMPTS):
        size = size_at(attempt)
        shift = _offset(rng, size, scene, margin, None)
        if shift is None:
            return None
        placed = size + np.tile(shift, 2)
        if is_clear(placed, scene, person_gaps):
            return placed
    return None


def _add_distractors(rng: Rng, cfg: SynthConfig, scene: Scene) -> None:
    """Objects nobody uses, kept clear of every person's box by 45 % of that person's height
    (at least 4 % of the image), farther than any interacting object sits, so that an object
    near a body part always means an interaction."""
    lo, hi = cfg.distractors
    classes = object_classes(cfg.actions)
    ref = float(np.median([p.body.height for p in scene.persons])) if scene.persons else 0.5 * scene.height
    floor = 0.04 * max(scene.width, scene.height)
    clear = [max(floor, DISTRACTOR_CLEARANCE * p.body.height) for p in scene.persons]
    margin = 0.02 * min(scene.width, scene.height)
    for _ in range(int(rng.integers(lo, hi + 1))):
        coco = int(rng.choice(classes))
        w, h = object_size(coco, ref, rng.uniform(*cfg.object_scale))
        box = np.array([0.0, 0.0, w, h])
        placed = place_clear(rng, scene, lambda _: box, margin, clear)
        if placed is not None:
            scene.objects.append(Thing(coco, placed, int(rng.choice((-1, 1))), _tint(rng), True))


def _pair_no_interaction(rng: Rng, cfg: SynthConfig, scene: Scene) -> None:
    """Some idle persons get an annotated no_interaction pair with the nearest distractor."""
    distractors = [i for i, t in enumerate(scene.objects) if t.distractor]
    if not distractors:
        return
    for p_idx, person in enumerate(scene.persons):
        if person.action is None and rng.random() < cfg.no_interaction_rate:
            centre = (person.box[:2] + person.box[2:]) / 2
            dist = [np.linalg.norm((scene.objects[o].box[:2] + scene.objects[o].box[2:]) / 2 - centre)
                    for o in distractors]
            scene.no_interaction.append((p_idx, distractors[int(np.argmin(dist))]))


def _occluder(rng: Rng, scene: Scene) -> np.ndarray:
    """A screen over the lower 30–50 % of one person, wider than the person."""
    box = scene.persons[int(rng.integers(len(scene.persons)))].box
    bw, bh = box[2] - box[0], box[3] - box[1]
    top = box[3] - rng.uniform(0.3, 0.5) * bh
    grow = rng.uniform(0.1, 0.4, 2) * bw
    rect = np.array([box[0] - grow[0], top, box[2] + grow[1], box[3] + 0.05 * bh])
    return np.clip(rect, 0, [scene.width, scene.height, scene.width, scene.height])
