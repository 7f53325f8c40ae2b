"""HICO-DET annotation records in the PPDM/QPIC format, from synthetic scenes.

One record per image: ``{"file_name", "img_id", "annotations": [{"bbox": [x1, y1, x2, y2],
"category_id": COCO id}], "hoi_annotation": [{"subject_id", "object_id", "category_id": verb id
1..117, "hoi_category_id": HOI id 1..600}]}``; PPDM's test file has no ``img_id`` and no
``hoi_category_id``. As in HICO-DET, only persons and objects that take part in an annotated
HOI are listed, boxes are 1-based inclusive pixel indices, and a pair with several verbs
carries near-duplicate boxes (in test, every HOI has its own pair of boxes).

Two keys are this project's additions, read by ``ingest`` (pipeline/readers/annotation_json.py): each
HOI's ``part_labels`` (the action's part groups, ``pipeline.synth.catalog.part_labels``; all zeros for
no_interaction) and the record's ``scene`` tag (the scene kind, the ``cross_person`` split).
"""

from __future__ import annotations

import numpy as np

from model.common import labels
from pipeline.synth.catalog import hico_verb_ids, part_labels
from pipeline.synth.scene import Scene

PERSON = labels.PERSON_COCO_ID


def train_name(index: int) -> str:
    """File name of training image ``index`` (1-based)."""
    return f"HICO_train2015_{index:08d}.jpg"


def test_name(index: int) -> str:
    return f"HICO_test2015_{index:08d}.jpg"


def hico_box(box: np.ndarray, width: int, height: int) -> list[int]:
    """HICO-DET's convention for a continuous box: the 1-based indices of the first and last
    pixel columns and rows it covers (pixel i spans [i, i+1) in continuous coordinates)."""
    x1, y1 = int(np.floor(box[0])) + 1, int(np.floor(box[1])) + 1
    x2, y2 = int(np.ceil(box[2])), int(np.ceil(box[3]))
    x1, x2 = min(max(x1, 1), width), min(max(x2, 1), width)
    y1, y2 = min(max(y1, 1), height), min(max(y2, 1), height)
    return [x1, y1, max(x1, x2), max(y1, y2)]


def near_duplicate(box: list[int], rng: np.random.Generator, width: int, height: int) -> list[int]:
    """The same box redrawn by another annotator: each edge moved by up to 2 pixels."""
    for _ in range(100):
        moved = [int(v) for v in np.asarray(box) + rng.integers(-2, 3, 4)]
        moved = [min(max(moved[0], 1), width), min(max(moved[1], 1), height),
                 min(max(moved[2], 1), width), min(max(moved[3], 1), height)]
        if moved != box and moved[0] < moved[2] and moved[1] < moved[3]:
            return moved
    return list(box)  # a box too small to move stays an exact duplicate


def _pairs(scene: Scene) -> list[tuple[int, int, tuple[int, ...], list[int]]]:
    """(person, object, verb ids, part labels) of every annotated pair: interactions, then
    no_interaction (no part takes part)."""
    pairs = [(p, person.obj, hico_verb_ids(person.action), part_labels(person.action))
             for p, person in enumerate(scene.persons) if person.action is not None]
    return pairs + [(p, o, (labels.hico().no_interaction_verb_id,), part_labels(None))
                    for p, o in scene.no_interaction]


class _Boxes:
    """The ``annotations`` list of a record: one entry per physical person or object, plus
    copies (near-duplicate or exact) where the dataset repeats a box."""

    def __init__(self, width: int, height: int, rng: np.random.Generator) -> None:
        self.w, self.h, self.rng = width, height, rng
        self.entries: list[dict] = []
        self.first: dict[tuple[str, int], int] = {}

    def get(self, key: tuple[str, int], coco_id: int, box: np.ndarray, copy: str | None = None) -> int:
        """Index of ``key``'s box: its first entry when ``copy`` is None or it has none yet,
        else a new ``"near"`` (near-duplicate) or ``"exact"`` copy."""
        if key not in self.first:
            self.first[key] = len(self.entries)
            self.entries.append({"bbox": hico_box(box, self.w, self.h), "category_id": coco_id})
            return self.first[key]
        if copy is None:
            return self.first[key]
        bbox = self.entries[self.first[key]]["bbox"]
        bbox = near_duplicate(bbox, self.rng, self.w, self.h) if copy == "near" else list(bbox)
        self.entries.append({"bbox": bbox, "category_id": coco_id})
        return len(self.entries) - 1


def hico_record(scene: Scene, file_name: str, img_id: int, rng: np.random.Generator,
                duplicate_rate: float, test: bool = False) -> dict | None:
    """The record of one image, or None when nothing in it is annotated.

    Train records (``trainval_hico.json``) share one box per person and object across a pair's
    verbs, except that an extra verb gets a near-duplicate human box with probability
    ``duplicate_rate``; they carry ``img_id`` and ``hoi_category_id``. Test records
    (``test_hico.json``) have neither key and give every HOI its own human and object boxes,
    as HICO-DET's per-HOI annotations do: repeated boxes are near-duplicates with probability
    ``duplicate_rate``, exact copies otherwise.
    """
    boxes, hois = _Boxes(scene.width, scene.height, rng), []
    for p, o, verbs, parts in _pairs(scene):
        thing, person = scene.objects[o], scene.persons[p]
        for k, verb in enumerate(verbs):
            if test:
                copy = lambda: "near" if rng.random() < duplicate_rate else "exact"  # noqa: E731
                subject = boxes.get(("person", p), PERSON, person.box, copy())
                obj = boxes.get(("object", o), thing.coco_id, thing.box, copy())
                hois.append({"subject_id": subject, "object_id": obj, "category_id": verb, "part_labels": parts})
            else:
                near = k > 0 and rng.random() < duplicate_rate
                subject = boxes.get(("person", p), PERSON, person.box, "near" if near else None)
                obj = boxes.get(("object", o), thing.coco_id, thing.box)
                hois.append({"subject_id": subject, "object_id": obj, "category_id": verb,
                             "hoi_category_id": labels.hico().hoi_id(verb, thing.coco_id), "part_labels": parts})
    if not hois:
        return None
    if test:
        return {"file_name": file_name, "annotations": boxes.entries, "hoi_annotation": hois, "scene": scene.kind}
    return {"file_name": file_name, "img_id": img_id, "annotations": boxes.entries, "hoi_annotation": hois,
            "scene": scene.kind}
