"""Fuzz-style tests (bounded: few examples, no deadline) over every entry point that reads a
user file: annotations (ingest), pose results (COCO / AlphaPose JSON, official pickles),
predictions (import), pickles, checkpoints and bundles, images, params.

The contract checked on every malformed variant: the reader either succeeds, with every input
record accounted for (kept, or skipped and counted), or raises a UserError of ONE line that
names the file; never another exception (a traceback), never a partial output file, never a
value silently changed."""

from __future__ import annotations

import copy
import io
import json
import math
import pickle
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from pipeline.inputs import safe_pickle
from model.common.errors import UserError

FUZZ = settings(max_examples=20, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# JSON leaves a careless or hostile file may hold where a number or a name belongs
ODD = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                st.text(max_size=8), st.just("a\nerror: fake"), st.lists(st.integers(), max_size=3),
                st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def assert_contract(exc: UserError, name: str) -> None:
    message = str(exc)
    assert "\n" not in message and "\r" not in message, message
    assert name in message, (name, message)


def mutate(obj: object, data: st.DataObject) -> object:
    """Replace one randomly chosen leaf (or container) of a JSON-like object by an odd value."""
    paths: list[tuple] = []

    def walk(o: object, path: tuple) -> None:
        paths.append(path)
        if isinstance(o, dict):
            for k, v in o.items():
                walk(v, (*path, k))
        elif isinstance(o, list):
            for i, v in enumerate(o):
                walk(v, (*path, i))

    walk(obj, ())
    target = data.draw(st.sampled_from(paths[1:]))
    out = copy.deepcopy(obj)
    parent = out
    for key in target[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[target[-1]]
    else:
        parent[target[-1]] = data.draw(ODD)
    return out


def byte_variants() -> st.SearchStrategy:
    """(kind, position fraction, byte) of a byte-level corruption."""
    return st.tuples(st.sampled_from(["truncate", "flip", "insert", "zero"]), st.floats(0, 1), st.integers(0, 255))


def corrupt(data: bytes, how: tuple) -> bytes:
    kind, where, value = how
    i = min(int(where * len(data)), len(data) - 1)
    if kind == "truncate":
        return data[:i]
    if kind == "flip":
        return data[:i] + bytes([data[i] ^ (value or 1)]) + data[i + 1:]
    if kind == "insert":
        return data[:i] + bytes([value]) + data[i:]
    return b""


def write_json(folder: Path, name: str, obj: object) -> Path:
    path = folder / name
    path.write_text(json.dumps(obj, allow_nan=True))
    return path


# ----------------------------------------------------------------------------- annotations


@FUZZ
@given(data=st.data())
def test_ingest_on_mutated_annotations(data: st.DataObject) -> None:
    from pipeline.ingest import IngestConfig, ingest
    from pipeline.params import DatasetConfig
    from tests.pipeline.test_ingest import HICO_TEST, HICO_TRAIN, make_hico

    with tempfile.TemporaryDirectory() as tmp:
        train = mutate(HICO_TRAIN, data)
        root = make_hico(Path(tmp) / "hico", train=train)
        try:
            res = ingest(DatasetConfig(root=root), IngestConfig(on_unknown_id="skip", on_missing_image="skip"))
        except UserError as exc:
            assert_contract(exc, "trainval_hico.json")
            return
        s = res.summary
        assert s["train_pairs_read"] == s["train_pairs_written"] + sum(
            v for k, v in s.items() if k.startswith("train_pairs_skipped_"))
        assert len(res.images.query("split == 'test'")) == s["test_images_written"] and len(HICO_TEST)


# ----------------------------------------------------------------------------- pose results


IDS = ["HICO_test2015_00000001", "HICO_test2015_00000002"]
IMAGES = pd.DataFrame({"image_id": IDS, "split": "test", "file": [f"images/{i}.jpg" for i in IDS],
                       "width": np.int32(320), "height": np.int32(240), "annotated": True})
KP = np.c_[np.linspace(10, 90, 17), np.linspace(20, 200, 17), np.full(17, 0.8)].reshape(-1).tolist()
ENTRIES = [{"image_id": 1, "category_id": 1, "keypoints": KP, "score": 0.9, "bbox": [5, 6, 100, 150]},
           {"image_id": 2, "category_id": 1, "keypoints": KP, "score": 0.4}]
DROPS = ("bad record", "skipped", "dropped")


@FUZZ
@given(data=st.data())
def test_coco_pose_reader_on_mutated_files(data: st.DataObject) -> None:
    from pipeline.pose_backends import coco

    entries = mutate(ENTRIES, data)
    with tempfile.TemporaryDirectory() as tmp:
        write_json(Path(tmp), "r.json", entries)
        cfg = coco.CocoConfig.model_validate({"files": [{"path": "r.json", "split": "test"}]})
        counts: Counter = Counter()
        try:
            persons = coco.read(IMAGES, Path(tmp), cfg, counts)
        except UserError as exc:
            assert_contract(exc, "r.json")
            return
    n = len(entries) if isinstance(entries, list) else 0
    assert len(persons) + sum(v for k, v in counts.items() if k.startswith(DROPS)) == n, counts
    given_scores = {float(e["score"]) for e in entries if isinstance(e, dict) and isinstance(e.get("score"), (int, float))
                    and not isinstance(e.get("score"), bool) and abs(e["score"]) < 1e300}
    for score in persons["score"]:  # a kept score is the file's (clipped only when counted)
        assert 0 <= score <= 1 and (any(math.isclose(score, min(max(g, 0), 1), rel_tol=1e-6) for g in given_scores))
    clipped = sum(1 for g in given_scores if not 0 <= g <= 1)
    assert counts["detection score outside [0, 1]: clipped"] <= clipped * len(entries)


@FUZZ
@given(how=byte_variants())
def test_alphapose_reader_on_corrupted_bytes(how: tuple) -> None:
    from pipeline.pose_backends import alphapose

    entries = [{**e, "image_id": f"{IDS[i]}.jpg", "box": [5, 6, 50, 60]} for i, e in enumerate(ENTRIES)]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "a.json").write_bytes(corrupt(json.dumps(entries).encode(), how))
        counts: Counter = Counter()
        try:
            persons = alphapose.read(IMAGES, Path(tmp), alphapose.AlphaPoseConfig(results=Path("a.json")), counts)
        except UserError as exc:
            assert_contract(exc, "a.json")
            return
    assert len(persons) + sum(v for k, v in counts.items() if k.startswith(DROPS)) <= len(entries) + 1


@FUZZ
@given(data=st.data())
def test_official_pickle_reader_on_mutated_files(data: st.DataObject) -> None:
    from pipeline.pose_backends import official

    boxes = [[10.0 + i, 20.0, 30.0 + i, 40.0] for i in range(10)]
    raw = {1: [boxes], 2: [boxes]}
    mutated = mutate(raw, data)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p.pkl").write_bytes(pickle.dumps(mutated, protocol=2))
        cfg = official.OfficialConfig.model_validate({"files": [{"path": "p.pkl", "split": "test", "format": "hico-train"}]})
        counts: Counter = Counter()
        try:
            persons = official.read(IMAGES, Path(tmp), cfg, counts)
        except UserError as exc:
            assert_contract(exc, "p.pkl")
            return
    assert len(persons) <= 2


# ----------------------------------------------------------------------------- pickles, predictions


@FUZZ
@given(how=byte_variants(), protocol=st.sampled_from([2, 4, 5]))
def test_restricted_unpickler_on_corrupted_bytes(how: tuple, protocol: int) -> None:
    value = {"a": [1, 2.5, None], 3: np.arange(6.0).reshape(2, 3), "b": b"\x00\xff", "s": {1, 2}}
    blob = corrupt(pickle.dumps(value, protocol=protocol), how)
    try:
        safe_pickle.loads(blob, "f.pkl")
    except UserError as exc:
        assert_contract(exc, "f.pkl")


@FUZZ
@given(data=st.data())
def test_import_preds_on_mutated_files(data: st.DataObject) -> None:
    from pipeline.interop import import_preds

    entries = [{"file_name": "HICO_test2015_00000001.jpg",
                "predictions": [{"bbox": [1, 2, 30, 40], "category_id": 1}, {"bbox": [5, 6, 50, 60], "category_id": 2}],
                "hoi_prediction": [{"subject_id": 0, "object_id": 1, "category_id": 3, "score": 0.5}]}]
    with tempfile.TemporaryDirectory() as tmp:
        source = write_json(Path(tmp), "preds.json", mutate(entries, data))
        out = Path(tmp) / "out.parquet"
        try:
            import_preds.run("qpic", source, out, "hico-det")
        except UserError as exc:
            assert_contract(exc, "preds.json")
            assert not out.exists()


# ----------------------------------------------------------------------------- torch files


def _checkpoint_bytes() -> tuple[bytes, dict]:
    from model import checkpoint as ckpt_io

    ref = {"format": ckpt_io.FORMAT, "stage": 1, "model": {"w": torch.arange(16, dtype=torch.float32)}}
    buf = io.BytesIO()
    torch.save(ref, buf)
    return buf.getvalue(), ref


def test_no_single_bit_flip_changes_a_checkpoint_silently(tmp_path: Path) -> None:
    from model import checkpoint as ckpt_io

    blob, ref = _checkpoint_bytes()
    path = tmp_path / "c.pt"
    outcomes = Counter()
    for i in range(len(blob)):
        path.write_bytes(blob[:i] + bytes([blob[i] ^ 0x10]) + blob[i + 1:])
        try:
            ck = ckpt_io.load(path)
        except UserError as exc:
            assert_contract(exc, "c.pt")
            outcomes["refused"] += 1
            continue
        assert ck.keys() == ref.keys() and torch.equal(ck["model"]["w"], ref["model"]["w"]), i
        outcomes["same"] += 1
    assert outcomes["refused"] > len(blob) // 3


@FUZZ
@given(how=byte_variants())
def test_bundle_loader_on_corrupted_bytes(how: tuple) -> None:
    from model.bundle_file import load_bundle

    blob, _ = _checkpoint_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bundle.pt"
        path.write_bytes(corrupt(blob, how))
        with pytest.raises(UserError) as info:  # not a bundle even when intact: never loads
            load_bundle(path)
        assert_contract(info.value, "bundle.pt")


# ----------------------------------------------------------------------------- images, params


@FUZZ
@given(how=byte_variants(), fmt=st.sampled_from(["JPEG", "PNG"]))
def test_image_probe_and_predict_loader_on_corrupted_bytes(how: tuple, fmt: str) -> None:
    from pipeline.inputs.images import ImageError, Source, load_image
    from pipeline.readers.image_check import probe

    buf = io.BytesIO()
    Image.effect_noise((48, 32), 40).convert("RGB").save(buf, fmt)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x.{fmt.lower()}"
        path.write_bytes(corrupt(buf.getvalue(), how))
        width, height, error = probe(path, decode=True)
        assert (error is None) == (width > 0) and (error is None or "\n" not in error)
        try:
            loaded = load_image(Source("x", path), 2048)
        except ImageError as exc:
            assert "\n" not in str(exc) and "x." in str(exc)
            return
        assert loaded.image.size[0] > 0


@FUZZ
@given(how=byte_variants())
def test_params_reader_on_corrupted_bytes(how: tuple) -> None:
    from pipeline.params import section
    from pipeline.parts import PartsConfig

    text = b"parts:\n  score_threshold: 0.2\n  group_threshold: 0.2\n  part_size: [1.2, 1, 1, 1.2, 1.2, 1.2, 0.9, 1, 1, 0.9]\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "params.yaml"
        path.write_bytes(corrupt(text, how))
        try:
            cfg = section("parts", PartsConfig, path)
        except UserError as exc:
            assert_contract(exc, "params.yaml")
            return
        assert len(cfg.part_size) == 10


def test_cli_answers_every_broken_file_with_one_line(tmp_path: Path) -> None:
    """The CLI level: exit 2 and one 'error:' line naming the file, no output written."""
    from cli import app

    runner = CliRunner()
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    params = tmp_path / "params.yaml"
    params.write_bytes(b"\xff\xfe: [")
    cases = [
        (["data", "import-preds", "qpic", str(deep), str(tmp_path / "o.parquet"), "--dataset", "hico-det"],
         "deep.json", tmp_path / "o.parquet"),
        (["parts", "--params", str(params), "--out", str(tmp_path / "p.parquet")], "params.yaml", tmp_path / "p.parquet"),
    ]
    for args, name, output in cases:
        r = runner.invoke(app, args)
        lines = r.stderr.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and name in lines[0], (args, r.output)
        assert not output.exists()
