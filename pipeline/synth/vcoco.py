"""V-COCO files from synthetic scenes, in the formats of the real ones.

* QPIC/CDN ``annotations/{trainval,test}_vcoco.json``: per image ``{"annotations": [{"category_id",
  "bbox": [x1, y1, x2, y2]}], "hoi_annotation": [{"subject_id", "object_id" (-1 = no role
  object), "category_id": index into the 29 verb-role classes}], "file_name"}`` (key order and
  content as QPIC's ``convert_vcoco_annotations.py`` writes them: every COCO box of the image,
  HOIs action by action; there is no ``img_id`` key, readers take the id from the file name).
* The official evaluation's ``data/vcoco/vcoco_{split}.json``: a list of the 26 actions, each
  ``{"image_id", "ann_id", "role_object_id" (role-major, flattened: agent column = ann_id, then
  one column per role, 0 = none), "label", "action_name", "role_name", "include"}`` over every
  V-COCO person of the split, sorted by ann_id; ``data/splits/vcoco_{split}.ids``.
* ``data/instances_vcoco_all_2014.json``: COCO instances (bbox [x, y, w, h]) of all images.

Quirks kept: persons in COCO but not in V-COCO, positives whose role object is not annotated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.common import labels
from pipeline.synth.catalog import ACTIONS, VCOCO_AGENT
from pipeline.synth.config import SynthConfig
from pipeline.synth.scene import Scene

PERSON = labels.PERSON_COCO_ID
# COCO supercategories by ranges of category ids (inclusive upper bounds)
_SUPER = ((1, "person"), (9, "vehicle"), (15, "outdoor"), (25, "animal"), (33, "accessory"),
          (43, "sports"), (51, "kitchen"), (61, "food"), (70, "furniture"), (77, "electronic"),
          (82, "appliance"), (90, "indoor"))


def train_name(image_id: int) -> str:
    return f"COCO_train2014_{image_id:012d}.jpg"


def test_name(image_id: int) -> str:
    return f"COCO_val2014_{image_id:012d}.jpg"


@dataclass
class VPerson:
    """A person of V-COCO: its COCO annotation id and, per positive action, the role object
    annotation ids in ``role_name`` order after the agent (0 = no role object)."""

    image_id: int
    ann_id: int
    positives: dict[str, tuple[int, ...]]


@dataclass
class VImage:
    split: str
    image: dict  # COCO "images" entry
    anns: list[dict]  # COCO "annotations" entries
    people: list[VPerson]
    record: dict  # the QPIC record


def coco_box(box: np.ndarray, width: int, height: int) -> list[float]:
    """COCO [x, y, w, h] (continuous pixels, 2 decimals) of a box clipped to the image."""
    x1, y1 = (round(float(np.clip(v, 0, lim)), 2) for v, lim in ((box[0], width), (box[1], height)))
    x2, y2 = (round(float(np.clip(v, 0, lim)), 2) for v, lim in ((box[2], width), (box[3], height)))
    return [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)]


def vcoco_image(scene: Scene, split: str, image_id: int, file_name: str, first_ann_id: int,
                rng: np.random.Generator, cfg: SynthConfig) -> VImage:
    """Everything V-COCO knows about one image; annotation ids start at ``first_ann_id``."""
    roleless = {p.obj for p in scene.persons
                if p.action is not None and rng.random() < cfg.vcoco_roleless_rate}
    anns: list[dict] = []
    ann_of: dict[tuple[str, int], int] = {}
    items = [("person", i, PERSON, p.box) for i, p in enumerate(scene.persons)]
    items += [("object", i, t.coco_id, t.box) for i, t in enumerate(scene.objects) if i not in roleless]
    for kind, i, cat, box in items:
        bbox = coco_box(box, scene.width, scene.height)
        ann_id = first_ann_id + len(anns)
        ann_of[(kind, i)] = ann_id
        anns.append({"segmentation": [_polygon(bbox)], "area": round(bbox[2] * bbox[3], 2), "iscrowd": 0,
                     "image_id": image_id, "bbox": bbox, "category_id": cat, "id": ann_id})
    people = _people(scene, image_id, ann_of, rng, cfg.vcoco_unlabelled_rate)
    image = {"id": image_id, "file_name": file_name, "width": scene.width, "height": scene.height}
    return VImage(split, image, anns, people, _qpic_record(file_name, anns, people))


def _polygon(bbox: list[float]) -> list[float]:
    x, y, w, h = bbox
    return [x, y, round(x + w, 2), y, round(x + w, 2), round(y + h, 2), x, round(y + h, 2)]


def _people(scene: Scene, image_id: int, ann_of: dict[tuple[str, int], int], rng: np.random.Generator,
            unlabelled_rate: float) -> list[VPerson]:
    """The V-COCO persons of an image (every interacting person; idle ones mostly) with their
    positive actions; at least one person per image, as V-COCO images all have one."""
    people = []
    for i, person in enumerate(scene.persons):
        if person.action is None and rng.random() < unlabelled_rate:
            continue
        positives: dict[str, tuple[int, ...]] = {}
        agent = VCOCO_AGENT.get(person.body.pose)
        if agent is not None:
            positives[agent] = ()
        if person.action is not None:
            obj_ann = ann_of.get(("object", person.obj), 0)
            for action, role in ACTIONS[person.action].vcoco:
                roles = labels.vcoco().action_roles[action][1:]
                positives[action] = tuple(obj_ann if r == role else 0 for r in roles)
        people.append(VPerson(image_id, ann_of[("person", i)], positives))
    if not people and scene.persons:
        people.append(VPerson(image_id, ann_of[("person", 0)], {}))
    return people


def _qpic_record(file_name: str, anns: list[dict], people: list[VPerson]) -> dict:
    """QPIC's record: all COCO boxes as [x1, y1, x2, y2]; HOIs action by action."""
    vcoco = labels.vcoco()
    position = {a["id"]: k for k, a in enumerate(anns)}
    boxes = [{"category_id": a["category_id"], "bbox": [a["bbox"][0], a["bbox"][1],
                                                        a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]}
             for a in anns]
    hois = []
    for action in vcoco.actions.values():
        roles = vcoco.action_roles[action][1:]
        for person in sorted(people, key=lambda p: p.ann_id):
            if action not in person.positives:
                continue
            subject = position[person.ann_id]
            if not roles:
                category = vcoco.verb_role_index(action, None)
                hois.append({"subject_id": subject, "object_id": -1, "category_id": category})
            for role, obj in zip(roles, person.positives[action], strict=True):
                hois.append({"subject_id": subject, "object_id": position[obj] if obj else -1,
                             "category_id": vcoco.verb_role_index(action, role)})
    return {"annotations": boxes, "hoi_annotation": hois, "file_name": file_name}


def official_annotations(people: list[VPerson], actions: tuple[str, ...]) -> list[dict]:
    """``vcoco_{split}.json``: the 26 action entries over ``people`` (sorted by ann_id).
    ``include`` lists, per role, the object classes the synthetic ``actions`` use for it."""
    vcoco = labels.vcoco()
    rows = sorted(people, key=lambda p: p.ann_id)
    out = []
    for action in vcoco.actions.values():
        roles = vcoco.action_roles[action]
        label = [int(action in p.positives) for p in rows]
        columns = [[p.ann_id for p in rows]]
        for r in range(1, len(roles)):
            columns.append([p.positives[action][r - 1] if action in p.positives else 0 for p in rows])
        include = [[]] + [sorted({labels.coco_category_name(c) for a in actions for c in ACTIONS[a].objects
                                  if (action, role) in ACTIONS[a].vcoco}) for role in roles[1:]]
        out.append({"image_id": [p.image_id for p in rows], "ann_id": [p.ann_id for p in rows],
                    "role_object_id": [v for col in columns for v in col], "label": label,
                    "action_name": action, "role_name": list(roles), "include": include})
    return out


def split_ids(people: list[VPerson]) -> str:
    """``vcoco_{split}.ids``: the split's image ids, ascending, one per line (the evaluator
    compares them with the sorted unique image ids of the annotations)."""
    return "".join(f"{i}\n" for i in sorted({p.image_id for p in people}))


def coco_categories() -> list[dict]:
    """COCO's 80 categories (ids, names, supercategories)."""
    out = []
    for cat in labels.hico().object_coco_ids:
        sup = next(name for top, name in _SUPER if cat <= top)
        out.append({"supercategory": sup, "id": cat, "name": labels.coco_category_name(cat)})
    return out


def instances(images: list[VImage]) -> dict:
    """``instances_vcoco_all_2014.json``, loadable by ``pycocotools.coco.COCO``."""
    return {"info": {"description": "synthetic V-COCO (pipeline.synth)", "version": "1.0"},
            "licenses": [],
            "images": [im.image for im in images],
            "annotations": [a for im in images for a in im.anns],
            "categories": coco_categories()}
