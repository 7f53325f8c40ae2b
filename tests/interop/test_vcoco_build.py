"""``data build-vcoco``: a handcrafted COCO 2014 subset plus small official ``vcoco_*.json`` /
``.ids`` files written here → instances_vcoco_all_2014.json (script_pick_annotations), QPIC
trainval/test json and corre_vcoco.npy, then read back by pycocotools and by ingest."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from model.common import labels
from model.common.errors import UserError
from pipeline.ingest import IngestConfig, ingest
from pipeline.interop import vcoco_build
from pipeline.interop.vcoco_official import load_split
from pipeline.params import DatasetConfig

VC = labels.vcoco()
CATEGORIES = [{"supercategory": "person", "id": 1, "name": "person"},
              {"supercategory": "sports", "id": 37, "name": "sports ball"},
              {"supercategory": "sports", "id": 39, "name": "baseball bat"},
              {"supercategory": "kitchen", "id": 44, "name": "bottle"}]
INFO = {"description": "COCO 2014 (test subset)"}


def img(image_id: int, split: str) -> dict:
    return {"id": image_id, "file_name": f"COCO_{split}2014_{image_id:012d}.jpg", "width": 64, "height": 48}


def ann(ann_id: int, image_id: int, category: int, bbox: list[float]) -> dict:
    return {"id": ann_id, "image_id": image_id, "category_id": category, "bbox": bbox, "area": bbox[2] * bbox[3],
            "iscrowd": 0, "segmentation": [[0, 0, 1, 0, 1, 1]]}


COCO_TRAIN = {"info": INFO, "licenses": [], "categories": CATEGORIES,
              "images": [img(9, "train"), img(25, "train"), img(30, "train")],
              "annotations": [ann(101, 9, 1, [1, 2, 20, 30]), ann(102, 9, 44, [15, 10, 5, 8]),
                              ann(103, 25, 1, [3, 3, 30, 40]), ann(104, 25, 39, [30, 5, 4, 20]),
                              ann(105, 25, 1, [40, 2, 20, 40]), ann(106, 30, 1, [0, 0, 10, 10])]}
COCO_VAL = {"info": INFO, "licenses": [], "categories": CATEGORIES,
            "images": [img(42, "val"), img(73, "val")],
            "annotations": [ann(201, 42, 1, [5, 5, 25, 35]), ann(202, 42, 37, [28, 30, 6, 6]),
                            ann(203, 73, 1, [2, 2, 10, 20])]}

# person ann id -> (image id, {action: role object ann ids in role_name order after agent})
TRAIN_PEOPLE = {101: (9, {"hold": (102,), "stand": ()})}
VAL_PEOPLE = {103: (25, {"hit": (104, 0), "stand": ()}), 105: (25, {})}  # hit: instr present, obj missing
TEST_PEOPLE = {201: (42, {"kick": (202,), "look": (202,)}), 203: (73, {})}


def official(people: dict[int, tuple[int, dict]]) -> list[dict]:
    """vcoco_<split>.json: 26 entries over every listed person, role_object_id role-major."""
    out = []
    rows = sorted(people.items())
    for action, roles in VC.action_roles.items():
        columns = [[a for a, _ in rows]]
        for r in range(1, len(roles)):
            columns.append([pos[action][r - 1] if action in pos else 0 for _, (_, pos) in rows])
        out.append({"image_id": [i for _, (i, _) in rows], "ann_id": [a for a, _ in rows],
                    "role_object_id": [v for col in columns for v in col],
                    "label": [int(action in pos) for _, (_, pos) in rows],
                    "action_name": action, "role_name": list(roles), "include": [[] for _ in roles]})
    return out


def write_inputs(root: Path, trainval_file: bool = False) -> Path:
    vdir = root / "data/vcoco"
    vdir.mkdir(parents=True)
    if trainval_file:
        (vdir / "vcoco_trainval.json").write_text(json.dumps(official(TRAIN_PEOPLE | VAL_PEOPLE)))
    else:
        (vdir / "vcoco_train.json").write_text(json.dumps(official(TRAIN_PEOPLE)))
        (vdir / "vcoco_val.json").write_text(json.dumps(official(VAL_PEOPLE)))
    (vdir / "vcoco_test.json").write_text(json.dumps(official(TEST_PEOPLE)))
    splits = root / "data/splits"
    splits.mkdir(parents=True)
    (splits / "vcoco_all.ids").write_text("9\n25\n42\n73\n")
    (splits / "vcoco_test.ids").write_text("42\n73\n")
    coco = root / "coco/annotations"
    coco.mkdir(parents=True)
    (coco / "instances_train2014.json").write_text(json.dumps(COCO_TRAIN))
    (coco / "instances_val2014.json").write_text(json.dumps(COCO_VAL))
    return root


@pytest.fixture()
def built(tmp_path: Path) -> Path:
    root = write_inputs(tmp_path / "v-coco")
    vcoco_build.run(root, None)
    return root


def test_pick_annotations_like_the_official_script(built: Path) -> None:
    picked = json.loads((built / vcoco_build.INSTANCES).read_text())
    assert [im["id"] for im in picked["images"]] == [9, 25, 42, 73]  # image 30 is not in V-COCO
    assert [a["id"] for a in picked["annotations"]] == [101, 102, 103, 104, 105, 201, 202, 203]
    assert picked["categories"] == CATEGORIES and picked["info"] == INFO
    from pycocotools.coco import COCO

    coco = COCO(str(built / vcoco_build.INSTANCES))
    assert sorted(coco.getImgIds()) == [9, 25, 42, 73]


def test_qpic_records(built: Path) -> None:
    train = json.loads((built / "annotations/trainval_vcoco.json").read_text())
    by_name = {r["file_name"]: r for r in train}
    r9 = by_name["COCO_train2014_000000000009.jpg"]
    assert list(r9) == ["annotations", "hoi_annotation", "file_name"]
    assert r9["annotations"] == [{"category_id": 1, "bbox": [1, 2, 21, 32]},
                                 {"category_id": 44, "bbox": [15, 10, 20, 18]}]
    assert r9["hoi_annotation"] == [
        {"subject_id": 0, "object_id": 1, "category_id": VC.verb_role_index("hold", "obj")},
        {"subject_id": 0, "object_id": -1, "category_id": VC.verb_role_index("stand", None)}]
    r25 = by_name["COCO_train2014_000000000025.jpg"]
    assert sorted((h["subject_id"], h["object_id"], h["category_id"]) for h in r25["hoi_annotation"]) == sorted([
        (0, -1, VC.verb_role_index("stand", None)),
        (0, 1, VC.verb_role_index("hit", "instr")), (0, -1, VC.verb_role_index("hit", "obj"))])
    test = json.loads((built / "annotations/test_vcoco.json").read_text())
    assert [r["file_name"] for r in test] == ["COCO_val2014_000000000042.jpg", "COCO_val2014_000000000073.jpg"]
    assert test[1]["hoi_annotation"] == []  # only label-0 rows: the image is still listed


def test_trainval_file_equals_train_plus_val(tmp_path: Path) -> None:
    a = write_inputs(tmp_path / "a")
    b = write_inputs(tmp_path / "b", trainval_file=True)
    merged, direct = load_split(a / "data/vcoco", "trainval"), load_split(b / "data/vcoco", "trainval")
    for x, y in zip(merged, direct, strict=True):
        np.testing.assert_array_equal(x.role_object_id, y.role_object_id)
        np.testing.assert_array_equal(x.label, y.label)


def test_correspondence_derived_and_from_prior(built: Path, tmp_path: Path) -> None:
    corre = np.load(built / "annotations/corre_vcoco.npy")
    assert corre.shape == (29, 80)
    col = {c: i for i, c in enumerate(labels.hico().object_coco_ids)}
    assert corre[VC.verb_role_index("hold", "obj"), col[44]] == 1
    assert corre[VC.verb_role_index("hold", "obj")].sum() == 1
    assert corre[VC.verb_role_index("stand", None)].all()
    names = [a if r is None else f"{a}_{r}" for a, r in VC.verb_roles]
    alphabetical = sorted(names)
    rows = np.arange(29 * 80, dtype=np.float64).reshape(29, 80)  # row i = alphabetical class i
    prior = {k: rows[:, k][None, :] for k in range(80)}  # VSGNet: one 1 x 29 row per object
    path = tmp_path / "prior.pickle"
    path.write_bytes(pickle.dumps(prior, protocol=2))
    got = vcoco_build.prior_correspondence(path)
    np.testing.assert_array_equal(got[names.index("walk")], rows[alphabetical.index("walk")])


def test_ingest_reads_the_built_files(built: Path) -> None:
    for split, ids in (("train", (9, 25)), ("val", (42, 73))):
        folder = built / "images" / f"{split}2014"
        folder.mkdir(parents=True, exist_ok=True)
        for i in ids:
            Image.new("RGB", (64, 48)).save(folder / f"COCO_{split}2014_{i:012d}.jpg")
    result = ingest(DatasetConfig(name="vcoco", format="v-coco", root=built), IngestConfig())
    assert result.summary["train_pairs_written"] == 5 and result.summary["test_pairs_written"] == 2
    assert result.pairs["object"].isna().sum() == 3  # stand x2 (agent only) and hit-obj (missing)


def test_unknown_annotation_id_and_missing_inputs(tmp_path: Path) -> None:
    root = write_inputs(tmp_path / "v")
    bad = official(TRAIN_PEOPLE | {999: (9, {"hold": (102,)})})
    (root / "data/vcoco/vcoco_train.json").write_text(json.dumps(bad))
    with pytest.raises(UserError, match="annotation 999"):
        vcoco_build.run(root, None)
    with pytest.raises(UserError, match="data fetch coco_annotations"):
        vcoco_build.run(tmp_path / "empty", None)


def test_cli_build_vcoco(tmp_path: Path) -> None:
    from cli import app

    root = write_inputs(tmp_path / "v")
    result = CliRunner().invoke(app, ["data", "build-vcoco", str(root)])
    assert result.exit_code == 0, result.output
    assert (root / "annotations/test_vcoco.json").exists() and "trainval_hois" in result.output
