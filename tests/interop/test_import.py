"""``data import-preds``: QPIC/CDN/GEN-VLKT-style prediction files (JSON list, CDN's wrapped
Python repr, pickle), the paper's ``bst_result_binary.pkl`` and the V-COCO pickle, each written
here from known rows and imported back (round trips); malicious pickles are refused."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from model.common import labels
from pipeline.inputs import safe_pickle
from model.common.errors import UserError
from pipeline.interop import import_preds
from pipeline.interop import predictions as preds
from pipeline.interop.image_keys import KeyMap, pattern_map
from pipeline.interop.pyrepr import repr_to_json

LAB = labels.hico()
COCO_IDS = list(LAB.object_coco_ids)
VERB = {name: vid for vid, name in LAB.verb_names.items()}
NAMES = ["HICO_test2015_00000001.jpg", "HICO_test2015_00000002.jpg"]
# per image, per query: human box, object box, object COCO id, [(verb id, score)]
QUERIES = [
    [((1.5, 2.0, 30.0, 40.0), (10.0, 5.0, 60.0, 45.0), 2, [(VERB["ride"], 0.9), (VERB["hold"], 0.3)]),
     ((2.0, 2.0, 31.0, 41.0), (11.0, 6.0, 61.0, 46.0), 2, [(VERB["fly"], 0.1)])],  # fly-bicycle: no HOI class
    [((5.0, 5.0, 20.0, 35.0), (25.0, 5.0, 45.0, 38.0), 1, [(VERB["hug"], 0.8)])],
]


def qpic_entries(with_names: bool = True, numpy_values: bool = False) -> list[dict]:
    """QPIC's layout: Q subject boxes (label 0 = person), then Q object boxes; pair q = (q, Q + q)."""
    num = (lambda v: np.float32(v)) if numpy_values else float  # noqa: E731
    entries = []
    for name, queries in zip(NAMES, QUERIES, strict=True):
        q = len(queries)
        boxes = [{"bbox": [num(v) for v in h], "category_id": 0} for h, _, _, _ in queries]
        boxes += [{"bbox": [num(v) for v in o], "category_id": COCO_IDS.index(c)} for _, o, c, _ in queries]
        hois = [{"subject_id": i, "object_id": q + i, "category_id": v - 1, "score": num(s)}
                for i, (_, _, _, vs) in enumerate(queries) for v, s in vs]
        entries.append(({"filename": name} if with_names else {}) | {"predictions": boxes, "hoi_prediction": hois})
    return entries


def expected_rows() -> pd.DataFrame:
    rows = [(Path(n).stem, qi, *h, *o, c, v, LAB.hoi_id(v, c) or -1, s)
            for n, queries in zip(NAMES, QUERIES, strict=True)
            for qi, (h, o, c, vs) in enumerate(queries) for v, s in vs]
    cols = ["image_id", "query", *preds.HUMAN, *preds.OBJECT, "category_id", "verb_id", "hoi_id", "score"]
    return pd.DataFrame(rows, columns=cols)


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[expected_rows().columns].copy()
    out["hoi_id"] = out["hoi_id"].astype("Int64").fillna(-1).astype("int64")
    out = out.astype({"query": "int64", "category_id": "int64", "verb_id": "int64", "score": "float64"})
    out[list(preds.HUMAN + preds.OBJECT)] = out[list(preds.HUMAN + preds.OBJECT)].astype("float64")
    return out.sort_values(["image_id", "query", "verb_id"], ignore_index=True)


def test_qpic_json_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "preds.json"
    path.write_text(json.dumps(qpic_entries()))
    table = import_preds.run("qpic", path, tmp_path / "out.parquet", "hico-det")
    pd.testing.assert_frame_equal(comparable(table), comparable(expected_rows()), check_exact=False, rtol=1e-6)
    assert table["hoi_id"].isna().sum() == 1  # fly-bicycle is not a HICO-DET class
    assert len(preds.read(tmp_path / "out.parquet")) == 4


def test_cdn_repr_dump_and_pickle_give_the_same_table(tmp_path: Path) -> None:
    entries = qpic_entries(numpy_values=True)
    text = str({"preds": entries, "gts": []})
    assert "np.float32(" in text or "np.float32" not in repr(np.float32(1))  # numpy 2 spells scalars
    (tmp_path / "cdn.json").write_text(json.dumps(text))
    cdn = import_preds.qpic_table(import_preds.load_entries(tmp_path / "cdn.json"), "hico-det")
    (tmp_path / "preds.pkl").write_bytes(pickle.dumps(entries, protocol=2))
    pkl = import_preds.qpic_table(import_preds.load_entries(tmp_path / "preds.pkl"), "hico-det")
    for table in (cdn, pkl):
        pd.testing.assert_frame_equal(comparable(table), comparable(expected_rows()), check_exact=False, rtol=1e-6)


def test_entries_without_file_names_take_the_annotation_order(tmp_path: Path) -> None:
    table = import_preds.qpic_table(qpic_entries(with_names=False), "hico-det", names=NAMES)
    assert sorted(table["image_id"].unique()) == [Path(n).stem for n in NAMES]
    with pytest.raises(UserError, match="no 'filename'"):
        import_preds.qpic_table(qpic_entries(with_names=False), "hico-det")


def test_positional_names_need_one_entry_per_annotation_record() -> None:
    entries = qpic_entries(with_names=False)
    for extra in (entries + entries[:1], entries[:1]):  # one more / one less shifts every name
        with pytest.raises(UserError, match=f"{len(extra)} entries but the annotation file lists 2 images"):
            import_preds.qpic_table(extra, "hico-det", names=NAMES)
    named = qpic_entries(with_names=True)  # entries with their own names need no count
    assert len(import_preds.qpic_table(named + named[:1], "hico-det", names=NAMES)) > 0


def test_hoi_index_categories(tmp_path: Path) -> None:
    entries = qpic_entries()
    for e in entries:
        for h in e["hoi_prediction"]:
            obj = COCO_IDS[e["predictions"][h["object_id"]]["category_id"]]
            h["category_id"] = (LAB.hoi_id(h["category_id"] + 1, obj) or 1) - 1
    table = import_preds.qpic_table(entries, "hico-det", hoi_category="hoi")
    assert set(table["hoi_id"].dropna()) == {LAB.hoi_id(VERB["ride"], 2), LAB.hoi_id(VERB["hold"], 2),
                                             LAB.hoi_id(VERB["hug"], 1), 1}


def test_vcoco_qpic_entries() -> None:
    vc = labels.vcoco()
    entry = {"filename": "COCO_val2014_000000000042.jpg",
             "predictions": [{"bbox": [1, 2, 30, 40], "category_id": 0}, {"bbox": [0, 0, 0, 0], "category_id": 80},
                             {"bbox": [1, 2, 30, 40], "category_id": 0}, {"bbox": [5, 5, 9, 9], "category_id": 39}],
             "hoi_prediction": [
                 {"subject_id": 0, "object_id": 1, "category_id": vc.verb_role_index("stand", None), "score": 0.7},
                 {"subject_id": 2, "object_id": 3, "category_id": vc.verb_role_index("drink", "instr"), "score": 0.6}]}
    table = import_preds.qpic_table([entry], "v-coco")
    stand = table[table["verb_id"] == vc.action_id("stand")].iloc[0]
    assert pd.isna(stand["role"]) and np.isnan(stand["ox1"]) and pd.isna(stand["category_id"])
    drink = table[table["verb_id"] == vc.action_id("drink")].iloc[0]
    assert drink["role"] == "instr" and drink["category_id"] == COCO_IDS[39] and drink["query"] == 1


def bpm_result(n_per_image: tuple[int, ...], vcoco: bool = False) -> dict:
    rng = np.random.default_rng(0)
    keys = np.repeat(np.arange(1, len(n_per_image) + 1) * (42 if vcoco else 1), n_per_image)
    n = len(keys)
    out = {"keys": keys, "scores": rng.random(n), "bboxes": rng.random((n, 8)) * 100,
           **{f"scores_v{k}": rng.random(n) for k in range(6)}}
    if vcoco:
        out |= {"obj_labels": np.array([0, 80, 3][:n]), "obj_scores": rng.random(n)}
    return out


def test_bpm_binary_round_trip(tmp_path: Path) -> None:
    result = bpm_result((2, 3))
    path = tmp_path / "bst_result_binary.pkl"
    path.write_bytes(pickle.dumps(result, protocol=2))
    table = import_preds.run("bpm-binary", path, tmp_path / "pairs.parquet", "hico-det")
    assert table["image_id"].tolist() == ["HICO_test2015_00000001"] * 2 + ["HICO_test2015_00000002"] * 3
    assert table["query"].tolist() == [0, 1, 0, 1, 2]
    np.testing.assert_allclose(table[list(preds.HUMAN + preds.OBJECT)].to_numpy(), result["bboxes"], rtol=1e-6)
    np.testing.assert_allclose(table["interactiveness"], result["scores"], rtol=1e-6)
    parts = np.stack(preds.read(tmp_path / "pairs.parquet", "pair_predictions")["part_scores"].to_numpy())
    np.testing.assert_allclose(parts[:, 4], result["scores_v4"], rtol=1e-6)


def test_bpm_binary_vcoco_missing_object_class() -> None:
    table = import_preds.bpm_binary_table(bpm_result((3,), vcoco=True), pattern_map("v-coco", [42]), "v-coco", "t")
    assert table["image_id"].iloc[0] == "COCO_val2014_000000000042"
    assert np.isnan(table.loc[1, "ox1"]) and pd.isna(table.loc[1, "category_id"])
    assert table.loc[2, "category_id"] == COCO_IDS[3] and table.loc[0, "category_id"] == 1


def test_key_map_from_images_and_errors() -> None:
    keys = KeyMap(["COCO_train2014_000000000009", "COCO_val2014_000000000042"])
    assert keys.ids([42, 9]).tolist() == ["COCO_val2014_000000000042", "COCO_train2014_000000000009"]
    with pytest.raises(UserError, match="image key 7"):
        keys.ids([7])
    with pytest.raises(UserError, match="share the number"):
        KeyMap(["HICO_train2015_00000001", "HICO_test2015_00000001"])


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickles_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"keys": [1], "x": _Boom()}, protocol=2))
    for fmt in ("bpm-binary", "vcoco-pickle", "qpic"):
        with pytest.raises(safe_pickle.UnsafePickleError, match="refused"):
            import_preds.run(fmt, path, tmp_path / "o.parquet", "hico-det")


def test_repr_rewrite_is_not_evaluation() -> None:
    text = "{'filename': 'info_nan.jpg', 'x': [np.float32(0.5), np.int64(3), nan, -inf, None, True], " \
           "'a': array([1., 2.], dtype=float32)}"
    got = json.loads(repr_to_json(text))
    assert got["filename"] == "info_nan.jpg" and got["x"][:2] == [0.5, 3] and got["a"] == [1.0, 2.0]
    assert np.isnan(got["x"][2]) and got["x"][3] == -np.inf and got["x"][4:] == [None, True]
    with pytest.raises(UserError, match="not a recognised"):
        from pipeline.interop.pyrepr import loads_repr
        loads_repr("__import__('os').system('true')", "t")


def test_cli_import_preds(tmp_path: Path) -> None:
    from cli import app

    (tmp_path / "test_hico.json").write_text(json.dumps([{"file_name": n, "annotations": [], "hoi_annotation": []}
                                                          for n in NAMES]))
    (tmp_path / "preds.json").write_text(json.dumps(qpic_entries(with_names=False)))
    r = CliRunner().invoke(app, ["data", "import-preds", "qpic", str(tmp_path / "preds.json"),
                                 str(tmp_path / "p.parquet"),
                                 "--annotations", str(tmp_path / "test_hico.json")])
    assert r.exit_code == 0, r.output
    assert len(preds.read(tmp_path / "p.parquet")) == 4
