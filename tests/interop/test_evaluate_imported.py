"""``evaluate --predictions / --pair-predictions``: another method's tables scored with the stage's
evaluators on a small hand-built dataset (the evaluator tests' fixtures), beside the stage's own
metrics, without touching the stage's outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from cli import app
from metrics_fixtures import H, O, gt_tables, hoi, predictions, shift
from pipeline import tables
from pipeline.interop import predictions as preds

RIDE, HOLD = hoi("ride", "bicycle"), hoi("hold", "bicycle")
GT = [("a", H, O, RIDE), ("b", H, O, HOLD), ("c", shift(H, 100), O, RIDE)]
STAGE_METRICS = {"n_images": 4.0, "hico/default/full_map": 0.5, "hico/known_object/full_map": 0.25,
                 "interactiveness/ap": None, "interactiveness/part/hand/ap": 0.1}


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with params.yaml, data/processed tables and the stage's outputs."""
    monkeypatch.chdir(tmp_path)
    images, instances, pairs = gt_tables(GT, ["a", "b", "c", "d"])
    for name, frame in (("images", images), ("instances", instances), ("pairs", pairs)):
        tables.write(frame, name, tmp_path / "data" / "processed" / f"{name}.parquet")
    Path("params.yaml").write_text(yaml.safe_dump({"dataset": {"format": "hico-det", "root": str(tmp_path)},
                                                   "evaluate": {"split": "test"}}))
    (tmp_path / "reports" / "evaluate").mkdir(parents=True)
    Path("reports/metrics.json").write_text(json.dumps(STAGE_METRICS))
    Path("reports/evaluate/report.txt").write_text("the stage's report\n")
    return tmp_path


def ground_truth_predictions() -> pd.DataFrame:
    return predictions([(image, h, o, hid, 0.9 - 0.1 * k) for k, (image, h, o, hid) in enumerate(GT)])


def write_predictions(frame: pd.DataFrame, path: str) -> str:
    tables.write(frame, "predictions", Path(path))
    return path


def stage_outputs() -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(Path("reports").rglob("*")) if p.is_file()
            and "evaluate-imported" not in p.parts and "other" not in p.parts}


def evaluate(*args: str):
    return CliRunner().invoke(app, ["evaluate", *args])


def test_ground_truth_scores_one_beside_the_stage_and_leaves_its_outputs(workdir: Path) -> None:
    before = stage_outputs()
    r = evaluate("--predictions", write_predictions(ground_truth_predictions(), "theirs.parquet"))
    assert r.exit_code == 0, r.output
    got = json.loads(Path("reports/evaluate-imported/metrics.json").read_text())
    assert got["hico/default/full_map"] == 1.0 and got["hico/known_object/full_map"] == 1.0
    assert got["interactiveness/ap"] == 1.0  # the predictions' own interactiveness column
    assert stage_outputs() == before
    assert "HICO-DET mAP" in r.output and "side by side with reports/metrics.json" in r.output
    row = next(line for line in r.output.splitlines() if line.startswith("hico/default/full_map"))
    assert row.split() == ["hico/default/full_map", "50.00", "100.00", "+50.00"]
    table = pd.read_csv("reports/evaluate-imported/comparison.csv")
    assert list(table["metric"]) == ["hico/default/full_map", "hico/known_object/full_map", "interactiveness/ap"]
    assert Path("reports/evaluate-imported/report.txt").exists()
    assert Path("reports/evaluate-imported/curves/hico_default_pr.csv").exists()


def test_perturbed_predictions_score_lower_and_row_order_does_not_matter(workdir: Path) -> None:
    truth = ground_truth_predictions()
    shuffled = truth.sample(frac=1.0, random_state=1).reset_index(drop=True)
    r = evaluate("--predictions", write_predictions(shuffled, "shuffled.parquet"), "--out", "reports/other/shuffled")
    assert r.exit_code == 0, r.output
    assert json.loads(Path("reports/other/shuffled/metrics.json").read_text())["hico/default/full_map"] == 1.0
    moved = truth.copy()
    moved.loc[0, ["hx1", "hx2"]] += 200.0  # image a's ride pair misses its person
    moved = pd.concat([moved, predictions([("d", H, O, RIDE, 0.95)])], ignore_index=True)  # d has no GT
    r = evaluate("--predictions", write_predictions(moved, "moved.parquet"), "--out", "reports/other/moved")
    assert r.exit_code == 0, r.output
    worse = json.loads(Path("reports/other/moved/metrics.json").read_text())
    assert worse["hico/default/full_map"] < 1.0


def test_pair_predictions_alone_give_interactiveness_ap(workdir: Path) -> None:
    rows = [(image, h, o) for image, h, o, _ in GT] + [("d", H, O)]
    cols = {"image_id": np.array([r[0] for r in rows], dtype=object), "query": np.zeros(len(rows), np.int32),
            **{c: np.array([r[1][k] for r in rows], np.float32) for k, c in enumerate(preds.HUMAN)},
            **{c: np.array([r[2][k] for r in rows], np.float32) for k, c in enumerate(preds.OBJECT)},
            "interactiveness": np.array([0.9, 0.8, 0.7, 0.1], np.float32),
            "part_scores": list(np.full((len(rows), 6), 0.5, np.float32))}
    tables.write(preds.conform(cols, "pair_predictions"), "pair_predictions", Path("pairs.parquet"))
    r = evaluate("--pair-predictions", "pairs.parquet")
    assert r.exit_code == 0, r.output
    got = json.loads(Path("reports/evaluate-imported/metrics.json").read_text())
    assert got["interactiveness/ap"] == 1.0 and not any(k.startswith("hico/") for k in got)


def test_bad_files_and_stage_folders_are_one_line_errors(workdir: Path) -> None:
    bad = evaluate("--predictions", "data/processed/pairs.parquet")  # a table of another schema
    assert bad.exit_code == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: data/processed/pairs.parquet: column ")
    assert "import-preds" in lines[0] and not Path("reports/evaluate-imported").exists()
    good = write_predictions(ground_truth_predictions(), "theirs.parquet")
    for out in ("reports/evaluate", "reports"):
        r = evaluate("--predictions", good, "--out", out)
        assert r.exit_code == 2 and "the evaluate stage writes there" in r.stderr
    other = ground_truth_predictions().assign(image_id="HICO_test2015_00000001")
    r = evaluate("--predictions", write_predictions(other, "keys.parquet"))
    assert r.exit_code == 2 and "none of its 3 rows is on a 'test' image" in r.stderr
    assert json.loads(Path("reports/metrics.json").read_text()) == STAGE_METRICS


def test_without_the_new_options_the_stage_runs_as_before(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import evaluate as stage

    calls = []
    monkeypatch.setattr(stage, "run", lambda *a: calls.append(a))
    assert evaluate().exit_code == 0
    assert calls == [(Path("params.yaml"), Path("models/bundle.pt"), Path("data/processed"),
                      Path("reports/evaluate"), Path("reports/metrics.json"))]


def test_a_test_only_dataset_end_to_end_without_training_stages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dataset.splits: [test] -> ingest -> scenes (no pose output) -> evaluate --predictions."""
    from test_ingest import HICO_TEST, make_hico

    monkeypatch.chdir(tmp_path)
    root = make_hico(tmp_path / "hico")
    (root / "annotations" / "trainval_hico.json").unlink()  # only the test split was downloaded
    Path("params.yaml").write_text(yaml.safe_dump({"dataset": {"format": "hico-det", "root": str(root),
                                                               "splits": ["test"]}}))
    r = CliRunner().invoke(app, ["ingest"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["scenes"])
    assert r.exit_code == 0 and "occlusion from keypoints unavailable" in r.output, r.output
    rec = HICO_TEST[0]
    h, o = rec["annotations"][0]["bbox"], rec["annotations"][1]["bbox"]
    fly_airplane = hoi("fly", "airplane")
    write_predictions(predictions([("HICO_test2015_00000001", tuple(h), tuple(o), fly_airplane, 0.9)]), "p.parquet")
    r = evaluate("--predictions", "p.parquet")
    assert r.exit_code == 0, r.output
    metrics = json.loads(Path("reports/evaluate-imported/metrics.json").read_text())
    assert metrics["n_images"] == 2.0  # both files of images/test2015, annotated or not
    assert metrics["hico/default/full_map"] == 1.0 and metrics["hico/known_object/full_map"] == 1.0
