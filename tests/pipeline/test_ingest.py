"""The ingest stage on small HICO-DET and V-COCO directories written here (JSON + tiny JPEGs):
exact round trips, every kind of bad input (error line or skip count), the summary, the CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from pipeline import tables
from model.common.errors import UserError
from pipeline.ingest import IngestConfig, ingest, run
from pipeline.params import DatasetConfig

RIDE, HOLD, NO_INTERACTION, KICK, FLY = 77, 37, 58, 45, 31  # HICO-DET verb ids
PERSON, BICYCLE, AIRPLANE, BALL = 1, 2, 5, 37  # COCO ids

T1, T2, T3 = (f"HICO_train2015_0000000{i}" for i in (1, 2, 3))
E1, E2 = (f"HICO_test2015_0000000{i}" for i in (1, 2))

HICO_TRAIN = [
    {"file_name": f"{T1}.jpg", "img_id": 1,
     "annotations": [{"bbox": [1, 2, 30, 40], "category_id": PERSON},
                     {"bbox": [10.5, 5, 60, 45.25], "category_id": BICYCLE}],
     "hoi_annotation": [{"subject_id": 0, "object_id": 1, "category_id": RIDE, "hoi_category_id": 19},
                        {"subject_id": 0, "object_id": 1, "category_id": HOLD}]},  # HOI id derived: 12
    {"file_name": f"{T2}.jpg", "img_id": 2,
     "annotations": [{"bbox": [5, 5, 20, 35], "category_id": PERSON},
                     {"bbox": [25, 5, 45, 38], "category_id": PERSON},
                     {"bbox": [20, 30, 26, 36], "category_id": BALL}],
     "hoi_annotation": [{"subject_id": 0, "object_id": 2, "category_id": KICK, "hoi_category_id": 496},
                        {"subject_id": 1, "object_id": 2, "category_id": NO_INTERACTION, "hoi_category_id": 502}]},
]
HICO_TEST = [
    {"file_name": f"{E1}.jpg", "img_id": 1,
     "annotations": [{"bbox": [1, 1, 20, 30], "category_id": PERSON},
                     {"bbox": [15, 3, 40, 20], "category_id": AIRPLANE}],
     "hoi_annotation": [{"subject_id": 0, "object_id": 1, "category_id": FLY, "hoi_category_id": 4}]},
]
SIZES = {T1: (64, 48), T2: (50, 40), T3: (32, 32), E1: (40, 30), E2: (36, 24)}


def jpeg(path: Path, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 40, 30)).save(path, "JPEG")


def make_hico(root: Path, train: list | None = None, test: list | None = None) -> Path:
    """A HICO-DET directory: T3 and E2 are image files that the JSON omits."""
    for stem, size in SIZES.items():
        jpeg(root / "images" / ("train2015" if "train" in stem else "test2015") / f"{stem}.jpg", size)
    ann = root / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    (ann / "trainval_hico.json").write_text(json.dumps(HICO_TRAIN if train is None else train))
    (ann / "test_hico.json").write_text(json.dumps(HICO_TEST if test is None else test))
    return root


def hico(tmp_path: Path, train: list | None = None, test: list | None = None, **cfg) -> object:
    root = make_hico(tmp_path / "hico", train, test)
    return ingest(DatasetConfig(format="hico-det", root=root), IngestConfig(**cfg))


def with_test(change) -> list:
    """HICO_TEST with ``change(records)`` applied to a deep copy."""
    data = copy.deepcopy(HICO_TEST)
    change(data)
    return data


def error_of(tmp_path: Path, train=None, test=None, **cfg) -> str:
    with pytest.raises(UserError) as info:
        hico(tmp_path, train, test, **cfg)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- round trip


def test_hico_round_trip_exact(tmp_path):
    res = hico(tmp_path)
    expected_images = pd.DataFrame({
        "image_id": [T1, T2, T3, E1, E2],
        "split": ["train"] * 3 + ["test"] * 2,
        "file": [f"images/train2015/{s}.jpg" for s in (T1, T2, T3)] + [f"images/test2015/{s}.jpg" for s in (E1, E2)],
        "width": np.array([64, 50, 32, 40, 36], dtype=np.int32),
        "height": np.array([48, 40, 32, 30, 24], dtype=np.int32),
        "annotated": [True, True, False, True, False],
        "scene_kind": pd.array([None] * 5, dtype="str"),  # no record carries a "scene" tag
    })
    pd.testing.assert_frame_equal(res.images, expected_images)
    expected_instances = pd.DataFrame({
        "image_id": [T1, T1, T2, T2, T2, E1, E1],
        "index": np.array([0, 1, 0, 1, 2, 0, 1], dtype=np.int32),
        "category_id": np.array([1, 2, 1, 1, 37, 1, 5], dtype=np.int32),
        "x1": np.array([1, 10.5, 5, 25, 20, 1, 15], dtype=np.float32),
        "y1": np.array([2, 5, 5, 5, 30, 1, 3], dtype=np.float32),
        "x2": np.array([30, 60, 20, 45, 26, 20, 40], dtype=np.float32),
        "y2": np.array([40, 45.25, 35, 38, 36, 30, 20], dtype=np.float32),
    })
    pd.testing.assert_frame_equal(res.instances, expected_instances)
    assert res.pairs["image_id"].tolist() == [T1, T1, T2, T2, E1]
    assert res.pairs["subject"].tolist() == [0, 0, 0, 1, 0]
    assert res.pairs["object"].tolist() == [1, 1, 2, 2, 1]
    assert res.pairs["verb_id"].tolist() == [RIDE, HOLD, KICK, NO_INTERACTION, FLY]
    assert res.pairs["hoi_id"].tolist() == [19, 12, 496, 502, 4]
    assert res.pairs["role"].isna().all()
    assert res.pairs["part_labels"].isna().all()  # no entry carries part labels: unknown


def test_run_writes_tables_that_read_back(tmp_path):
    root = make_hico(tmp_path / "hico")
    params = write_params(tmp_path, root)
    summary = run(params, tmp_path / "out", tmp_path / "reports" / "ingest.json")
    images = tables.read(tmp_path / "out" / "images.parquet", "images")
    pairs = tables.read(tmp_path / "out" / "pairs.parquet", "pairs")
    assert len(images) == 5 and images["annotated"].sum() == 3
    assert pairs["hoi_id"].tolist() == [19, 12, 496, 502, 4]
    assert json.loads((tmp_path / "reports" / "ingest.json").read_text()) == summary
    assert not list((tmp_path / "out").glob(".*tmp"))


# ---------------------------------------------------------------- optional part labels and scene tag

KICK_PARTS, HOLD_PARTS = [1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0]  # foot+leg; hand+arm


def with_train(change) -> list:
    data = copy.deepcopy(HICO_TRAIN)
    change(data)
    return data


def _label_pairs(d: list) -> None:
    d[1]["hoi_annotation"][0]["part_labels"] = KICK_PARTS
    d[1]["hoi_annotation"][1]["part_labels"] = [0] * 6  # the no_interaction pair: no part
    d[0]["hoi_annotation"][1]["part_labels"] = HOLD_PARTS
    d[1]["scene"] = "cross_person"


def test_part_labels_and_scene_tag_round_trip_through_the_tables(tmp_path):
    root = make_hico(tmp_path / "hico", with_train(_label_pairs))
    run(write_params(tmp_path, root), tmp_path / "out", tmp_path / "ingest.json")
    pairs = tables.read(tmp_path / "out" / "pairs.parquet", "pairs")
    labels = [None if v is None else [int(x) for x in v] for v in pairs["part_labels"]]
    # T1 ride (absent: unknown), T1 hold, T2 kick, T2 no_interaction, E1 fly (absent)
    assert labels == [None, HOLD_PARTS, KICK_PARTS, [0] * 6, None]
    images = tables.read(tmp_path / "out" / "images.parquet", "images").set_index("image_id")
    assert images.loc[T2, "scene_kind"] == "cross_person"
    assert images.drop(index=T2)["scene_kind"].isna().all()  # untagged records and unlisted files


def test_part_labels_follow_their_pair_when_pairs_are_skipped(tmp_path):
    def change(d: list) -> None:
        _label_pairs(d)
        d[1]["hoi_annotation"][0]["subject_id"] = 9  # index out of range: skipped
    res = hico(tmp_path, with_train(change))
    kept = res.pairs[res.pairs["image_id"] == T2]
    assert kept["verb_id"].tolist() == [NO_INTERACTION]
    assert [list(v) for v in kept["part_labels"]] == [[0] * 6]


@pytest.mark.parametrize("value, found", [
    ([1, 1, 0, 0, 0], "[1, 1, 0, 0, 0]"),  # five values
    ([1, 1, 0, 0, 0, 2], "[1, 1, 0, 0, 0, 2]"),  # not 0/1
    ([1, 1, 0, 0, 0, True], "[1, 1, 0, 0, 0, true]"),  # a boolean is not 0/1 here
    ([1, 1, 0, 0, 0, 0.5], "[1, 1, 0, 0, 0, 0.5]"),
    ("110000", '"110000"'),
])
def test_malformed_part_labels_are_a_one_line_error(tmp_path, value, found):
    def change(d: list) -> None:
        d[0]["hoi_annotation"][0]["part_labels"] = value
    message = error_of(tmp_path, test=with_test(change))
    assert f"test_hico.json: record 0 ({E1}.jpg): hoi_annotation[0].part_labels must be a list of 6 values " \
           f"0 or 1 (foot, leg, hip, hand, arm, head), found {found}" in message


def test_null_part_labels_mean_unknown_and_a_bad_scene_tag_fails(tmp_path):
    res = hico(tmp_path, test=with_test(lambda d: d[0]["hoi_annotation"][0].update(part_labels=None)))
    assert res.pairs["part_labels"].isna().all()
    message = error_of(tmp_path / "b", test=with_test(lambda d: d[0].update(scene=3)))
    assert f"record 0 ({E1}.jpg): 'scene' must be a non-empty string, found 3" in message


def test_vcoco_route_reads_part_labels(tmp_path):
    train = copy.deepcopy(VCOCO_TRAIN)
    train[0]["hoi_annotation"][0]["part_labels"] = HOLD_PARTS
    res = ingest(DatasetConfig(format="v-coco", root=make_vcoco(tmp_path / "vcoco", train)), IngestConfig())
    labels = [None if v is None else list(v) for v in res.pairs["part_labels"]]
    assert labels == [HOLD_PARTS, None, None, None, None]  # hold_obj labelled; the rest unknown


def test_summary_counts_and_invariants(tmp_path):
    s = hico(tmp_path).summary
    assert all(isinstance(v, int) for v in s.values())
    assert {k: s[k] for k in ("train_images_written", "train_images_annotated", "train_images_unannotated",
                              "train_records_read", "train_instances_written", "train_pairs_written",
                              "test_images_written", "test_images_unannotated", "test_pairs_read")} == {
        "train_images_written": 3, "train_images_annotated": 2, "train_images_unannotated": 1,
        "train_records_read": 2, "train_instances_written": 5, "train_pairs_written": 4,
        "test_images_written": 2, "test_images_unannotated": 1, "test_pairs_read": 1,
    }
    for split in ("train", "test"):
        for table in ("instances", "pairs"):
            skipped = sum(v for k, v in s.items() if k.startswith(f"{split}_{table}_skipped_"))
            assert s[f"{split}_{table}_read"] == s[f"{split}_{table}_written"] + skipped
            assert skipped == 0


def test_hoi_id_derived_when_absent(tmp_path):
    test = with_test(lambda d: d[0]["hoi_annotation"][0].pop("hoi_category_id"))
    assert hico(tmp_path, test=test).pairs["hoi_id"].tolist()[-1] == 4


# ---------------------------------------------------------------- JSON structure (always fails)


def test_malformed_json_names_file_and_position(tmp_path):
    root = make_hico(tmp_path / "hico")
    (root / "annotations" / "test_hico.json").write_text('[{"file_name": "a.jpg",\n ]')
    with pytest.raises(UserError, match=r"test_hico\.json: not valid JSON at line 2 column 2"):
        ingest(DatasetConfig(root=root), IngestConfig())


@pytest.mark.parametrize("change, expected", [
    (lambda d: d.clear() or d.append([1]), "test_hico.json: record 0: expected an object, found a list"),
    (lambda d: d[0].pop("annotations"), f"record 0 ({E1}.jpg): key 'annotations' missing"),
    (lambda d: d[0].update(hoi_annotation={}), "'hoi_annotation' must be a list, found an object"),
    (lambda d: d[0]["annotations"][1].update(bbox=[1, 2, 3]), "annotations[1].bbox must be a list of 4 numbers"),
    (lambda d: d[0]["annotations"][1].update(bbox=[1, "2", 3, 4]), "annotations[1].bbox must be a list of 4 numbers"),
    (lambda d: d[0]["annotations"][0].update(category_id="1"),
     'annotations[0].category_id must be an integer, found "1"'),
    (lambda d: d[0]["hoi_annotation"][0].update(object_id=True), "hoi_annotation[0].object_id must be an integer"),
    (lambda d: d[0]["hoi_annotation"][0].pop("subject_id"), "hoi_annotation[0]: key 'subject_id' missing"),
    (lambda d: d[0].update(file_name="sub/x.jpg"), "file_name must be a plain file name"),
    (lambda d: d.append(copy.deepcopy(d[0])), f"test_hico.json: record 1 ({E1}.jpg): file name repeats record 0"),
])
def test_structural_errors_fail_with_one_line(tmp_path, change, expected):
    assert expected in error_of(tmp_path, test=with_test(change))


def test_top_level_must_be_a_list(tmp_path):
    root = make_hico(tmp_path / "hico")
    (root / "annotations" / "test_hico.json").write_text('{"images": []}')
    with pytest.raises(UserError, match="test_hico.json: expected a JSON list of image records, found an object"):
        ingest(DatasetConfig(root=root), IngestConfig())


def test_missing_annotation_file_root_and_folder(tmp_path):
    root = make_hico(tmp_path / "hico")
    with pytest.raises(UserError, match="dataset root not found"):
        ingest(DatasetConfig(root=tmp_path / "nowhere"), IngestConfig())
    (root / "annotations" / "test_hico.json").unlink()
    with pytest.raises(UserError, match=r"test_hico\.json: annotation file not found"):
        ingest(DatasetConfig(root=root), IngestConfig())
    make_hico(root)
    for f in (root / "images" / "test2015").iterdir():
        f.unlink()
    (root / "images" / "test2015").rmdir()
    with pytest.raises(UserError, match=r"images/test2015: image folder not found \(needed by annotations/test_hico"):
        ingest(DatasetConfig(root=root), IngestConfig())


# ---------------------------------------------------------------- pair indices and ids


def test_index_out_of_range_skipped_by_default(tmp_path):
    test = with_test(lambda d: d[0]["hoi_annotation"].append({"subject_id": 0, "object_id": 9, "category_id": FLY}))
    res = hico(tmp_path, test=test)
    assert res.summary["test_pairs_read"] == 2 and res.summary["test_pairs_written"] == 1
    assert res.summary["test_pairs_skipped_index_out_of_range"] == 1


def test_index_out_of_range_fails_on_request(tmp_path):
    test = with_test(lambda d: d[0]["hoi_annotation"].insert(0, {"subject_id": 0, "object_id": 9, "category_id": FLY}))
    assert error_of(tmp_path, test=test, on_bad_pair="fail") == (
        f"test_hico.json: record 0 ({E1}.jpg): hoi_annotation[0].object_id 9 out of range (2 annotations) "
        "(policy ingest.on_bad_pair: fail)"
    )
    test[0]["hoi_annotation"][0].update(subject_id=-1)
    assert "hoi_annotation[0].subject_id -1 out of range" in error_of(tmp_path, test=test, on_bad_pair="fail")


def test_hico_pair_without_object_is_out_of_range(tmp_path):
    test = with_test(lambda d: d[0]["hoi_annotation"][0].update(object_id=-1))
    assert hico(tmp_path, test=test).summary["test_pairs_skipped_index_out_of_range"] == 1


def test_subject_not_person(tmp_path):
    test = with_test(lambda d: d[0]["hoi_annotation"][0].update(subject_id=1, object_id=0))
    assert hico(tmp_path, test=test).summary["test_pairs_skipped_subject_not_person"] == 1
    message = error_of(tmp_path, test=test, on_bad_pair="fail")
    assert "hoi_annotation[0].subject_id 1 is not a person (category_id 5)" in message


@pytest.mark.parametrize("hoi, expected", [
    ({"category_id": 130}, "hoi_annotation[0]: category_id 130 is not a HICO-DET verb id (1..117)"),
    ({"hoi_category_id": 700}, "hoi_category_id 700 is not a HICO-DET HOI id (1..600)"),
    ({"hoi_category_id": 7},
     "hoi_category_id 7 does not match verb 31 (fly) with object category 5 (airplane) (expected 4)"),
    ({"category_id": KICK, "hoi_category_id": None},
     "verb 45 (kick) with object category 5 (airplane) is not a HICO-DET HOI class"),
])
def test_unknown_ids_fail_by_default_and_skip_on_request(tmp_path, hoi, expected):
    test = with_test(lambda d: d[0]["hoi_annotation"][0].update(hoi))
    message = error_of(tmp_path, test=test)
    assert message.startswith(f"test_hico.json: record 0 ({E1}.jpg): ") and expected in message
    assert message.endswith("(policy ingest.on_unknown_id: fail)")
    s = hico(tmp_path, test=test, on_unknown_id="skip").summary
    assert s["test_pairs_written"] == 0
    id_reasons = ("unknown_verb", "unknown_hoi", "hoi_mismatch")
    assert sum(s[f"test_pairs_skipped_{r}"] for r in id_reasons) == 1


def test_unknown_category_fails_then_skips_box_and_its_pairs(tmp_path):
    test = with_test(lambda d: d[0]["annotations"][1].update(category_id=95))
    assert "annotations[1].category_id 95 is not a COCO category id" in error_of(tmp_path, test=test)
    res = hico(tmp_path, test=test, on_unknown_id="skip")
    assert res.summary["test_instances_skipped_unknown_category"] == 1
    assert res.summary["test_pairs_skipped_box_skipped"] == 1
    assert res.instances.query("image_id == @E1")["index"].tolist() == [0]


# ---------------------------------------------------------------- box geometry


def test_degenerate_box_skipped_with_its_pairs_and_index_gap_kept(tmp_path):
    train = copy.deepcopy(HICO_TRAIN)
    train[1]["annotations"][1]["bbox"] = [25, 5, 25, 38]  # x2 == x1
    res = hico(tmp_path, train=train)
    assert res.instances.query("image_id == @T2")["index"].tolist() == [0, 2]
    assert res.summary["train_instances_skipped_degenerate"] == 1
    assert res.summary["train_pairs_skipped_box_skipped"] == 1  # person 1's no_interaction pair
    kept = res.pairs.query("image_id == @T2")
    assert kept["subject"].tolist() == [0] and kept["object"].tolist() == [2]
    message = error_of(tmp_path, train=train, on_bad_box="fail")
    assert message == (
        f"trainval_hico.json: record 1 ({T2}.jpg): annotations[1].bbox [25, 5, 25, 38] is degenerate "
        "(needs finite x1 < x2 and y1 < y2) (policy ingest.on_bad_box: fail)"
    )


def test_nan_box_is_degenerate(tmp_path):
    root = make_hico(tmp_path / "hico")
    text = json.dumps(HICO_TEST).replace("[15, 3, 40, 20]", "[15, NaN, 40, 20]")
    (root / "annotations" / "test_hico.json").write_text(text)
    res = ingest(DatasetConfig(root=root), IngestConfig())
    assert res.summary["test_instances_skipped_degenerate"] == 1


def test_too_small_box(tmp_path):
    s = hico(tmp_path, min_box_size_px=7).summary  # the ball is 6 x 6 px
    assert s["train_instances_skipped_too_small"] == 1 and s["train_pairs_skipped_box_skipped"] == 2


def test_outside_box_kept_by_default_skipped_or_failed_on_request(tmp_path):
    test = with_test(lambda d: d[0]["annotations"][1].update(bbox=[15, 3, 45, 20]))  # image is 40 px wide
    res = hico(tmp_path, test=test)
    assert res.summary["test_instances_outside_kept"] == 1
    assert res.instances.query("image_id == @E1")["x2"].tolist() == [20, 45]
    assert res.summary["test_pairs_written"] == 1
    s = hico(tmp_path, test=test, on_box_outside="skip").summary
    assert s["test_instances_skipped_outside"] == 1 and s["test_pairs_skipped_box_skipped"] == 1
    assert "annotations[1].bbox [15, 3, 45, 20] lies outside the 40x30 image (margin 1 px)" in error_of(
        tmp_path, test=test, on_box_outside="fail"
    )


def test_one_based_edge_box_is_inside(tmp_path):
    # HICO-DET boxes are 1-based: x2 == width is a valid box on the last column
    test = with_test(lambda d: d[0]["annotations"][1].update(bbox=[15, 3, 40, 30]))
    assert hico(tmp_path, test=test, on_box_outside="fail").summary["test_instances_outside_kept"] == 0


def test_duplicates_kept_and_counted(tmp_path):
    def dup(d):
        d[0]["annotations"].append(copy.deepcopy(d[0]["annotations"][1]))
        d[0]["hoi_annotation"].append(copy.deepcopy(d[0]["hoi_annotation"][0]))
    res = hico(tmp_path, test=with_test(dup))
    assert res.summary["test_instances_duplicate"] == 1 and res.summary["test_pairs_duplicate"] == 1
    assert len(res.instances.query("image_id == @E1")) == 3 and len(res.pairs.query("image_id == @E1")) == 2


# ---------------------------------------------------------------- image files


def test_missing_image_fails_or_skips_its_record(tmp_path):
    test = with_test(lambda d: d.append({**copy.deepcopy(d[0]), "file_name": "HICO_test2015_00000009.jpg"}))
    assert error_of(tmp_path, test=test) == (
        "test_hico.json: record 1 (HICO_test2015_00000009.jpg): image file "
        "images/test2015/HICO_test2015_00000009.jpg not found (policy ingest.on_missing_image: fail)"
    )
    res = hico(tmp_path, test=test, on_missing_image="skip")
    s = res.summary
    assert s["test_images_skipped_missing"] == 1 and s["test_records_read"] == 2
    assert s["test_instances_skipped_image"] == 2 and s["test_pairs_skipped_image"] == 1
    assert "HICO_test2015_00000009" not in set(res.images["image_id"])


def test_corrupt_image_fails_or_is_skipped(tmp_path):
    root = make_hico(tmp_path / "hico")
    (root / "images" / "test2015" / f"{E1}.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(UserError) as info:
        ingest(DatasetConfig(root=root), IngestConfig())
    assert str(info.value) == (
        f"test_hico.json: record 0 ({E1}.jpg): image file images/test2015/{E1}.jpg is not a readable image "
        "(not a recognised image file) (policy ingest.on_corrupt_image: fail)"
    )
    (root / "images" / "test2015" / f"{E2}.jpg").write_bytes(b"")  # a file the JSON omits
    with pytest.raises(UserError, match=r"test2015: none of the 1 images that annotations/test_hico.json names was "
                                        r"ingested \(0 missing, 2 unreadable"):
        ingest(DatasetConfig(root=root), IngestConfig(on_corrupt_image="skip"))  # skipping everything: an error
    jpeg(root / "images" / "test2015" / f"{E1}.jpg", SIZES[E1])
    res = ingest(DatasetConfig(root=root), IngestConfig(on_corrupt_image="skip"))
    assert res.summary["test_images_skipped_corrupt"] == 1 and res.summary["test_images_written"] == 1


def test_skipping_every_image_of_a_wrong_folder_is_an_error(tmp_path):
    root = make_hico(tmp_path / "hico")
    for f in (root / "images" / "test2015").iterdir():
        f.rename(f.with_name(f.name.replace("test", "other")))  # a folder of other images
    with pytest.raises(UserError, match=r"none of the 1 images that annotations/test_hico.json names was ingested "
                                        r"\(1 missing, 0 unreadable"):
        ingest(DatasetConfig(root=root), IngestConfig(on_missing_image="skip"))


def test_a_test_only_dataset(tmp_path):
    root = make_hico(tmp_path / "hico")
    (root / "annotations" / "trainval_hico.json").unlink()  # a downloaded test split alone
    res = ingest(DatasetConfig(root=root, splits=("test",)), IngestConfig())
    assert set(res.images["split"]) == {"test"} and len(res.images) == 2 and len(res.pairs) == 1
    assert all(k.startswith("test_") for k in res.summary)


def test_truncated_jpeg_caught_by_default_missed_by_headers_only(tmp_path):
    root = make_hico(tmp_path / "hico")
    path = root / "images" / "train2015" / f"{T3}.jpg"
    Image.effect_noise((256, 256), 60).convert("RGB").save(path, "JPEG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert len(ingest(DatasetConfig(root=root), IngestConfig(decode_images=False)).images) == 5
    with pytest.raises(UserError, match=f"image file images/train2015/{T3}.jpg is not a readable image"):
        ingest(DatasetConfig(root=root), IngestConfig())
    res = ingest(DatasetConfig(root=root), IngestConfig(on_corrupt_image="skip"))
    assert res.summary["train_images_skipped_corrupt"] == 1 and T3 not in set(res.images["image_id"])


def test_image_check_reads_in_order_with_threads(tmp_path):
    from pipeline.readers.image_check import read_sizes

    for i, size in enumerate([(40, 30), (7, 90), (3, 3)] * 30):  # more files than one chunk
        Image.new("RGB", size).save(tmp_path / f"{i}.jpg")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    files = [f"{i}.jpg" for i in range(90)] + ["bad.png"]
    out = read_sizes(tmp_path, files, decode=True, workers=3)
    assert out["width"].tolist()[:3] == [40, 7, 3] and out["height"].tolist()[88:90] == [90, 3]
    assert out["error"].iloc[:90].isna().all() and out["width"].iloc[90] == -1 and out["error"].iloc[90]


def test_unannotated_images_listed_and_non_images_ignored(tmp_path):
    root = make_hico(tmp_path / "hico")
    (root / "images" / "test2015" / "README.txt").write_text("not an image")
    jpeg(root / "images" / "test2015" / "HICO_test2015_00000112.jpg", (10, 12))
    images = ingest(DatasetConfig(root=root), IngestConfig()).images.query("split == 'test'")
    assert images["image_id"].tolist() == [E1, E2, "HICO_test2015_00000112"]
    assert images["annotated"].tolist() == [True, False, False]
    assert images["width"].tolist() == [40, 36, 10] and images["height"].tolist() == [30, 24, 12]


def test_duplicate_image_ids(tmp_path):
    root = make_hico(tmp_path / "hico")
    Image.new("RGB", (8, 8)).save(root / "images" / "test2015" / f"{E2}.png")
    with pytest.raises(UserError, match=f"image id '{E2}' names two files"):
        ingest(DatasetConfig(root=root), IngestConfig())
    (root / "images" / "test2015" / f"{E2}.png").unlink()
    jpeg(root / "images" / "test2015" / f"{T1}.jpg", (8, 8))
    with pytest.raises(UserError, match=f"image id '{T1}' .* is also in the train split"):
        ingest(DatasetConfig(root=root), IngestConfig())


# ---------------------------------------------------------------- V-COCO


V1, V2, V3 = "COCO_train2014_000000000001", "COCO_val2014_000000000002", "COCO_train2014_000000000003"
CUP, BAT = 47, 39
VCOCO_TRAIN = [{
    "file_name": f"{V1}.jpg",
    "annotations": [{"bbox": [2, 2, 30, 44], "category_id": PERSON}, {"bbox": [28, 10, 40, 20], "category_id": CUP},
                    {"bbox": [30, 0, 50, 12], "category_id": BAT}],
    "hoi_annotation": [
        {"subject_id": 0, "object_id": 1, "category_id": 0},  # hold_obj
        {"subject_id": 0, "object_id": -1, "category_id": 1},  # stand (agent only)
        {"subject_id": 0, "object_id": -1, "category_id": 5},  # look_obj, object not annotated
        {"subject_id": 0, "object_id": 2, "category_id": 6},  # hit_instr
    ],
}]
VCOCO_TEST = [{
    "file_name": f"{V2}.jpg",
    "annotations": [{"bbox": [1, 1, 20, 30], "category_id": PERSON}],
    "hoi_annotation": [{"subject_id": 0, "object_id": -1, "category_id": 18}],  # run
}]


def make_vcoco(root: Path, train: list | None = None) -> Path:
    jpeg(root / "images" / "train2014" / f"{V1}.jpg", (52, 46))
    jpeg(root / "images" / "train2014" / f"{V3}.jpg", (20, 20))  # a COCO image outside V-COCO
    jpeg(root / "images" / "val2014" / f"{V2}.jpg", (24, 32))
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "trainval_vcoco.json").write_text(json.dumps(VCOCO_TRAIN if train is None else train))
    (root / "annotations" / "test_vcoco.json").write_text(json.dumps(VCOCO_TEST))
    return root


def test_vcoco_round_trip_roles_and_no_object_pairs(tmp_path):
    res = ingest(DatasetConfig(format="v-coco", root=make_vcoco(tmp_path / "vcoco")), IngestConfig())
    assert res.images["image_id"].tolist() == [V1, V2]  # only the images the JSON names
    assert res.images["file"].tolist() == [f"images/train2014/{V1}.jpg", f"images/val2014/{V2}.jpg"]
    assert res.images[["width", "height"]].values.tolist() == [[52, 46], [24, 32]]
    assert res.images["annotated"].all()
    pairs = res.pairs
    assert pairs["verb_id"].tolist() == [1, 2, 6, 7, 16]  # hold, stand, look, hit, run
    assert pairs["role"].fillna("-").tolist() == ["obj", "-", "obj", "instr", "-"]
    assert pairs["object"].tolist()[:1] + pairs["object"].tolist()[3:4] == [1, 2]
    assert pairs["object"].isna().tolist() == [False, True, True, False, True]
    assert pairs["hoi_id"].isna().all()
    assert res.summary["train_pairs_without_object"] == 2 and res.summary["test_pairs_without_object"] == 1
    table = tables.to_arrow(pairs, "pairs")
    assert table.column("object").null_count == 3


def test_vcoco_bad_verb_and_index(tmp_path):
    train = copy.deepcopy(VCOCO_TRAIN)
    train[0]["hoi_annotation"][2]["category_id"] = 29
    with pytest.raises(UserError, match=r"record 0 \(COCO_train2014_000000000001.jpg\): hoi_annotation\[2\]: "
                                        r"category_id 29 is not a V-COCO verb-role index \(0..28\)"):
        ingest(DatasetConfig(format="v-coco", root=make_vcoco(tmp_path / "a", train)), IngestConfig())
    train[0]["hoi_annotation"][2].update(category_id=5, object_id=-2)
    res = ingest(DatasetConfig(format="v-coco", root=make_vcoco(tmp_path / "b", train)), IngestConfig())
    assert res.summary["train_pairs_skipped_index_out_of_range"] == 1


# ---------------------------------------------------------------- params and CLI


def write_params(tmp_path: Path, root: Path, fmt: str = "hico-det", **ingest_cfg) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"dataset": {"format": fmt, "root": str(root)}, "ingest": ingest_cfg}))
    return path


def test_config_rejects_unknown_policy(tmp_path):
    from pipeline.params import ParamsError

    params = write_params(tmp_path, tmp_path, on_bad_box="ignore")
    with pytest.raises(ParamsError, match="ingest.on_bad_box"):
        run(params, tmp_path / "out", tmp_path / "r.json")


def test_cli_help_run_and_bad_input(tmp_path):
    from cli import app

    runner = CliRunner()
    help_result = runner.invoke(app, ["ingest", "--help"])
    assert help_result.exit_code == 0 and "images.parquet" in help_result.output
    root = make_hico(tmp_path / "hico")
    args = ["ingest", "--params", str(write_params(tmp_path, root)),
            "--out", str(tmp_path / "out"), "--report", str(tmp_path / "ingest.json")]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert "pairs_written" in ok.output and (tmp_path / "out" / "pairs.parquet").exists()
    assert json.loads((tmp_path / "ingest.json").read_text())["test_images_unannotated"] == 1
    (root / "annotations" / "test_hico.json").write_text("[{]")
    (tmp_path / "out" / "pairs.parquet").unlink()
    bad = runner.invoke(app, args)
    assert bad.exit_code == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "test_hico.json: not valid JSON" in lines[0]
    assert "Traceback" not in bad.output and not (tmp_path / "out" / "pairs.parquet").exists()


def test_empty_annotation_file_and_empty_record(tmp_path):
    empty_record = [{"file_name": f"{E1}.jpg", "annotations": [], "hoi_annotation": []}]
    res = hico(tmp_path, test=empty_record)
    test_images = res.images.query("split == 'test'")
    assert test_images["annotated"].tolist() == [True, False]
    assert res.summary["test_instances_read"] == 0 and res.summary["test_pairs_written"] == 0
    res = hico(tmp_path, test=[])
    assert res.images.query("split == 'test'")["annotated"].tolist() == [False, False]
    assert res.summary["test_records_read"] == 0 and res.summary["test_images_unannotated"] == 2
