"""The command line as a new user meets it (issue 19): grouped, ordered help with examples,
--version, -q / -v, help texts not eaten as markup, choices checked, a log per stage run."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import cli
from cli import app
from model.common import progress
from pipeline import tables

RUNNER = CliRunner()


def help_of(*args: str) -> str:
    result = RUNNER.invoke(app, [*args, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_commands_grouped_in_pipeline_order() -> None:
    text = help_of()
    panels = [text.index(p) for p in (cli.STAGES, cli.ANALYSIS, cli.TOOLS)]
    assert panels == sorted(panels)
    stages = text[panels[0]:panels[1]]
    found = [m for m in re.findall(r"│ (\w+)\s", stages)]
    assert found == ["synth", "ingest", "pose", "parts", "scenes", "train", "bundle", "evaluate"]
    tools = text[panels[2]:]
    assert "data" in tools and "weights" in tools


def _commands():
    for info in app.registered_commands:
        yield [info.name or info.callback.__name__]
    for group in app.registered_groups:
        for info in group.typer_instance.registered_commands:
            yield [group.name, info.name]


@pytest.mark.parametrize("command", list(_commands()), ids=lambda c: " ".join(c))
def test_every_command_has_an_example(command: list[str]) -> None:
    text = help_of(*command)
    assert re.search(r"Examples?:", text), text
    assert "python cli.py" in text or "dvc " in text or "torchrun" in text


def test_brackets_in_help_are_printed() -> None:
    assert "N x 9 [human box, object box, score]" in help_of("data", "export-hico-mat")


def test_version() -> None:
    result = RUNNER.invoke(app, ["--version"])
    assert result.exit_code == 0 and re.fullmatch(r"bpm-hoi \d+\.\d+\.\d+\n", result.output)


def test_quiet_and_verbose_set_the_level(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    missing = ["inspect", "--scenes", str(tmp_path / "none.parquet")]
    quiet = RUNNER.invoke(app, ["-q", *missing])
    assert quiet.exit_code == 2 and progress.quiet() and progress.bar(range(3)).disable
    verbose = RUNNER.invoke(app, ["-v", *missing])
    assert verbose.exit_code == 2 and progress.verbose()
    assert "Traceback" in verbose.output and "error: " in verbose.output
    normal = RUNNER.invoke(app, missing)
    assert "Traceback" not in normal.output and not progress.quiet()
    import os

    assert "TQDM_DISABLE" not in os.environ


@pytest.mark.parametrize("args", [
    ["show", "x", "--split", "val"],
    ["data", "fetch", "--dataset", "coco"],
    ["data", "import-preds", "qpic", "a.json", "b.parquet", "--hoi-category", "triplet"],
    ["inspect", "--report", "everything"],
])
def test_choices_are_checked(args: list[str]) -> None:
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 2 and "Invalid value" in result.output


def write_parts_inputs(root: Path) -> list[str]:
    """A persons table (one person with keypoints, one without), its images table, params."""
    kp = np.zeros(51, np.float32)
    kp[0::3], kp[1::3], kp[2::3] = np.linspace(10, 50, 17), np.linspace(10, 90, 17), 0.9
    persons = pd.DataFrame({"image_id": ["a", "a"], "person": [0, 1], "x1": [5.0, 1.0], "y1": [5.0, 1.0],
                            "x2": [60.0, 20.0], "y2": [95.0, 30.0], "score": [0.9, 0.8],
                            "keypoints": [kp, None], "part_boxes": [None, None], "backend": ["test", "test"]})
    persons.to_parquet(root / "persons.parquet")  # plain pandas: large_string, int64, double
    tables.write(pd.DataFrame({"image_id": ["a"], "split": ["train"], "file": ["a.jpg"], "width": [64],
                               "height": [100], "annotated": [True]}), "images", root / "images.parquet")
    (root / "params.yaml").write_text("parts: {}\n")
    return ["parts", "--params", str(root / "params.yaml"), "--persons", str(root / "persons.parquet"),
            "--images", str(root / "images.parquet"), "--out", str(root / "parts.parquet"),
            "--report", str(root / "reports" / "parts.json")]


def test_stage_run_writes_its_log(tmp_path: Path) -> None:
    result = RUNNER.invoke(app, write_parts_inputs(tmp_path))
    assert result.exit_code == 0, result.output
    log = (tmp_path / "reports" / "logs" / "parts.log").read_text()
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} +\+ *\d+\.\d\ds  command: ", log)
    assert f"read {tmp_path / 'persons.parquet'} (2 rows, table persons)" in log
    assert f"wrote {tmp_path / 'parts.parquet'}" in log and f"wrote {tmp_path / 'reports' / 'parts.json'}" in log
    assert log.rstrip().splitlines()[-1].endswith(" s") and "done in" in log


def test_failed_stage_run_logs_the_error(tmp_path: Path) -> None:
    args = write_parts_inputs(tmp_path)
    (tmp_path / "images.parquet").unlink()
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 2
    last = (tmp_path / "reports" / "logs" / "parts.log").read_text().rstrip().splitlines()[-1]
    assert "failed after" in last and "images.parquet: file not found" in last
