"""What the synthetic people do: each action's pose, its object classes, where the object sits
relative to the body part that carries the interaction, and its HICO-DET / V-COCO labels.

The labels are the datasets' real ids: HICO-DET verbs by name (looked up in
``model.common.labels.hico()``), objects by COCO category id, V-COCO (action, role) pairs from
``model.common.labels.vcoco()``. Every (verb, object) pair used here is a HICO-DET HOI class
(checked by ``check_catalog`` and the tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from model.common import labels
from pipeline.synth.body import ARM, LEG, Body
from pipeline.tables import PART_GROUP_NAMES

SPORTS_BALL, CUP, BOTTLE, CHAIR, BICYCLE, HORSE, SUITCASE, TV = 37, 47, 44, 62, 2, 19, 33, 72
KITE = 38  # drawn as a signal flag on a pole (cross_person scenes): the COCO class closest to one

# object shapes: width / height of the drawn extent, and whether the object stands under the
# person (drawn before the figure) rather than in front of it
ASPECT = {SPORTS_BALL: 1.0, CUP: 0.8, BOTTLE: 0.42, CHAIR: 0.55, BICYCLE: 1.7, HORSE: 1.2,
          SUITCASE: 1.35, TV: 1.3}
UNDER = frozenset({CHAIR, BICYCLE, HORSE})
Size = tuple[float, float]  # (width, height), pixels
Box = np.ndarray  # (4,) float64: x1, y1, x2, y2 in pixels
CHAIR_SEAT = 0.55  # seat height, fraction of the chair box from its top
SADDLE = {BICYCLE: (0.38, 0.12), HORSE: (0.42, 0.30)}  # (from the back, from the top) fractions


@dataclass(frozen=True)
class Action:
    """One synthetic interaction."""

    name: str
    pose: str
    objects: tuple[int, ...]  # COCO category ids the action is drawn with
    hico_verbs: tuple[str, ...]  # HICO-DET verb names (all labelled on the pair)
    vcoco: tuple[tuple[str, str], ...]  # V-COCO (action, role) pairs labelled on the person
    part: str  # the body part that carries the signal (documentation)
    parts: tuple[str, ...]  # part groups (PART_GROUP_NAMES) that take part: the pairs' part_labels


ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("hold", "reach", (CUP, BOTTLE, SPORTS_BALL), ("hold",), (("hold", "obj"),), "hand", ("hand", "arm")),
    Action("kick", "kick", (SPORTS_BALL,), ("kick",), (("kick", "obj"),), "foot", ("foot", "leg")),
    # the thighs lie along the seat / the frame: leg takes part with the hip
    Action("sit_on", "sit", (CHAIR,), ("sit_on",), (("sit", "instr"),), "hip", ("hip", "leg")),
    Action("ride", "ride", (BICYCLE, HORSE), ("ride", "straddle"), (("ride", "instr"), ("sit", "instr")), "hip",
           ("hip", "leg")),
    Action("carry", "carry", (SUITCASE,), ("carry", "hold"), (("carry", "obj"), ("hold", "obj")), "hand",
           ("hand", "arm")),
    Action("look", "look", (TV,), ("watch",), (("look", "obj"),), "head", ("head",)),
)}
# the HOI classes of cross_person scenes (pipeline/synth/cross.py): the player's pair and the
# flag bearer's
CROSS_PERSON_HOIS = (("kick", SPORTS_BALL), ("no_interaction", SPORTS_BALL), ("no_interaction", KITE))
# poses of persons that interact with nothing: the action poses without their object are
# included so that a pose alone never gives the interaction away
IDLE_POSES = ("stand", "stand", "walk", "arm_raised", "reach", "carry", "kick", "look")
# V-COCO agent-only actions implied by a pose
VCOCO_AGENT = {"stand": "stand", "arm_raised": "stand", "reach": "stand", "carry": "stand",
               "look": "stand", "walk": "walk"}


def object_size(coco_id: int, person_height: float, scale: float) -> tuple[float, float]:
    """(width, height) in pixels of an object next to a person of standing height
    ``person_height``; ``scale`` is the hand-held size factor (longest side / person height)."""
    if coco_id in (SPORTS_BALL, CUP, BOTTLE):
        h = scale * person_height if coco_id != SPORTS_BALL else 0.85 * scale * person_height
        return ASPECT[coco_id] * h, h
    base = {CHAIR: 0.46, BICYCLE: 0.5, HORSE: 0.88, SUITCASE: 0.27, TV: 0.3}[coco_id]
    h = base * person_height * (1 + 0.2 * (scale - 0.3))
    return ASPECT[coco_id] * h, h


def _box(cx: float, cy: float, w: float, h: float) -> np.ndarray:
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def _at_wrist(body: Body, coco_id: int, size: Size, _rng: np.random.Generator) -> Box:
    w, h = size
    wrist = body.keypoints[ARM[body.active][2]]
    # the hand grips the object a little inside its near edge
    return _box(wrist[0] + body.facing * 0.2 * w, wrist[1] + 0.05 * h, w, h)


def _at_ankle(body: Body, coco_id: int, size: Size, _rng: np.random.Generator) -> Box:
    w, h = size
    ankle = body.keypoints[LEG[body.active][2]]
    return _box(ankle[0] + body.facing * 0.45 * w, ankle[1] - 0.05 * h, w, h)


def _under_hip(body: Body, coco_id: int, size: Size, _rng: np.random.Generator) -> Box:
    """Chair: the seat (at ``CHAIR_SEAT`` of the box height) just under the hip, the back behind
    the hip, the legs reaching the feet's level."""
    w, _ = size
    hip = body.keypoints[[11, 12]].mean(axis=0)
    feet_y = body.keypoints[[15, 16], 1].max() + 0.01 * body.height
    seat_y = hip[1] + 0.04 * body.height
    h = (feet_y - seat_y) / (1 - CHAIR_SEAT)
    w = ASPECT[CHAIR] * h
    x_back = hip[0] - body.facing * 0.25 * w
    x1, x2 = sorted((x_back, x_back + body.facing * w))
    return np.array([x1, seat_y - CHAIR_SEAT * h, x2, feet_y])


def _mounted(body: Body, coco_id: int, size: Size, _rng: np.random.Generator) -> Box:
    """Bicycle or horse: the hip sits on the saddle (``SADDLE``: fractions of the box from its
    back and top); the object's front is on the rider's facing side."""
    w, h = size
    hip = body.keypoints[[11, 12]].mean(axis=0)
    fx, fy = SADDLE[coco_id]
    back_x = hip[0] - body.facing * fx * w
    x1, x2 = sorted((back_x, back_x + body.facing * w))
    top = hip[1] - fy * h
    return np.array([x1, top, x2, top + h])


def _both_hands(body: Body, coco_id: int, size: Size, _rng: np.random.Generator) -> Box:
    w, h = size
    wrists = body.keypoints[[9, 10]].mean(axis=0)
    return _box(wrists[0] + body.facing * 0.3 * w, wrists[1] + 0.35 * h, w, h)


def _facing_head(body: Body, coco_id: int, size: Size, rng: np.random.Generator) -> Box:
    w, h = size
    cx, cy, r = body.head
    gap = rng.uniform(0.25, 0.45) * body.height
    return _box(cx + body.facing * (gap + w / 2), cy + rng.uniform(-0.05, 0.05) * body.height, w, h)


# action -> where its object goes: f(body, coco_id, (w, h), rng) -> box (x1, y1, x2, y2), pixels
PLACE: dict[str, Callable[[Body, int, Size, np.random.Generator], Box]] = {
    "hold": _at_wrist, "kick": _at_ankle, "sit_on": _under_hip, "ride": _mounted,
    "carry": _both_hands, "look": _facing_head,
}


def part_labels(action: str | None) -> list[int]:
    """The pair's ``part_labels`` (6 values in PART_GROUP_NAMES order, 1 = the subject's part
    group takes part); all zeros for ``None`` (a no_interaction pair)."""
    used = ACTIONS[action].parts if action is not None else ()
    return [int(g in used) for g in PART_GROUP_NAMES]


def hico_verb_ids(action: str) -> tuple[int, ...]:
    """HICO-DET verb ids (1..117) labelled on an ``action`` pair."""
    by_name = {n: v for v, n in labels.hico().verb_names.items()}
    return tuple(by_name[n] for n in ACTIONS[action].hico_verbs)


def object_classes(actions: tuple[str, ...]) -> tuple[int, ...]:
    """COCO ids of every object class the enabled ``actions`` use, ascending."""
    return tuple(sorted({c for a in actions for c in ACTIONS[a].objects}))


def check_catalog() -> None:
    """Every (verb, object) pair is a HICO-DET HOI class and every V-COCO pair a verb-role."""
    hico, vcoco = labels.hico(), labels.vcoco()
    by_name = {n: v for v, n in hico.verb_names.items()}
    for verb, obj in CROSS_PERSON_HOIS:
        assert hico.hoi_id(by_name[verb], obj) is not None, (verb, obj)
    for action in ACTIONS.values():
        assert action.parts and set(action.parts) <= set(PART_GROUP_NAMES), action.name
        for verb in hico_verb_ids(action.name):
            for obj in action.objects:
                assert hico.hoi_id(verb, obj) is not None, (action.name, verb, obj)
        for name, role in action.vcoco:
            vcoco.verb_role_index(name, role)


def vcoco_correspondence(actions: tuple[str, ...]) -> np.ndarray:
    """The (29 verb-roles × 80 objects) 0/1 matrix of ``corre_vcoco.npy``: a role class is valid
    with the object classes the synthetic actions pair it with; agent-only classes with all.

    Columns follow the 80 COCO ids ascending, as QPIC's object indices do; loaders append the
    "missing object" column themselves.
    """
    vcoco, coco_ids = labels.vcoco(), labels.hico().object_coco_ids
    col = {c: i for i, c in enumerate(coco_ids)}
    mat = np.zeros((len(vcoco.verb_roles), len(coco_ids)))
    for i, (_, role) in enumerate(vcoco.verb_roles):
        if role is None:
            mat[i] = 1.0
    for name in actions:
        for pair in ACTIONS[name].vcoco:
            for obj in ACTIONS[name].objects:
                mat[vcoco.verb_role_index(*pair), col[obj]] = 1.0
    return mat
