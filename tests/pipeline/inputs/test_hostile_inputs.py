"""Hostile and broken inputs (issue 16): nothing in a file runs, nothing crashes, nothing is
silently wrong. Hostile files carry a payload that would create a marker file; every test
asserts the marker never appears."""

from __future__ import annotations

import copy
import json
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from pipeline import tables
from pipeline.inputs import safe_pickle
from model.common.errors import UserError, one_line, quote_name
from pipeline.inputs.json_reader import read_json
from tests.hostile_payloads import hostile_pickle, hostile_torch_file

NESTED = "[" * 200_000 + "]" * 200_000  # deeper than the JSON parser's recursion limit


def one_error_line(result, *needles: str) -> str:
    """The CLI result's stderr is exactly one 'error:' line containing every needle; exit 2."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ----------------------------------------------------------------------------- pickles


def test_interactiveness_ground_truth_pickle_runs_no_code(tmp_path: Path) -> None:
    from pipeline.metrics.inputs import ImageIndex
    from pipeline.metrics.interactiveness_ap import read_authors_ground_truth

    marker, path = tmp_path / "PWNED", tmp_path / "gt_binary_HICO_DET.pkl"
    path.write_bytes(hostile_pickle(marker))
    with pytest.raises(safe_pickle.UnsafePickleError, match="gt_binary_HICO_DET.pkl: refused to load global"):
        read_authors_ground_truth(path, ImageIndex.of(["HICO_test2015_00000001"]))
    assert not marker.exists()
    good = tmp_path / "gt.pkl"  # the real files: {int: [n, 8] array}, Python 2 pickles
    good.write_bytes(pickle.dumps({1: np.arange(8.0).reshape(1, 8)}, protocol=2))
    gt = read_authors_ground_truth(good, ImageIndex.of(["HICO_test2015_00000001"]))
    assert gt.human.tolist() == [[0, 1, 2, 3]] and gt.obj.tolist() == [[4, 5, 6, 7]]
    bad_rows = tmp_path / "rows.pkl"
    bad_rows.write_bytes(pickle.dumps({1: [1.0, 2.0, 3.0]}))
    with pytest.raises(UserError, match="rows.pkl: image 1: boxes are not rows of 8 numbers"):
        read_authors_ground_truth(bad_rows, ImageIndex.of(["HICO_test2015_00000001"]))


@pytest.mark.parametrize("kind", ["bytearray", "bytes"])
def test_restricted_unpickler_refuses_allocation_by_size(kind: str) -> None:
    # 1 TiB asked for by a 46-byte file: refused before any allocation
    bomb = b"\x80\x02c__builtin__\n" + kind.encode() + b"\nq\x00\x8a\x06\x00\x00\x00\x00\x00\x01\x85q\x01Rq\x02."
    with pytest.raises(safe_pickle.UnsafePickleError, match=rf"bomb.pkl: refused: {kind}\(1099511627776\)"):
        safe_pickle.loads(bomb, "bomb.pkl")
    assert safe_pickle.loads(pickle.dumps([b"ab", bytearray(b"c")], protocol=2)) == [b"ab", bytearray(b"c")]


class _Codec:
    def __reduce__(self):
        import codecs

        return (codecs.encode, ("a", "zlib_codec"))


def test_restricted_unpickler_allows_only_the_latin1_codec() -> None:
    with pytest.raises(safe_pickle.UnsafePickleError, match="c.pkl: refused: codec 'zlib_codec' refused"):
        safe_pickle.loads(pickle.dumps(_Codec(), protocol=2), "c.pkl")
    assert safe_pickle.loads(pickle.dumps(b"\xff\x00", protocol=2)) == b"\xff\x00"  # protocol 2 bytes: latin-1


# ----------------------------------------------------------------------------- torch files


def test_torch_files_share_one_error_contract(tmp_path: Path) -> None:
    from model import checkpoint as ckpt_io
    from model.bundle_file import load_bundle
    from model.torch_file import read_torch_file

    marker = tmp_path / "PWNED"
    zero = tmp_path / "zero.pt"
    zero.write_bytes(b"")
    hostile = hostile_torch_file(tmp_path / "hostile.pt", marker)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(hostile.read_bytes()[:200])  # a zip cut short
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    cases = {zero: "is empty (0 bytes)", hostile: "refused: it holds objects other than tensors",
             corrupt: "is corrupt or truncated", text: "not a file written by torch.save", tmp_path: "is a directory"}
    for path, why in cases.items():
        for load in (ckpt_io.load, load_bundle, read_torch_file):
            with pytest.raises(ckpt_io.CheckpointError) as info:
                load(path)
            message = str(info.value)
            assert message.startswith(str(path)) and why in message and "\n" not in message, message
    assert not marker.exists()


def test_predict_and_evaluate_answer_bad_bundles_in_one_line(tmp_path: Path) -> None:
    from cli import app

    marker = tmp_path / "PWNED"
    img = tmp_path / "one.png"
    Image.new("RGB", (32, 32)).save(img)
    zero = tmp_path / "zero.pt"
    zero.write_bytes(b"")
    hostile = hostile_torch_file(tmp_path / "hostile.pt", marker)
    runner = CliRunner()
    for bundle, why in ((zero, "empty (0 bytes)"), (hostile, "refused")):
        out = tmp_path / f"out_{bundle.stem}"
        r = runner.invoke(app, ["predict", str(img), "--checkpoint", str(bundle), "--out", str(out), "--device", "cpu"])
        one_error_line(r, str(bundle), why)
        assert not out.exists()
    assert not marker.exists()


def test_backbone_weights_are_read_weights_only(tmp_path: Path) -> None:
    from model.backbone import resnet_trunk

    marker = tmp_path / "PWNED"
    with pytest.raises(UserError, match="backbone weights .* refused"):
        resnet_trunk("resnet18", hostile_torch_file(tmp_path / "r18.pth", marker))
    assert not marker.exists()
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(UserError, match="wrong.pth: not a torchvision resnet18 state dict") as info:
        resnet_trunk("resnet18", wrong)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- JSON


def test_json_reader_contract(tmp_path: Path) -> None:
    nested = tmp_path / "nested.json"
    nested.write_text(NESTED)
    with pytest.raises(UserError, match="nested.json: not readable JSON: nested too deeply"):
        read_json(nested)
    with pytest.raises(UserError, match="is a directory"):
        read_json(tmp_path, "pose result file")
    with pytest.raises(UserError, match="missing.json: annotation file not found; check it"):
        read_json(tmp_path / "missing.json", "annotation file", hint="check it")
    huge_int = tmp_path / "int.json"
    huge_int.write_text("[" + "9" * 5000 + "]")
    with pytest.raises(UserError, match="int.json: not readable JSON"):
        read_json(huge_int)


def test_every_json_reader_survives_deep_nesting(tmp_path: Path) -> None:
    from pipeline.interop.import_preds import load_entries
    from pipeline.pose_backends.jsonfile import read_entries
    from pipeline.readers.annotation_json import read_split

    nested = tmp_path / "deep.json"
    nested.write_text(NESTED)
    for reader in (read_split, read_entries, load_entries):
        with pytest.raises(UserError, match="deep.json: not readable JSON: nested too deeply"):
            reader(nested)
        with pytest.raises(UserError, match="is a directory"):
            reader(tmp_path)


# ----------------------------------------------------------------------------- images and geometry


@pytest.mark.parametrize("size", [(4000, 2), (2, 4000), (4000, 1), (1, 1), (3, 7)])
def test_resize_never_makes_a_zero_side(size: tuple[int, int]) -> None:
    from model.transforms import resize

    tgt = {"sub_boxes": np.array([[0, 0, 1, 1]], np.float32), "obj_boxes": np.zeros((1, 4), np.float32),
           "part_boxes": np.zeros((0, 10, 4), np.float32)}
    img, out = resize(Image.new("RGB", size), tgt, 800, 1333)
    assert min(img.size) >= 1 and max(img.size) <= 1333 and out["size"] == (img.height, img.width)


def test_predict_keeps_good_images_next_to_an_extreme_one(tmp_path: Path) -> None:
    from tests.pipeline.test_predict import BOX, figure, make_bundle, pose_entry, run

    bundle = make_bundle(tmp_path / "bundle.pt")
    images = tmp_path / "images"
    images.mkdir()
    figure((96, 128), BOX).save(images / "good.png")
    Image.new("RGB", (4000, 2), (90, 90, 90)).save(images / "strip.png")
    pose = tmp_path / "pose.json"
    pose.write_text(json.dumps([pose_entry("good.png", BOX), pose_entry("strip.png", (10, 0, 3000, 2))]))
    summary = run([images], bundle, tmp_path / "out", pose_backend="alphapose-file", pose_file=pose)
    doc = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert summary["inputs"] == 2 and summary["unreadable"] == 0
    assert {e["image_id"] for e in doc["images"]} == {"good", "strip"}
    assert (tmp_path / "out" / "images" / "good.png").exists()


def test_zero_size_part_inside_the_image_lights_one_cell() -> None:
    from model.masks import rasterize_part_masks
    from model.transforms import part_box_valid

    boxes = np.array([[[40.0, 70.0, 40.0, 70.0]] * 10], np.float32)  # every part a single point
    valid = part_box_valid(boxes, 128, 96)
    assert valid.all()
    outside = np.array([[200.0, 10.0, 200.0, 10.0], [5.0, 5.0, 4.0, 9.0], [np.nan, 1, 2, 3]], np.float32)
    assert not part_box_valid(outside, 128, 96).any()  # beyond the image, inverted, not finite
    masks = rasterize_part_masks(torch.from_numpy(boxes), torch.zeros(1, dtype=torch.long), 1, (3, 4), 32)
    assert masks.sum(dim=(2, 3)).tolist() == [[1] * 6] and masks[0, 0, 2, 1]  # row 70 // 32, col 40 // 32


def test_zero_size_parts_survive_the_data_pipeline() -> None:
    from model.data import part_arrays

    parts = pd.DataFrame({"image_id": "a", "person": 0, "part": np.arange(10),
                          "x1": 10.0, "y1": 10.0, "x2": 10.0, "y2": 10.0})
    parts.loc[9, ["x1", "x2"]] = [500.0, 600.0]  # outside the image: invalid
    sizes = pd.DataFrame({"width": [64], "height": [64]}, index=pd.Index(["a"], name="image_id"))
    _, _, valid = part_arrays(parts, sizes)
    assert valid.tolist() == [[True] * 9 + [False]]


def test_one_nan_joint_keeps_the_parts_that_do_not_use_it() -> None:
    from pipeline.parts import NO_KEYPOINTS, PartsConfig, person_parts

    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, :, 0] = np.linspace(100, 140, 17)
    kp[0, :, 1] = np.linspace(20, 200, 17)
    kp[0, :, 2] = 0.9
    body = np.array([[90.0, 10.0, 150.0, 210.0]], np.float32)
    given = np.full((1, 10, 4), np.nan, np.float32)
    args = (given, body, np.array([300.0]), np.array([300.0]), PartsConfig())
    clean, clean_rule = person_parts(kp, *args)
    kp[0, 9, 0] = np.nan  # left wrist x (COCO 9): only the left hand (part 9) uses it
    boxes, rule = person_parts(kp, *args)
    assert (rule != NO_KEYPOINTS).all()
    np.testing.assert_array_equal(boxes[0, :9], clean[0, :9])
    assert rule[0, 9] != clean_rule[0, 9] and np.isfinite(boxes).all()


def test_duplicated_image_id_is_one_line_in_parts(tmp_path: Path) -> None:
    from cli import app

    images = pd.DataFrame({"image_id": ["a", "a"], "split": "train", "file": ["a.jpg", "b.jpg"],
                           "width": np.int32(64), "height": np.int32(64), "annotated": True})
    tables.write(images, "images", tmp_path / "images.parquet")
    tables.write(tables.empty("persons"), "persons", tmp_path / "persons.parquet")
    (tmp_path / "params.yaml").write_text("parts: {}\n")
    r = CliRunner().invoke(app, ["parts", "--persons", str(tmp_path / "persons.parquet"),
                                 "--images", str(tmp_path / "images.parquet"), "--out", str(tmp_path / "parts.parquet"),
                                 "--report", str(tmp_path / "parts.json"), "--params", str(tmp_path / "params.yaml")])
    one_error_line(r, "images.parquet: image_id a appears 2 times")
    assert not (tmp_path / "parts.parquet").exists()


def test_empty_splits_are_warned_about() -> None:
    from pipeline.ingest import empty_split_warnings

    summary = {"train_images_written": 0, "train_records_read": 3, "test_images_written": 4, "test_pairs_written": 0}
    warnings = empty_split_warnings(summary, ("train", "test"))
    assert len(warnings) == 2 and "train split has no images (3 records read)" in warnings[0]
    assert "test split has no annotated pair" in warnings[1]
    assert empty_split_warnings({"train_images_written": 1, "train_pairs_written": 1}, ("train",)) == []


# ----------------------------------------------------------------------------- names


def test_control_characters_in_names_cannot_fake_lines() -> None:
    name = "x.jpg\nerror: all good\r\x1b[2J"
    assert "\n" not in quote_name(name) and "\r" not in quote_name(name) and "\x1b" not in quote_name(name)
    assert quote_name("HICO_train2015_00000001.jpg") == "HICO_train2015_00000001.jpg"  # plain names unchanged
    assert one_line("a\nb\tc") == "a\\nb\\tc"


def test_ingest_quotes_a_file_name_with_a_newline(tmp_path: Path) -> None:
    from pipeline.ingest import IngestConfig, ingest
    from pipeline.params import DatasetConfig
    from tests.pipeline.test_ingest import HICO_TEST, make_hico

    test = copy.deepcopy(HICO_TEST)
    test[0]["file_name"] = "HICO_test2015_0000000X.jpg\nerror: fake"
    root = make_hico(tmp_path / "hico", test=test)
    with pytest.raises(UserError) as info:
        ingest(DatasetConfig(root=root), IngestConfig())
    assert "\n" not in str(info.value) and "'HICO_test2015_0000000X.jpg\\nerror: fake'" in str(info.value)


# ----------------------------------------------------------------------------- pose files


IDS = ["HICO_test2015_00000001", "HICO_test2015_00000002"]


def pose_images() -> pd.DataFrame:
    return pd.DataFrame({"image_id": IDS, "split": "test", "file": [f"images/{i}.jpg" for i in IDS],
                         "width": np.int32(320), "height": np.int32(240), "annotated": True})


def coco_entry(image_id: object, **extra: object) -> dict:
    kp = np.c_[np.linspace(10, 90, 17), np.linspace(20, 200, 17), np.full(17, 0.8)]
    return {"image_id": image_id, "category_id": 1, "keypoints": kp.reshape(-1).tolist(), "score": 0.9, **extra}


def read_coco(tmp_path: Path, entries: list) -> tuple[pd.DataFrame, Counter]:
    from pipeline.pose_backends import coco

    (tmp_path / "r.json").write_text(json.dumps(entries))
    cfg = coco.CocoConfig.model_validate({"files": [{"path": "r.json", "split": "test"}]})
    counts: Counter = Counter()
    return coco.read(pose_images(), tmp_path, cfg, counts), counts


def test_bad_detection_scores_are_counted_never_one(tmp_path: Path) -> None:
    entries = [coco_entry(1), coco_entry(1, score=None), coco_entry(1, score="high"), coco_entry(2),
               coco_entry(2, score=-0.5)]
    del entries[3]["score"]
    persons, counts = read_coco(tmp_path, entries)
    assert persons["score"].tolist() == pytest.approx([0.9, 0.0])
    assert counts["bad record: detection score missing or not a finite number"] == 3
    assert counts["detection score outside [0, 1]: clipped"] == 1


def test_nan_score_in_an_alphapose_file_is_skipped(tmp_path: Path) -> None:
    from pipeline.pose_backends import alphapose

    entry = {"image_id": f"{IDS[0]}.jpg", "category_id": 1, "keypoints": coco_entry(1)["keypoints"], "score": "NaN"}
    (tmp_path / "a.json").write_text(json.dumps([entry]).replace('"NaN"', "NaN"))
    counts: Counter = Counter()
    persons = alphapose.read(pose_images(), tmp_path, alphapose.AlphaPoseConfig(results=Path("a.json")), counts)
    assert len(persons) == 0 and counts["bad record: detection score missing or not a finite number"] == 1


def test_integer_image_keys_are_exact(tmp_path: Path) -> None:
    persons, counts = read_coco(tmp_path, [coco_entry(1.7), coco_entry(True), coco_entry("1.7"), coco_entry(2.0),
                                           coco_entry("2")])
    assert persons["image_id"].tolist() == [IDS[1], IDS[1]]
    assert counts["skipped: unknown image id"] == 3


def test_a_pose_file_matching_no_image_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"r.json: none of its 2 entries names an image of the dataset \(e.g. image_id 77\)"):
        read_coco(tmp_path, [coco_entry(77), coco_entry(78)])


def test_ambiguous_integer_key_error_names_the_file(tmp_path: Path) -> None:
    from pipeline.pose_backends import coco

    images = pd.concat([pose_images(), pose_images().assign(image_id=["HICO_train2015_00000001", "x"], split="train")])
    (tmp_path / "both.json").write_text(json.dumps([coco_entry(1)]))
    cfg = coco.CocoConfig.model_validate({"files": [{"path": "both.json"}]})
    with pytest.raises(UserError, match=r"both.json: image key 1 matches several images"):
        coco.read(images, tmp_path, cfg, Counter())


# ----------------------------------------------------------------------------- ultralytics weights


@pytest.fixture()
def digest_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A digest table in a temporary file (the real one holds the published official digests)."""
    from pipeline.pose_backends import weights_trust as trust

    known = tmp_path / "official.pt"
    known.write_bytes(b"official bytes")
    table = {"weights": {"yolo11n-pose.pt": {"sha256": trust.sha256(known)}, "nodigest-pose.pt": {"sha256": None}}}
    (tmp_path / "table.json").write_text(json.dumps(table))
    monkeypatch.setattr(trust, "TABLE", tmp_path / "table.json")
    return {"known": known}


def test_unknown_weight_files_need_the_opt_in(tmp_path: Path, digest_table: dict, monkeypatch) -> None:
    from pipeline.pose_backends import weights_trust as trust
    from pipeline.pose_backends import yolo

    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(hostile_pickle(marker))
    cfg = yolo.UltralyticsConfig(weights=str(evil), device="cpu")
    with pytest.raises(UserError, match="evil.pt: refused: not a known official pose weight file") as info:
        yolo.load_model(cfg)
    assert "trust_weights: true" in str(info.value) and "can run code" in str(info.value)
    assert not marker.exists()
    trust.vet(digest_table["known"], str(digest_table["known"]), trust=False)  # a renamed official file
    trust.vet(evil, str(evil), trust=True)  # the user's explicit choice
    trust.vet(Path("yolo11n-pose.yaml"), "yolo11n-pose.yaml", trust=False)  # architecture only
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "pose").mkdir(parents=True)
    (tmp_path / "models" / "pose" / "yolo11n-pose.pt").write_bytes(b"tampered")
    with pytest.raises(UserError, match="differs from the published digest of yolo11n-pose.pt"):
        yolo.load_model(yolo.UltralyticsConfig(weights="yolo11n-pose.pt", device="cpu"))
    with pytest.raises(UserError, match="no published SHA-256 of this official file"):
        yolo.load_model(yolo.UltralyticsConfig(weights="nodigest-pose.pt", device="cpu"))


def test_predict_refuses_unknown_pose_weights_in_one_line(tmp_path: Path) -> None:
    from cli import app
    from tests.pipeline.test_predict import make_bundle

    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(hostile_pickle(marker))
    img = tmp_path / "one.png"
    Image.new("RGB", (32, 32)).save(img)
    bundle = make_bundle(tmp_path / "b.pt")
    r = CliRunner().invoke(app, ["predict", str(img), "--checkpoint", str(bundle), "--out", str(tmp_path / "out"),
                                 "--device", "cpu", "--pose-weights", str(evil), "--params", str(tmp_path / "no.yaml")])
    one_error_line(r, "evil.pt: refused", "--trust-weights")
    assert not marker.exists() and not (tmp_path / "out" / "predictions.json").exists()


def test_official_digest_table_is_well_formed() -> None:
    from pipeline.pose_backends import weights_trust as trust

    table = trust.known_weights()
    assert "yolo11x-pose.pt" in table
    for known in table.values():
        assert known.sha256 is None or (len(known.sha256) == 64 and int(known.sha256, 16) >= 0)


def test_a_table_path_that_is_a_directory_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "images.parquet").mkdir()
    with pytest.raises(UserError, match="images.parquet: a directory or not a regular file"):
        tables.read(tmp_path / "images.parquet", "images")


def test_keypoints_beyond_float32_are_a_counted_bad_record_not_inf() -> None:
    """1e300 fits a JSON number but not float32: the row is refused and counted, never inf."""
    from collections import Counter

    from pipeline.pose_backends.persons import keypoints_to_coco17

    counts: Counter = Counter()
    good_row = [1.0, 2.0, 0.9] * 17
    huge_row = [1.0, 2.0, 0.9] * 16 + [1e300, 2.0, 0.9]
    out, ok = keypoints_to_coco17([good_row, huge_row], counts)
    assert ok.tolist() == [True, False] and np.isfinite(out[0]).all() and np.isnan(out[1]).all()
    assert counts["bad record: keypoints not numeric"] == 1


def test_import_preds_score_beyond_float32_is_one_line(tmp_path) -> None:
    from pipeline.interop.import_preds import qpic_table

    entry = {"file_name": "a.jpg", "predictions": [{"bbox": [0, 0, 10, 10], "category_id": 0},
                                                   {"bbox": [0, 0, 5, 5], "category_id": 1}],
             "hoi_prediction": [{"subject_id": 0, "object_id": 1, "category_id": 0, "score": 1e300}]}
    with pytest.raises(UserError, match=r"preds.json: score value 1e\+300 does not fit float32"):
        qpic_table([entry], "hico-det", source="preds.json")
