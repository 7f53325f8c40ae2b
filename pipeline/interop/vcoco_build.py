"""``data build-vcoco``: from the official V-COCO files and the user's COCO 2014 annotations to
what training ingests and what the official evaluation reads, in Python 3 only.

1. ``data/instances_vcoco_all_2014.json``: what ``script_pick_annotations.py`` writes: COCO 2014
   train + val instances merged (info, licenses, categories of train, which must equal val's)
   and restricted to the images of ``data/splits/vcoco_all.ids``, file order kept.
2. ``annotations/trainval_vcoco.json`` / ``test_vcoco.json``: QPIC's layout (as its
   ``convert_vcoco_annotations.py`` builds it): per image met in the V-COCO rows, in first-seen
   order, ``{"annotations": every COCO box of the image as {"category_id", "bbox": [x, y, x + w,
   y + h]}, "hoi_annotation": [{"subject_id", "object_id" (-1 = no role object), "category_id":
   index of the verb-role class}], "file_name"}``; label-0 rows only register their image.
3. ``annotations/corre_vcoco.npy``: 29 verb-roles x 80 objects. From VSGNet's ``prior.pickle``
   when given (QPIC's source; read with the restricted unpickler), else derived: a role class is
   valid with the object categories it has in the trainval annotations, agent-only classes
   with every category.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.common import labels
from pipeline.inputs import safe_pickle
from model.common.errors import UserError
from pipeline.interop.hico_convert import write_json_compact, write_npy
from pipeline.interop.vcoco_official import Action, load_split, read_ids, read_json, verb_role_names

INSTANCES = "data/instances_vcoco_all_2014.json"


def pick_annotations(train: dict, val: dict, keep_ids: np.ndarray, source: str) -> dict:
    """The V-COCO subset of COCO 2014 train + val (``instances_vcoco_all_2014.json``)."""
    for key in ("info", "licenses", "categories"):
        if train.get(key) != val.get(key):
            raise UserError(f"{source}: '{key}' differs between instances_train2014.json and instances_val2014.json")
    keep = set(keep_ids.tolist())
    out = dict(train)
    out["images"] = [im for im in train["images"] + val["images"] if im["id"] in keep]
    out["annotations"] = [a for a in train["annotations"] + val["annotations"] if a["image_id"] in keep]
    return out


def _boxes_by_image(instances: dict) -> dict[int, dict]:
    """Per image id: file_name, QPIC boxes [x1, y1, x2, y2] and COCO annotation ids, file order."""
    by_image = {im["id"]: {"file_name": im["file_name"], "annotations": [], "ids": []} for im in instances["images"]}
    for a in instances["annotations"]:
        entry = by_image.get(a["image_id"])
        if entry is None:
            continue
        x, y, w, h = a["bbox"]
        entry["annotations"].append({"category_id": a["category_id"], "bbox": [x, y, x + w, y + h]})
        entry["ids"].append(a["id"])
    return by_image


def qpic_records(actions: list[Action], instances: dict, source: str) -> list[dict]:
    """QPIC records of one split (see the module docstring)."""
    classes = verb_role_names(actions)
    boxes = _boxes_by_image(instances)
    records: dict[int, dict] = {}
    for action in actions:
        for label, image_id, role_ids in zip(action.label, action.image_id, action.role_object_id, strict=True):
            image = boxes.get(int(image_id))
            if image is None:
                raise UserError(f"{source}: image {image_id} of action '{action.name}' is not in {INSTANCES}")
            rec = records.setdefault(int(image_id), {"annotations": image["annotations"], "hoi_annotation": [],
                                                     "file_name": image["file_name"]})
            if label == 1:
                rec["hoi_annotation"] += _hois(action, role_ids, image["ids"], classes, source)
    return list(records.values())


def _hois(action: Action, role_ids: np.ndarray, ann_ids: list[int], classes: list, source: str) -> list[dict]:
    def position(ann_id: int) -> int:
        try:
            return ann_ids.index(int(ann_id))
        except ValueError:
            raise UserError(f"{source}: annotation {ann_id} ('{action.name}') is not among its image's "
                            f"COCO annotations in {INSTANCES}") from None

    subject = position(role_ids[0])
    if len(action.roles) == 1:
        return [{"subject_id": subject, "object_id": -1, "category_id": classes.index((action.name, None))}]
    return [{"subject_id": subject, "object_id": position(rid) if rid != 0 else -1,
             "category_id": classes.index((action.name, role))}
            for role, rid in zip(action.roles[1:], role_ids[1:], strict=True)]


def check_classes(actions: list[Action], source: str) -> None:
    """The verb-role classes of the files must be data/labels/vcoco.json's, in its order."""
    ours = list(labels.vcoco().verb_roles)
    if verb_role_names(actions) != ours:
        raise UserError(f"{source}: actions/roles differ from data/labels/vcoco.json (not the official V-COCO files)")


def derived_correspondence(records: list[dict]) -> np.ndarray:
    """29 x 80: role classes x the object categories they have in ``records``; agent-only rows 1."""
    vcoco, coco_ids = labels.vcoco(), labels.hico().object_coco_ids
    col = {c: i for i, c in enumerate(coco_ids)}
    mat = np.zeros((len(vcoco.verb_roles), len(coco_ids)))
    mat[[i for i, (_, role) in enumerate(vcoco.verb_roles) if role is None]] = 1.0
    for rec in records:
        for h in rec["hoi_annotation"]:
            if h["object_id"] >= 0:
                category = rec["annotations"][h["object_id"]]["category_id"]
                if category in col:
                    mat[h["category_id"], col[category]] = 1.0
    return mat


def prior_correspondence(prior_path: Path) -> np.ndarray:
    """QPIC's transform of VSGNet's ``prior.pickle``: values in key order stacked and transposed
    (classes in alphabetical order), then rows put in the verb-role order."""
    prior = safe_pickle.load(prior_path)
    try:
        mat = np.concatenate([np.atleast_2d(np.asarray(prior[k], dtype=np.float64)) for k in sorted(prior)]).T
    except (TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{prior_path}: not VSGNet's prior (a dict of arrays): {exc}") from None
    names = [a if r is None else f"{a}_{r}" for a, r in labels.vcoco().verb_roles]
    if mat.shape != (len(names), 80):
        raise UserError(f"{prior_path}: prior gives a {mat.shape} matrix, expected ({len(names)}, 80)")
    alphabetical = sorted(names)
    return mat[[alphabetical.index(n) for n in names]]


def build_instances(root: Path, coco_dir: Path) -> dict:
    """Write and return ``data/instances_vcoco_all_2014.json`` from the COCO 2014 files."""
    train = read_json(coco_dir / "instances_train2014.json")
    val = read_json(coco_dir / "instances_val2014.json")
    picked = pick_annotations(train, val, read_ids(root / "data/splits/vcoco_all.ids"), str(coco_dir))
    write_json_compact(picked, root / INSTANCES)
    return picked


def run(root: Path, coco_dir: Path | None, prior: Path | None = None) -> dict[str, int]:
    """Command entry point: build what is missing (instances from COCO when ``coco_dir`` holds
    the COCO files), then the QPIC files; print a summary."""
    instances_path = root / INSTANCES
    coco_dir = coco_dir or root / "coco/annotations"
    if (coco_dir / "instances_train2014.json").exists():
        instances = build_instances(root, coco_dir)
    elif instances_path.exists():
        instances = read_json(instances_path)
    else:
        raise UserError(f"{instances_path} not found and no COCO 2014 annotations in {coco_dir}: run "
                        "`python cli.py data fetch coco_annotations_trainval2014.zip --root ROOT` or pass "
                        "--coco-annotations DIR (the folder of instances_train2014.json and instances_val2014.json)")
    summary = {"instances_images": len(instances["images"]), "instances_annotations": len(instances["annotations"])}
    vcoco_dir = root / "data/vcoco"
    records = {}
    for split, name in (("trainval", "trainval_vcoco.json"), ("test", "test_vcoco.json")):
        actions = load_split(vcoco_dir, split)
        check_classes(actions, str(vcoco_dir / f"vcoco_{split}.json"))
        records[split] = qpic_records(actions, instances, str(vcoco_dir / f"vcoco_{split}.json"))
        write_json_compact(records[split], root / "annotations" / name)
        summary[f"{split}_images"] = len(records[split])
        summary[f"{split}_hois"] = sum(len(r["hoi_annotation"]) for r in records[split])
    corre = prior_correspondence(prior) if prior is not None else derived_correspondence(records["trainval"])
    write_npy(corre, root / "annotations/corre_vcoco.npy")
    print(f"build-vcoco: {root} (corre_vcoco.npy {'from ' + str(prior) if prior else 'derived from trainval'})")
    for key, value in summary.items():
        print(f"  {key:<40}{value:>10}")
    return summary
