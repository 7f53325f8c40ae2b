"""The pose and parts stages through the CLI (typer CliRunner): params, files written, reports,
one-line user errors, and non-zero ranks of the file backends."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from typer.testing import CliRunner

from cli import app
from pipeline import tables

runner = CliRunner()


def setup(tmp_path, backend: str = "alphapose"):
    root = tmp_path / "dataset"
    root.mkdir()
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "dataset": {"name": "t", "format": "hico-det", "root": str(root)},
        "pose": {"backend": backend}, "parts": {"score_threshold": 0.2},
    }))
    images = pd.DataFrame({
        "image_id": ["HICO_test2015_00000001", "HICO_test2015_00000002"], "split": "test",
        "file": ["images/test2015/HICO_test2015_00000001.jpg", "images/test2015/HICO_test2015_00000002.jpg"],
        "width": np.int32(640), "height": np.int32(480), "annotated": True,
    })
    tables.write(images, "images", tmp_path / "images.parquet")
    rng = np.random.default_rng(0)
    entries = []
    for _ in range(3):
        kp = np.column_stack([rng.uniform(100, 400, 17), rng.uniform(50, 400, 17), rng.uniform(0, 1, 17)])
        entries.append({"image_id": "HICO_test2015_00000001.jpg", "category_id": 1,
                        "keypoints": kp.reshape(-1).tolist(), "score": 2.0})
    (root / "alphapose-results.json").write_text(json.dumps(entries))
    return params


def opts(tmp_path) -> list[str]:
    return ["--params", str(tmp_path / "params.yaml"), "--images", str(tmp_path / "images.parquet")]


def test_pose_then_parts_cli(tmp_path) -> None:
    setup(tmp_path)
    result = runner.invoke(app, ["pose", *opts(tmp_path), "--out", str(tmp_path / "persons.parquet"),
                                 "--shards", str(tmp_path / "shards"), "--report", str(tmp_path / "pose.json")])
    assert result.exit_code == 0, result.output
    assert "3 persons" in result.output
    persons = tables.read(tmp_path / "persons.parquet", "persons")
    assert len(persons) == 3 and not (tmp_path / "shards").exists()  # file backends write no shards
    # the alphapose backend has no part boxes: null in every row, which pyarrow releases without
    # the fix of apache/arrow#35692 cannot read back from a fixed-size list column
    assert persons["part_boxes"].isna().all()
    stored = pq.read_schema(tmp_path / "persons.parquet")
    assert not any(pa.types.is_fixed_size_list(f.type) for f in stored)
    report = json.loads((tmp_path / "pose.json").read_text())
    assert report["persons"] == 3 and report["images_with_persons"] == 1 and report["layout_coco17"] == 3

    result = runner.invoke(app, ["parts", "--params", str(tmp_path / "params.yaml"),
                                 "--persons", str(tmp_path / "persons.parquet"),
                                 "--images", str(tmp_path / "images.parquet"),
                                 "--out", str(tmp_path / "parts.parquet"), "--report", str(tmp_path / "parts.json")])
    assert result.exit_code == 0, result.output
    parts = tables.read(tmp_path / "parts.parquet", "parts")
    assert len(parts) == 30
    assert json.loads((tmp_path / "parts.json").read_text())["parts"] == 30


def test_user_errors_are_one_line(tmp_path) -> None:
    setup(tmp_path, backend="coco")  # no coco result file
    result = runner.invoke(app, ["pose", *opts(tmp_path), "--out", str(tmp_path / "p.parquet"),
                                 "--shards", str(tmp_path / "s"), "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 2
    assert "coco-keypoint-results.json: pose result file not found" in result.output
    (tmp_path / "params.yaml").write_text("pose:\n  backend: openpose\n")
    result = runner.invoke(app, ["pose", *opts(tmp_path)])
    assert result.exit_code == 2 and "pose.backend" in result.output


def test_non_zero_rank_leaves_file_backends_to_rank_zero(tmp_path, monkeypatch) -> None:
    setup(tmp_path)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = runner.invoke(app, ["pose", *opts(tmp_path), "--out", str(tmp_path / "p.parquet"),
                                 "--shards", str(tmp_path / "s"), "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "p.parquet").exists()
