"""``data convert-hico``: a small ``anno_bbox.mat`` / ``anno.mat`` written here with
scipy.io.savemat in the official structure (struct arrays; boxes as x1, x2, y1, y2 fields;
1-based connections; ``invis``) → PPDM/QPIC json + corre + image labels, read back by ingest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.io import savemat
from typer.testing import CliRunner

from model.common import labels
from model.common.errors import UserError
from pipeline.ingest import IngestConfig, ingest
from pipeline.interop import hico_convert
from pipeline.params import DatasetConfig

LAB = labels.hico()
VERB = {name: vid for vid, name in LAB.verb_names.items()}
RIDE_BIKE = LAB.hoi_id(VERB["ride"], 2)
HOLD_BIKE = LAB.hoi_id(VERB["hold"], 2)
KICK_BALL = LAB.hoi_id(VERB["kick"], 37)
FLY_PLANE = LAB.hoi_id(VERB["fly"], 5)
BOARD_PLANE = LAB.hoi_id(VERB["board"], 5)


def structs(rows: list[dict], fields: tuple[str, ...]) -> np.ndarray:
    """A 1 x n MATLAB struct array (savemat writes a numpy record array of objects as one)."""
    out = np.zeros((1, len(rows)), dtype=[(f, object) for f in fields])
    for i, row in enumerate(rows):
        for f in fields:
            out[0, i][f] = row[f]
    return out


def boxes(*bs: tuple[int, int, int, int]) -> np.ndarray:
    """Official field order x1, x2, y1, y2 (boxes given here as x1, y1, x2, y2)."""
    return structs([{"x1": float(b[0]), "x2": float(b[2]), "y1": float(b[1]), "y2": float(b[3])} for b in bs],
                   ("x1", "x2", "y1", "y2"))


def hoi(hoi_id: int, humans: list, objects: list, conn: list, invis: int = 0) -> dict:
    empty = np.zeros((0, 0))
    return {"id": float(hoi_id), "bboxhuman": boxes(*humans) if humans else empty,
            "bboxobject": boxes(*objects) if objects else empty,
            "connection": np.array(conn, dtype=float) if conn else empty, "invis": float(invis)}


def image(name: str, size: tuple[int, int], hois: list[dict]) -> dict:
    return {"filename": name,
            "size": structs([{"width": float(size[0]), "height": float(size[1]), "depth": 3.0}],
                            ("width", "height", "depth")),
            "hoi": structs(hois, ("id", "bboxhuman", "bboxobject", "connection", "invis"))}


def list_action() -> np.ndarray:
    rows = [{"nname": LAB.object_names[LAB.hoi_object[h]], "vname": LAB.verb_names[LAB.hoi_verb[h]],
             "vname_ing": LAB.verb_names[LAB.hoi_verb[h]] + "ing"} for h in range(1, 601)]
    return structs(rows, ("nname", "vname", "vname_ing")).T  # 600 x 1, as in the release


T1, T2, T3 = (f"HICO_train2015_0000000{i}.jpg" for i in (1, 2, 3))
E1, E2 = "HICO_test2015_00000001.jpg", "HICO_test2015_00000002.jpg"
SIZES = {T1: (64, 48), T2: (60, 40), T3: (30, 30), E1: (40, 30), E2: (32, 24)}
IMAGE_FIELDS = ("filename", "size", "hoi")


def bbox_train() -> np.ndarray:
    person, bike = (2, 3, 30, 40), (10, 5, 60, 45)
    return structs([
        # two HOIs annotated on identical boxes: one person and one bicycle entry, two pairs
        image(T1, SIZES[T1], [hoi(RIDE_BIKE, [person], [bike], [[1, 1]]),
                              hoi(HOLD_BIKE, [person], [bike], [[1, 1]])]),
        # two people kicking one ball (two connections), plus an invisible HOI
        image(T2, SIZES[T2], [hoi(KICK_BALL, [(5, 5, 20, 35), (25, 5, 45, 38)], [(20, 30, 26, 36)],
                                  [[1, 1], [2, 1]]),
                              hoi(RIDE_BIKE, [], [], [], invis=1)]),
        image(T3, SIZES[T3], [hoi(FLY_PLANE, [], [], [], invis=1)]),  # no visible pair: left out
    ], IMAGE_FIELDS)


def bbox_test() -> np.ndarray:
    return structs([
        # near-duplicate boxes of two HOIs on the same pair stay separate entries
        image(E1, SIZES[E1], [hoi(FLY_PLANE, [(2, 2, 20, 28)], [(15, 3, 39, 20)], [[1, 1]]),
                              hoi(BOARD_PLANE, [(1, 1, 19, 29)], [(14, 3, 39, 21)], [[1, 1]])]),
        image(E2, SIZES[E2], [hoi(FLY_PLANE, [], [], [], invis=1)]),
    ], IMAGE_FIELDS)


def write_official(root: Path) -> tuple[Path, Path]:
    root.mkdir(parents=True, exist_ok=True)
    savemat(root / "anno_bbox.mat", {"bbox_train": bbox_train(), "bbox_test": bbox_test(),
                                     "list_action": list_action()})
    anno_train = np.full((600, 3), np.nan)
    anno_train[RIDE_BIKE - 1, 0] = 1
    anno_train[HOLD_BIKE - 1, 0] = 0
    anno_train[KICK_BALL - 1, 1] = -1
    anno_test = np.full((600, 2), np.nan)
    anno_test[[FLY_PLANE - 1, BOARD_PLANE - 1], 0] = 1
    cell = lambda names: np.array(names, dtype=object).reshape(-1, 1)  # noqa: E731 (a MATLAB cell column)
    savemat(root / "anno.mat", {"anno_train": anno_train, "anno_test": anno_test, "list_train": cell([T1, T2, T3]),
                                "list_test": cell([E1, E2]), "list_action": list_action()})
    return root / "anno_bbox.mat", root / "anno.mat"


def write_images(root: Path) -> None:
    for name, size in SIZES.items():
        folder = root / "images" / ("train2015" if "train" in name else "test2015")
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (90, 90, 90)).save(folder / name)


@pytest.fixture()
def converted(tmp_path: Path) -> Path:
    root = tmp_path / "hico_20160224_det"
    anno_bbox, anno = write_official(root)
    hico_convert.run(anno_bbox, anno, root / "annotations")
    return root


def test_train_records_match_ppdm_layout(converted: Path) -> None:
    train = json.loads((converted / "annotations/trainval_hico.json").read_text())
    assert [r["file_name"] for r in train] == [T1, T2]
    assert list(train[0]) == ["file_name", "img_id", "annotations", "hoi_annotation"]
    assert train[0]["img_id"] == 1
    assert train[0]["annotations"] == [{"bbox": [2, 3, 30, 40], "category_id": 1},
                                       {"bbox": [10, 5, 60, 45], "category_id": 2}]
    assert train[0]["hoi_annotation"] == [
        {"subject_id": 0, "object_id": 1, "category_id": VERB["ride"], "hoi_category_id": RIDE_BIKE},
        {"subject_id": 0, "object_id": 1, "category_id": VERB["hold"], "hoi_category_id": HOLD_BIKE}]
    assert [a["category_id"] for a in train[1]["annotations"]] == [1, 37, 1]
    assert [(h["subject_id"], h["object_id"]) for h in train[1]["hoi_annotation"]] == [(0, 1), (2, 1)]


def test_test_records_keep_near_duplicates_and_omit_ids(converted: Path) -> None:
    test = json.loads((converted / "annotations/test_hico.json").read_text())
    assert [r["file_name"] for r in test] == [E1]
    assert list(test[0]) == ["file_name", "annotations", "hoi_annotation"]
    assert len(test[0]["annotations"]) == 4
    assert test[0]["hoi_annotation"] == [{"subject_id": 0, "object_id": 1, "category_id": VERB["fly"]},
                                         {"subject_id": 2, "object_id": 3, "category_id": VERB["board"]}]


def test_corre_and_image_labels(converted: Path) -> None:
    corre = np.load(converted / "annotations/corre_hico.npy")
    assert corre.shape == (117, 80) and corre.sum() == 600
    np.testing.assert_array_equal(corre, LAB.correspondence())
    labels_df = pd.read_parquet(converted / "annotations/image_labels.parquet")
    got = set(labels_df.itertuples(index=False, name=None))
    assert got == {("HICO_train2015_00000001", "train", RIDE_BIKE, 1),
                   ("HICO_train2015_00000001", "train", HOLD_BIKE, 0),
                   ("HICO_train2015_00000002", "train", KICK_BALL, -1),
                   ("HICO_test2015_00000001", "test", FLY_PLANE, 1), ("HICO_test2015_00000001", "test", BOARD_PLANE, 1)}


def test_ingest_reads_the_converted_files(converted: Path) -> None:
    write_images(converted)
    result = ingest(DatasetConfig(name="hico", format="hico-det", root=converted), IngestConfig())
    pairs = result.pairs
    expected = [RIDE_BIKE, HOLD_BIKE, KICK_BALL, KICK_BALL, FLY_PLANE, BOARD_PLANE]
    assert sorted(pairs["hoi_id"].tolist()) == sorted(expected)
    images = result.images.set_index("image_id")
    assert not images.loc["HICO_train2015_00000003", "annotated"]  # listed from the folder, decision 9
    assert not images.loc["HICO_test2015_00000002", "annotated"]
    assert result.summary["train_pairs_skipped_unknown_hoi"] == 0


def test_wrong_class_list_is_refused(tmp_path: Path) -> None:
    actions = list_action()
    actions[0, 0]["vname"] = "paint"
    savemat(tmp_path / "anno_bbox.mat", {"bbox_train": bbox_train(), "bbox_test": bbox_test(), "list_action": actions})
    with pytest.raises(UserError, match=r"list_action\(1\)"):
        hico_convert.convert(tmp_path / "anno_bbox.mat")


def test_missing_or_foreign_mat_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="file not found"):
        hico_convert.convert(tmp_path / "none.mat")
    savemat(tmp_path / "other.mat", {"x": np.ones(3), "list_action": list_action()})
    with pytest.raises(UserError, match="bbox_train"):
        hico_convert.convert(tmp_path / "other.mat")


def test_cli_convert_hico(tmp_path: Path) -> None:
    from cli import app

    root = tmp_path / "hico"
    write_official(root)
    result = CliRunner().invoke(app, ["data", "convert-hico", str(root)])
    assert result.exit_code == 0, result.output
    assert (root / "annotations/trainval_hico.json").exists()
    assert (root / "annotations/image_labels.parquet").exists()
    assert "train_invisible_hois" in result.output


def test_malformed_hoi_is_skipped_and_counted(tmp_path: Path, capsys) -> None:
    train = bbox_train()
    bad = hoi(RIDE_BIKE, [(1, 1, 5, 5)], [(2, 2, 6, 6)], [[1, 2]])  # object 2 does not exist
    fields = ("id", "bboxhuman", "bboxobject", "connection", "invis")
    train[0, 1]["hoi"] = structs([train[0, 1]["hoi"][0, 0], bad], fields)
    savemat(tmp_path / "anno_bbox.mat", {"bbox_train": train, "bbox_test": bbox_test(), "list_action": list_action()})
    records, summary = hico_convert.convert(tmp_path / "anno_bbox.mat")
    assert summary["train_malformed_hois_skipped"] == 1 and summary["train_pairs"] == 4
    assert "bbox_train(2).hoi(2): connection 1 = (1, 2)" in capsys.readouterr().out
