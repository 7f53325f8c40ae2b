"""The ``cross_person`` scene kind: a target pair whose interactiveness only another person shows.

Player A stands in the kick pose with a ball at the raised ankle, drawn the same way whatever
the label. A second person R raises an arm holding a flag (COCO ``kite``) whose colour decides
A's pair: ``GO`` -> A kicks the ball (HICO-DET ``kick sports_ball``), ``STOP`` -> the pair is
annotated ``no_interaction sports_ball``. One decoy flag of each colour stands clear of every
person, placed the same way in both classes, so the colour of a flag somewhere in the image
says nothing; only the flag in R's hand does. R's flag is a signal, not an interaction: R's
pair is annotated ``no_interaction kite`` (kites appear in no other scene), so the positives of
the ``cross_person`` split are exactly A's kicks and its AP measures A's pair alone.

Every random number is drawn in the same order whatever the label (A's label is the first
draw), so the two classes of one seed differ only in the colour of R's flag.

Control (``synth.cross_person_control``): R raises an empty hand (the flag is laid out, then
removed, so A, the ball and the decoys stay where they were); A's label is still drawn, so
nothing in the image decides it. Images that carry no interaction (HICO-DET test images the
annotation file omits) lose the ball and R's flag.
"""

from __future__ import annotations

import numpy as np

from pipeline.synth.body import ARM, Body, pose_body
from pipeline.synth.catalog import KITE, PLACE, SPORTS_BALL, object_size
from pipeline.synth.config import SynthConfig
from pipeline.synth.scene import (
    Rng, Scene, Thing, Unit, _add_distractors, _place_grid, _tint, place_clear,
)

GO, STOP = (20, 185, 205), (205, 35, 160)  # flag colours (cyan, magenta): kick | no_interaction
FLAG_HEIGHT, FLAG_WIDTH = 0.5, 0.3  # flag box (pole + cloth), fractions of the bearer's height
FLAG_GRIP = 0.75  # where the hand holds the pole, fraction of the box height from its top
DECOY_CLEARANCE = 0.12  # decoy flag to person box gap, fraction of the person's height
PLAYER, BEARER = 0, 1  # person indices; the ball is object 0, the held flag object 1


def lay_out(rng: Rng, cfg: SynthConfig, scene: Scene, interactions: bool = True, kick: bool | None = None) -> bool:
    """Fill ``scene`` (background set) with A, R, the ball, the flags and the annotations;
    return A's label (True = kick). ``kick`` forces the label; the random draw that would decide
    it is made anyway, so a forced label leaves every other draw unchanged."""
    drawn = bool(rng.random() < 0.5)
    kick = drawn if kick is None else bool(kick)
    h = scene.height
    _place_grid(rng, scene, [_player(rng, cfg, rng.uniform(*cfg.cross_person_height) * h),
                             _bearer(rng, rng.uniform(*cfg.cross_person_height) * h)])
    flag = scene.objects[BEARER]
    scene.objects[BEARER] = Thing(KITE, flag.box, flag.facing, flag.tint, False, GO if kick else STOP)
    _decoy_flags(rng, scene)
    _add_distractors(rng, cfg, scene)
    player, bearer = scene.persons[PLAYER], scene.persons[BEARER]
    if not kick:
        player.action = None  # the ball stays drawn in front of A: same pixels as a kick
        scene.no_interaction.append((PLAYER, player.obj))
    bearer.action = None  # drawn holding the flag up; annotated as a signal (module docstring)
    if cfg.cross_person_control or not interactions:
        _drop_object(scene, BEARER)
    else:
        scene.no_interaction.append((BEARER, bearer.obj))
    if not interactions:
        player.action = None
        scene.no_interaction.clear()
        _drop_object(scene, player.obj)
    return kick


def _player(rng: Rng, cfg: SynthConfig, height: float) -> Unit:
    """A in the kick pose, the ball at the raised ankle (as in a ``kick`` scene)."""
    body = pose_body("kick", height, rng)
    wh = object_size(SPORTS_BALL, height, rng.uniform(*cfg.object_scale))
    box = PLACE["kick"](body, SPORTS_BALL, wh, rng)
    return Unit(body, Thing(SPORTS_BALL, box, body.facing, _tint(rng), False), "kick")


def _bearer(rng: Rng, height: float) -> Unit:
    """R with the active arm raised (front view), a flag on a pole in that hand."""
    body = pose_body("arm_raised", height, rng, view="front")
    return Unit(body, Thing(KITE, flag_in_hand(body), body.facing, _tint(rng), False), "hold")


def flag_in_hand(body: Body) -> np.ndarray:
    """Box (x1, y1, x2, y2, pixels) of a flag held upright at the active wrist: the pole (at the
    box's back edge) passes through the hand at ``FLAG_GRIP`` of its height, the cloth at the
    top flies outwards (``body.facing``)."""
    w, h = FLAG_WIDTH * body.height, FLAG_HEIGHT * body.height
    wx, wy = body.keypoints[ARM[body.active][2]]
    back = wx - body.facing * 0.06 * w
    x1, x2 = sorted((back, back + body.facing * w))
    return np.array([x1, wy - FLAG_GRIP * h, x2, wy + (1 - FLAG_GRIP) * h])


def _decoy_flags(rng: Rng, scene: Scene) -> None:
    """One free-standing flag of each colour, as large as a held one, ``DECOY_CLEARANCE`` of a
    person's height clear of every person and 2 px clear of every object; it shrinks by 15 %
    every 10 failed tries, and one that never fits is left out (whatever the label: no draw
    here depends on it)."""
    ref = float(np.median([p.body.height for p in scene.persons]))
    box = np.array([0.0, 0.0, FLAG_WIDTH * ref, FLAG_HEIGHT * ref])
    margin = 0.02 * min(scene.width, scene.height)
    clear = [DECOY_CLEARANCE * p.body.height for p in scene.persons]
    for color in (GO, STOP):  # shrunk by 15 % every 10 attempts
        placed = place_clear(rng, scene, lambda attempt: box * 0.85 ** (attempt // 10), margin, clear)
        if placed is not None:
            scene.objects.append(Thing(KITE, placed, int(rng.choice((-1, 1))), _tint(rng), True, color))


def _drop_object(scene: Scene, index: int) -> None:
    """Remove object ``index``; persons and no_interaction pairs keep pointing at the same
    objects (a person holding it holds nothing)."""
    del scene.objects[index]
    for person in scene.persons:
        if person.obj is not None:
            person.obj = None if person.obj == index else person.obj - (person.obj > index)
    scene.no_interaction = [(p, o - (o > index)) for p, o in scene.no_interaction if o != index]
