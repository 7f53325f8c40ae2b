"""The official backend (the authors' part-box pickles) and the restricted unpickler."""

from __future__ import annotations

import math
import os
import pickle
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from pipeline import parts as P
from pipeline.inputs import safe_pickle
from model.common.errors import UserError
from pipeline.pose_backends import official
from pipeline.tables import to_arrow


class _Exploit:
    """Unpickling this calls os.system (the attack a restricted unpickler must stop)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_malicious_pickle_is_refused_without_running(tmp_path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({1: [_Exploit(str(marker))]}, protocol=protocol))
    with pytest.raises(safe_pickle.UnsafePickleError, match="refused to load global '(posix|os|nt).system'"):
        safe_pickle.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("target", ["builtins.eval", "subprocess.Popen", "builtins.getattr", "copyreg._reconstructor"])
def test_other_globals_refused(target: str) -> None:
    module, name = target.rsplit(".", 1)
    data = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"."
    with pytest.raises(safe_pickle.UnsafePickleError):
        safe_pickle.loads(data)


def test_plain_data_and_numpy_load() -> None:
    obj = {1: [np.arange(6, dtype=np.float32).reshape(2, 3), np.float64(2.5), {1, 2}, frozenset([3]),
               b"raw", (None, math.nan, True), "Human", np.array(["a"], dtype=object)]}
    for protocol in (0, 2, 4, 5):
        back = safe_pickle.loads(pickle.dumps(obj, protocol=protocol))
        np.testing.assert_array_equal(back[1][0], obj[1][0])
        assert back[1][1] == 2.5 and back[1][2] == {1, 2} and back[1][4] == b"raw" and back[1][6] == "Human"


def test_python2_style_names_load() -> None:
    # numpy < 2 wrote numpy.core.multiarray; Python 2 wrote byte strings (SHORT_BINSTRING).
    data = pickle.dumps(np.arange(3.0), protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    np.testing.assert_array_equal(safe_pickle.loads(data), np.arange(3.0))
    assert safe_pickle.loads(b"\x80\x02}q\x00U\x02x1q\x01K\x05s.") == {"x1": 5}


def test_garbage_is_a_user_error(tmp_path) -> None:
    (tmp_path / "bad.pkl").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="bad.pkl"):
        safe_pickle.load(tmp_path / "bad.pkl")


def images_frame() -> pd.DataFrame:
    ids = ["HICO_train2015_00000001", "HICO_test2015_00000001", "COCO_train2014_000000000009"]
    return pd.DataFrame({
        "image_id": ids, "split": ["train", "test", "train"],
        "file": [f"images/{i}.jpg" for i in ids],
        "width": np.int32(640), "height": np.int32(480), "annotated": True,
    })


def part_dicts(offset: float) -> list[dict]:
    return [{"x1": offset + 10 * i, "y1": 20.0, "x2": offset + 10 * i + 30, "y2": 90.0} for i in range(10)]


def write(tmp_path, name: str, obj: object) -> str:
    (tmp_path / name).write_bytes(pickle.dumps(obj, protocol=2))
    return name


def test_three_official_structures(tmp_path) -> None:
    kp = np.tile(np.array([[300.0, 200.0, 0.8]], np.float32), (17, 1))
    tin_parts = np.arange(40, dtype=np.float64).reshape(10, 4) + np.array([200, 100, 230, 150])
    files = [
        {"path": write(tmp_path, "train.pkl", {1: [part_dicts(0), part_dicts(100)], 77: [part_dicts(0)]}), "split": "train"},
        {"path": write(tmp_path, "test.pkl", {1: [
            [1, "Human", np.array([200.0, 100.0, 400.0, 460.0]), math.nan, 1, 0.95, kp, tin_parts],
            [1, "Object", np.array([0.0, 0.0, 10.0, 10.0]), math.nan, 5, 0.8, None, None],
            [1, "Human", [50.0, 60.0, 150.0, 300.0], math.nan, 1, 0.4, None, None],
        ]}), "split": "test"},
        {"path": write(tmp_path, "vcoco.pkl", {"COCO_train2014_000000000009.jpg": [[0, 1, 2, 3, 4, part_dicts(5)]]})},
    ]
    cfg = official.OfficialConfig.model_validate({"files": files})
    counts: Counter = Counter()
    persons = official.read(images_frame(), tmp_path, cfg, counts)
    to_arrow(persons, "persons")
    assert persons["image_id"].tolist() == ["HICO_train2015_00000001"] * 2 + ["HICO_test2015_00000001"] * 2 + ["COCO_train2014_000000000009"]
    assert persons["person"].tolist() == [0, 1, 0, 1, 0]
    # hico-train: box = union of the parts, score 1
    first = persons.iloc[0]
    assert (first.x1, first.y1, first.x2, first.y2, first.score) == (0, 20, 120, 90, 1.0)
    np.testing.assert_array_equal(first.part_boxes.reshape(10, 4)[3], [30, 20, 60, 90])
    # hico-test: box, score, keypoints and parts of the TIN row; the part-less human kept
    tin = persons.iloc[2]
    assert (tin.x1, tin.y2) == (200, 460) and tin.score == pytest.approx(0.95)
    np.testing.assert_array_equal(tin.part_boxes.reshape(10, 4), tin_parts.astype(np.float32))
    np.testing.assert_allclose(tin.keypoints.reshape(17, 3), kp)
    assert persons.iloc[3].part_boxes is None and persons.iloc[3].keypoints is None
    assert counts["skipped: object detection"] == 1 and counts["skipped: unknown image id"] == 1
    assert counts["human without part boxes"] == 1
    assert counts["file train.pkl read as hico-train"] == 1 and counts["file vcoco.pkl read as vcoco"] == 1

    # parts stage: official boxes kept unchanged, the part-less, keypoint-less human -> body
    table, rules = P.parts(persons, images_frame(), P.PartsConfig())
    kept = table[(table.image_id == "HICO_test2015_00000001") & (table.person == 0)]
    np.testing.assert_array_equal(kept[["x1", "y1", "x2", "y2"]].to_numpy(), tin_parts.astype(np.float32))
    assert not kept["fallback"].any()
    body = table[(table.image_id == "HICO_test2015_00000001") & (table.person == 1)]
    assert body["fallback"].all() and (body["x2"] == 150).all()
    assert rules["rule/given"] == 40


def test_integer_keys_need_a_split(tmp_path) -> None:
    cfg = official.OfficialConfig.model_validate({"files": [{"path": write(tmp_path, "t.pkl", {1: [part_dicts(0)]})}]})
    with pytest.raises(UserError, match="several images"):
        official.read(images_frame(), tmp_path, cfg, Counter())


def test_bad_part_entries_counted(tmp_path) -> None:
    data = {1: [part_dicts(0)[:9], [{"x1": 1}] * 10, np.zeros((10, 4)), "junk"]}
    cfg = official.OfficialConfig.model_validate({"files": [{"path": write(tmp_path, "t.pkl", data), "split": "train", "format": "hico-train"}]})
    counts: Counter = Counter()
    persons = official.read(images_frame(), tmp_path, cfg, counts)
    assert counts["bad record: part boxes not ten x1..y2 boxes"] == 3
    # the all-zero array is a valid 10 x 4 but its union box is empty -> dropped after clipping
    assert len(persons) == 0 and counts["dropped: empty box after clipping to the image"] == 1
