"""predict's filters, run folders, pose-file reporting, warnings and run log, through the CLI
(issue 19). The bundle is the tiny untrained one of test_predict: its scores are arbitrary but
deterministic, which is all a filter test needs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from pipeline.predict.render import names
from tests.pipeline.test_predict import BOX, figure, make_bundle, pose_entry


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundle") / "bundle.pt")


@pytest.fixture()
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    """Two images with one person each, a pose file for them plus two entries of an image that
    is not an input."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        figure((96, 128), BOX).save(folder / name)
    pose = tmp_path / "pose.json"
    pose.write_text(json.dumps([pose_entry("a.png", BOX), pose_entry("b.png", BOX),
                                pose_entry("stranger.png", BOX), pose_entry("stranger.png", BOX)]))
    return folder, pose


def predict(bundle: Path, inputs: tuple[Path, Path], out: Path, *extra: str):
    folder, pose = inputs
    args = ["predict", str(folder), "--checkpoint", str(bundle), "--out", str(out), "--device", "cpu",
            "--pose-backend", "alphapose-file", "--pose-file", str(pose), "--params", str(out.parent / "none.yaml"),
            *extra]
    return CliRunner().invoke(app, args)


def table(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "predictions.parquet")


def test_conf_and_name_filters_apply_to_files_and_drawings(tmp_path, bundle, inputs) -> None:
    full = predict(bundle, inputs, tmp_path / "all")
    assert full.exit_code == 0, full.output
    every = table(tmp_path / "all")
    assert len(every) > 4
    cut = float(every["score"].median())
    high = predict(bundle, inputs, tmp_path / "high", "--conf", f"{cut}")
    assert high.exit_code == 0, high.output
    kept = table(tmp_path / "high")
    assert 0 < len(kept) < len(every) and (kept["score"] >= cut).all()
    assert len(kept) == int((every["score"] >= cut).sum())
    verbs, objects = names(every, "hico-det")
    verb, obj = verbs[0], objects[0]
    only = predict(bundle, inputs, tmp_path / "only", "--verb", verb.replace(" ", "_"), "--object", obj)
    assert only.exit_code == 0, only.output
    got = table(tmp_path / "only")
    v2, o2 = names(got, "hico-det")
    assert len(got) == sum(v == verb and o == obj for v, o in zip(verbs, objects))
    assert set(v2) == {verb} and set(o2) == {obj}
    doc = json.loads((tmp_path / "only" / "predictions.json").read_text())
    assert doc["filters"]["verbs"] == [verb.replace(" ", "_")]
    assert sum(len(e["detections"]) for e in doc["images"]) == len(got)


def test_unknown_verb_is_one_line_error(tmp_path, bundle, inputs) -> None:
    result = predict(bundle, inputs, tmp_path / "out", "--verb", "juggle")
    assert result.exit_code == 2 and "--verb juggle: not a verb of this hico-det bundle" in result.output


def test_conf_out_of_range_refused(tmp_path, bundle, inputs) -> None:
    assert predict(bundle, inputs, tmp_path / "out", "--conf", "1.5").exit_code == 2


def test_each_run_gets_a_fresh_numbered_folder(tmp_path, bundle, inputs) -> None:
    out = tmp_path / "predict"
    for _ in range(3):
        assert predict(bundle, inputs, out).exit_code == 0
    assert [p.name for p in sorted(tmp_path.glob("predict*"))] == ["predict", "predict2", "predict3"]
    fourth = predict(bundle, inputs, out).output
    assert str(tmp_path / "predict4") in fourth.replace("\n", "")
    assert sorted(p.name for p in (out / "images").iterdir()) == ["a.png", "b.png"]


def test_exist_ok_replaces_only_what_predict_owns(tmp_path, bundle, inputs) -> None:
    out = tmp_path / "predict"
    assert predict(bundle, inputs, out).exit_code == 0
    (out / "images" / "old.png").write_bytes(b"x")  # a drawing of an earlier run
    (out / "notes.txt").write_text("mine")  # not predict's
    result = predict(bundle, inputs, out, "--exist-ok")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "predict2").exists()
    assert sorted(p.name for p in (out / "images").iterdir()) == ["a.png", "b.png"]
    assert (out / "notes.txt").read_text() == "mine"


def test_unmatched_pose_entries_counted_on_console(tmp_path, bundle, inputs) -> None:
    result = predict(bundle, inputs, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "unmatched: pose-file entries matching no input: 2" in result.output
    summary = json.loads((tmp_path / "out" / "predictions.json").read_text())["summary"]
    assert summary["pose"]["unmatched: pose-file entries matching no input"] == 2 and summary["no_person"] == 0


def test_run_log_lists_reads_writes_and_skips(tmp_path, bundle, inputs) -> None:
    assert predict(bundle, inputs, tmp_path / "out").exit_code == 0
    log = (tmp_path / "out" / "predict.log").read_text().splitlines()
    assert "command: " in log[0] and "predict" in log[0]
    text = "\n".join(log)
    assert f"wrote {tmp_path / 'out' / 'predictions.parquet'}" in text
    assert "images/a.png" in text and "unmatched: pose-file entries matching no input = 2" in text
    assert " done in " in log[-1]


def test_yaml_pose_model_warns_loudly(tmp_path, bundle, inputs) -> None:
    folder, _ = inputs
    result = CliRunner().invoke(app, ["predict", str(folder / "a.png"), "--checkpoint", str(bundle), "--out",
                                      str(tmp_path / "out"), "--device", "cpu", "--pose-weights", "yolo11n-pose.yaml",
                                      "--params", str(tmp_path / "none.yaml")])
    assert result.exit_code == 0, result.output
    assert "UNTRAINED (random weights)" in result.output


def test_offline_default_backend_names_the_file_backends(tmp_path, bundle, inputs, monkeypatch) -> None:
    folder, _ = inputs
    monkeypatch.chdir(tmp_path)  # models/pose/ absent here: the official name would need a download
    result = CliRunner().invoke(app, ["predict", str(folder / "a.png"), "--checkpoint", str(bundle), "--device",
                                      "cpu", "--pose-weights", str(tmp_path / "absent-pose.pt"), "--params", "none.yaml"])
    assert result.exit_code == 2
    assert "--pose-backend alphapose-file | coco-file | persons-table --pose-file PATH" in result.output
