"""Exports of the predictions table and their round trips: ho-rcnn ``detections_XX.mat``
(cell layout, object/HOI blocks, MATLAB rounding, the 19,999 cap, the +1 shift) and the
official V-COCO detection pickle (every key, NaN fills, agent = max of roles, protocol 2)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.io import loadmat
from typer.testing import CliRunner

from model.common import labels
from pipeline.interop import export_hico, vcoco_pickle
from pipeline.interop import predictions as preds
from pipeline.interop.image_keys import pattern_map

LAB = labels.hico()
VERB = {name: vid for vid, name in LAB.verb_names.items()}
RIDE_BIKE, HOLD_BIKE = LAB.hoi_id(VERB["ride"], 2), LAB.hoi_id(VERB["hold"], 2)
HUG_PERSON = LAB.hoi_id(VERB["hug"], 1)
IMAGES = [f"HICO_test2015_{i:08d}" for i in (1, 2, 3)]


def hico_frame() -> pd.DataFrame:
    rows = [  # image, query, human box, object box, hoi, score
        (IMAGES[0], 0, (1.5, 2.0, 30.0, 40.0), (10.0, 5.0, 60.0, 45.5), RIDE_BIKE, 0.9),
        (IMAGES[0], 0, (1.5, 2.0, 30.0, 40.0), (10.0, 5.0, 60.0, 45.5), HOLD_BIKE, 0.4),
        (IMAGES[0], 1, (2.5, 2.0, 31.0, 41.0), (11.0, 6.0, 61.0, 46.0), RIDE_BIKE, 0.7),
        (IMAGES[2], 0, (5.0, 5.0, 20.0, 35.0), (25.0, 5.0, 45.0, 38.0), HUG_PERSON, 0.8),
        (IMAGES[2], 1, (5.0, 5.0, 20.0, 35.0), (25.0, 5.0, 45.0, 38.0), RIDE_BIKE, 0.2),
        (IMAGES[1], 0, (1.0, 1.0, 9.0, 9.0), (3.0, 3.0, 7.0, 7.0), None, 0.95),  # no HOI class: left out
        ("HICO_test2015_00000099", 0, (1.0, 1.0, 9.0, 9.0), (3.0, 3.0, 7.0, 7.0), RIDE_BIKE, 0.5),  # not listed
    ]
    hoi = np.array([r[4] or 0 for r in rows])
    return preds.conform({
        "image_id": np.array([r[0] for r in rows], dtype=object),
        "query": np.array([r[1] for r in rows], dtype=np.int32),
        **{c: np.array([r[2][k] for r in rows], dtype=np.float32) for k, c in enumerate(preds.HUMAN)},
        **{c: np.array([r[3][k] for r in rows], dtype=np.float32) for k, c in enumerate(preds.OBJECT)},
        "category_id": np.array([LAB.hoi_object.get(h, 2) for h in hoi], dtype=np.int32),
        "verb_id": np.array([LAB.hoi_verb.get(h, 1) for h in hoi], dtype=np.int32),
        "hoi_id": preds.nullable_int(hoi, hoi > 0), "score": np.array([r[5] for r in rows], dtype=np.float32),
    })


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    cols = ["image_id", "hoi_id", *preds.HUMAN, *preds.OBJECT, "score", "verb_id", "category_id"]
    out = frame[cols].astype({"hoi_id": "int64", "verb_id": "int64", "category_id": "int64"})
    return out.sort_values(["image_id", "hoi_id", "score"], ignore_index=True)


def test_object_blocks_follow_coco_order_and_ican_ranges() -> None:
    blocks = export_hico.object_blocks()
    assert len(blocks) == 80 and blocks[0][0] == 1 and blocks[1][0] == 2
    # iCAN's Generate_detection.m: 01 person = HOIs 161..170, 02 bicycle = 11..24, 05 airplane = 1..10
    assert (blocks[0][1][0], blocks[0][1][-1]) == (161, 170)
    assert (blocks[1][1][0], blocks[1][1][-1]) == (11, 24)
    assert (blocks[4][1][0], blocks[4][1][-1]) == (1, 10)


def test_mat_layout_and_exact_round_trip(tmp_path: Path) -> None:
    frame = hico_frame()
    counts = export_hico.export(frame, IMAGES, tmp_path, cap=0, round_boxes=False)
    assert counts == {"rows_in": 7, "rows_without_hoi": 1, "rows_outside_image_list": 1, "rows_capped": 0,
                      "rows_written": 5, "images": 3}
    assert sorted(p.name for p in tmp_path.glob("*.mat")) == [f"detections_{k:02d}.mat" for k in range(1, 81)]
    bike = loadmat(str(tmp_path / "detections_02.mat"))["all_boxes"]
    assert bike.shape == (14, 3)
    cell = bike[RIDE_BIKE - 11, 0]
    np.testing.assert_allclose(cell, [[1.5, 2, 30, 40, 10, 5, 60, 45.5, 0.9], [2.5, 2, 31, 41, 11, 6, 61, 46, 0.7]],
                               rtol=1e-6)
    assert bike[RIDE_BIKE - 11, 1].size == 0  # MATLAB's isempty()
    back = export_hico.read_mats(tmp_path, IMAGES)
    expected = frame[frame["hoi_id"].notna() & frame["image_id"].isin(IMAGES)]
    pd.testing.assert_frame_equal(comparable(back), comparable(expected), check_dtype=False)


def test_minus_one_shift_round_trips_and_rounding_is_matlab(tmp_path: Path) -> None:
    frame = hico_frame()
    export_hico.export(frame, IMAGES, tmp_path / "a", cap=0, round_boxes=False, shift="minus-one")
    raw = loadmat(str(tmp_path / "a/detections_02.mat"))["all_boxes"][RIDE_BIKE - 11, 0]
    assert raw[0, 0] == pytest.approx(0.5)  # ho-rcnn adds 1 back
    back = export_hico.read_mats(tmp_path / "a", IMAGES, shift="minus-one")
    expected = frame[frame["hoi_id"].notna() & frame["image_id"].isin(IMAGES)]
    pd.testing.assert_frame_equal(comparable(back), comparable(expected), check_dtype=False)
    export_hico.export(frame, IMAGES, tmp_path / "b", cap=0)  # default: round, no shift
    rounded = loadmat(str(tmp_path / "b/detections_02.mat"))["all_boxes"][RIDE_BIKE - 11, 0]
    assert rounded[0, 0] == 2 and rounded[1, 0] == 3 and rounded[0, 7] == 46  # halves away from zero
    np.testing.assert_array_equal(export_hico.matlab_round(np.array([0.5, 1.5, 2.5, -0.5])), [1, 2, 3, -1])


def test_cap_keeps_the_top_scores_per_hoi(tmp_path: Path) -> None:
    rows, counts = export_hico.detection_rows(hico_frame(), IMAGES, cap=2)
    ride = rows[rows["hoi"] == RIDE_BIKE]
    assert ride["score"].tolist() == pytest.approx([0.9, 0.7]) and counts["rows_capped"] == 1


def vcoco_frame() -> pd.DataFrame:
    vc = labels.vcoco()
    img = "COCO_val2014_000000000042"
    h0, h1 = (1.0, 2.0, 30.0, 40.0), (40.0, 2.0, 60.0, 42.0)
    o0, nan = (15.0, 10.0, 25.0, 20.0), (np.nan,) * 4
    rows = [  # image, query, human, object, action, role, score
        (img, 0, h0, o0, "hold", "obj", 0.8), (img, 0, h0, nan, "stand", None, 0.6),
        (img, 0, h0, o0, "hit", "instr", 0.3), (img, 0, h0, nan, "hit", "obj", 0.5),
        (img, 1, h1, o0, "eat", "obj", 0.25),
        ("COCO_val2014_000000000073", 0, h1, nan, "walk", None, 0.9),
    ]
    return preds.conform({
        "image_id": np.array([r[0] for r in rows], dtype=object),
        "query": np.array([r[1] for r in rows], dtype=np.int32),
        **{c: np.array([r[2][k] for r in rows], dtype=np.float32) for k, c in enumerate(preds.HUMAN)},
        **{c: np.array([r[3][k] for r in rows], dtype=np.float32) for k, c in enumerate(preds.OBJECT)},
        "verb_id": np.array([vc.action_id(r[4]) for r in rows], dtype=np.int32),
        "role": pd.array([r[5] for r in rows], dtype="str"), "score": np.array([r[6] for r in rows], dtype=np.float32),
    })


def test_vcoco_pickle_keys_values_and_protocol(tmp_path: Path) -> None:
    dets = vcoco_pickle.to_detections(vcoco_frame())
    assert len(dets) == 3
    d = dets[0]
    vc = labels.vcoco()
    expected_keys = {"image_id", "person_box"} | {f"{a}_agent" for a in vc.action_roles} | {
        f"{a}_{r}" for a, roles in vc.action_roles.items() for r in roles[1:]}
    assert all(set(x) == expected_keys for x in dets) and len(expected_keys) == 2 + 26 + 25
    assert d["image_id"] == 42 and d["person_box"] == [1.0, 2.0, 30.0, 40.0]
    assert d["hold_obj"] == pytest.approx([15, 10, 25, 20, 0.8])
    assert d["hold_agent"] == pytest.approx(0.8) and d["stand_agent"] == pytest.approx(0.6)
    assert d["hit_agent"] == pytest.approx(0.5)  # max of the two role scores
    assert np.isnan(d["hit_obj"][:4]).all() and d["hit_obj"][4] == pytest.approx(0.5)  # no role object
    assert np.isnan(d["eat_agent"]) and np.isnan(d["eat_obj"]).all() and np.isnan(d["walk_agent"])
    path = vcoco_pickle.write_pickle(dets, tmp_path / "dets.pkl")
    assert path.read_bytes()[:2] == b"\x80\x02"
    assert pickle.loads(path.read_bytes())[2]["walk_agent"] == pytest.approx(0.9)


def test_vcoco_pickle_round_trip(tmp_path: Path) -> None:
    frame = vcoco_frame()
    path = vcoco_pickle.write_pickle(vcoco_pickle.to_detections(frame), tmp_path / "dets.pkl")
    back = vcoco_pickle.read_pickle(path, pattern_map("v-coco", [42, 73]))
    cols = ["image_id", "query", *preds.HUMAN, *preds.OBJECT, "verb_id", "role", "score"]
    key = ["image_id", "query", "verb_id", "role"]
    vc = labels.vcoco()
    role_action = back["verb_id"].map(lambda v: len(vc.action_roles[vc.actions[v]]) > 1)
    agents = back[role_action & back["role"].isna()]  # the pickle's <action>_agent of role actions, kept
    pd.testing.assert_frame_equal(back.drop(agents.index)[cols].sort_values(key, ignore_index=True),
                                  frame[cols].sort_values(key, ignore_index=True), check_dtype=False)
    best = frame[frame["role"].notna()].groupby(["image_id", "query", "verb_id"])["score"].max()
    got = agents.set_index(["image_id", "query", "verb_id"])["score"]
    pd.testing.assert_series_equal(got.sort_index(), best.sort_index(), check_dtype=False)  # max of the roles
    for a, b in zip(vcoco_pickle.to_detections(back), vcoco_pickle.to_detections(frame), strict=True):
        assert a.keys() == b.keys()  # the same pickle again
        assert all(np.allclose(np.asarray(a[k], float), np.asarray(b[k], float), equal_nan=True) for k in a)


def test_cli_exports(tmp_path: Path) -> None:
    from cli import app

    preds.write(hico_frame(), tmp_path / "hico.parquet")
    preds.write(vcoco_frame(), tmp_path / "vcoco.parquet")
    (tmp_path / "ids.txt").write_text("\n".join(IMAGES) + "\n")
    runner = CliRunner()
    r = runner.invoke(app, ["data", "export-hico-mat", str(tmp_path / "hico.parquet"), str(tmp_path / "mat"),
                            "--image-list", str(tmp_path / "ids.txt"), "--cap", "19999"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "mat/detections_80.mat").exists() and "rows_written" in r.output
    r = runner.invoke(app, ["data", "export-vcoco", str(tmp_path / "vcoco.parquet"), str(tmp_path / "v.pkl")])
    assert r.exit_code == 0, r.output
    assert len(pickle.loads((tmp_path / "v.pkl").read_bytes())) == 3


def test_cell_array_writer_reads_back_like_scipy_savemat(tmp_path: Path) -> None:
    from scipy.io import loadmat, savemat

    from pipeline.interop import mat_cells

    rng = np.random.default_rng(0)
    shape = (3, 5)
    cell = np.array([7, 0, 7, 14, 7, 5])  # row-major r * 5 + c: cells (1, 2) x3, (0, 0), (2, 4), (1, 0)
    values = rng.normal(size=(len(cell), 9))
    mat_cells.write_cell_array(tmp_path / "ours.mat", "all_boxes", shape, cell, values)
    expected = np.empty(shape, dtype=object)
    expected.fill(np.zeros((0, 0)))
    for (r, c) in {divmod(int(k), 5) for k in cell}:
        expected[r, c] = values[cell == r * 5 + c]  # rows of a cell in input order
    savemat(tmp_path / "scipy.mat", {"all_boxes": expected})
    ours, theirs = loadmat(tmp_path / "ours.mat")["all_boxes"], loadmat(tmp_path / "scipy.mat")["all_boxes"]
    assert ours.shape == theirs.shape == shape
    for r in range(3):
        for c in range(5):
            assert ours[r, c].size == theirs[r, c].size
            if theirs[r, c].size:
                np.testing.assert_array_equal(ours[r, c], theirs[r, c])
    assert ours[1, 2].shape == (3, 9)


def test_export_reports_progress_and_reads_back_on_a_longer_image_list(tmp_path: Path, capsys) -> None:
    ids = [f"HICO_test2015_{k:08d}" for k in range(1, 501)]  # 300,000 cells, a handful of detections
    counts = export_hico.export(hico_frame(), ids, tmp_path, progress=True)
    assert counts["images"] == 500 and len(list(tmp_path.glob("detections_*.mat"))) == 80
    assert "80/80 files written" in capsys.readouterr().out
    back = export_hico.read_mats(tmp_path, ids)
    assert len(back) == counts["rows_written"]
