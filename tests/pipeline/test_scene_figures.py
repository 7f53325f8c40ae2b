"""inspect's crowded-scene measures, publication figures and one-page report (issue 19)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli import app
from pipeline import scene_report, tables
from pipeline.scene_report import figures as scene_figures
from pipeline.scene_report.crowd import crowd_report
from tests.pipeline.test_scene_report import pairs_frame, scenes_frame


@pytest.fixture()
def paths(tmp_path: Path) -> list[str]:
    scenes, pairs = tmp_path / "scenes.parquet", tmp_path / "pairs.parquet"
    tables.write(scenes_frame(), "scenes", scenes)
    tables.write(pairs_frame(), "pairs", pairs)
    return ["inspect", "--scenes", str(scenes), "--pairs", str(pairs), "--params", str(tmp_path / "none.yaml")]


def test_crowd_measures_by_hand() -> None:
    """train crowded: c1 (2 persons, 2 pairs), c2 (4 persons, 3 pairs), every pair's subject is
    person 0 -> 2 of 6 persons interact; train sparse s1: its one person interacts."""
    df = scene_report.prepare(scenes_frame(), None)
    out = crowd_report(df, pairs_frame(), ["split"]).set_index(["split", "scene"])
    row = out.loc[("train", "crowded")]
    assert row[["images", "persons", "interactive_pairs", "interacting"]].tolist() == [2, 6, 5, 2]
    assert row["pairs_per_person"] == pytest.approx(5 / 6, abs=1e-4)
    assert row["persons_per_pair"] == pytest.approx(6 / 5, abs=1e-4)
    assert row["idle_share"] == pytest.approx(4 / 6, abs=1e-4)
    assert out.loc[("train", "sparse"), "idle_share"] == 0
    assert pd.isna(out.loc[("test", "sparse"), "persons_per_pair"])  # s2 and e: no interactive pair


def test_no_interaction_pairs_do_not_make_a_person_interact() -> None:
    pairs = pairs_frame()
    pairs.loc[pairs["hoi_id"] == 10, "verb_id"] = 58  # no_interaction
    df = scene_report.prepare(scenes_frame(), None)
    out = crowd_report(df, pairs, ["split"]).set_index(["split", "scene"])
    assert out.loc[("test", "crowded"), "interacting"] == 0


def test_report_all_out_writes_figures_tables_and_page(paths: list[str], tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(app, [*paths, "--report", "all", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "crowd: persons and interactive pairs per scene" in result.stdout
    stems = [m.column for m in scene_figures.MEASURES] + ["scene_report"]
    for stem in stems:
        assert (out / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
        assert b"<svg" in (out / f"{stem}.svg").read_bytes()[:2000]
        with Image.open(out / f"{stem}.png") as im:
            assert im.format == "PNG"
            if stem == "scene_report":  # A4 portrait at 200 dpi
                assert im.size == (1654, 2338)
            else:
                assert im.size == (1400, 560)
    for name in scene_report.REPORTS:
        assert len(pd.read_csv(out / f"{name}.csv")) > 0


def _legend_of(df: pd.DataFrame, column: str) -> list[str]:
    fig = scene_figures.new_figure((4, 3))
    ax = fig.subplots()
    m = next(x for x in scene_figures.MEASURES if x.column == column)
    scene_figures.draw_measure(ax, df, m, {"crowded_persons": 2}, scene_figures.bins(m, df[column].to_numpy(float)), "t")
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def test_no_legend_entry_for_an_empty_group() -> None:
    df = scene_report.prepare(scenes_frame(), None)
    assert _legend_of(df, "persons") == ["sparse (3)", "crowded (3)"]
    assert _legend_of(df[df["crowded"]], "persons") == ["crowded (3)"]


def test_threshold_line_where_the_rule_splits() -> None:
    """crowded <=> persons >= 2: the line lies between the 1 and 2 bins."""
    m = scene_figures.MEASURES[0]
    assert scene_figures.threshold(m, {"crowded_persons": 2}) == 1.5
    assert scene_figures.threshold(scene_figures.MEASURES[1], {"crowded_pairs": None}) is None
    area = next(x for x in scene_figures.MEASURES if x.column == "min_person_area")
    assert scene_figures.threshold(area, {"tiny_area": 0.01}) == 0.01


def test_printed_columns_have_one_number_of_decimals() -> None:
    text = scene_report.formatted(pd.DataFrame({"share": [0.39, 0.387, 0.387273], "n": [1, 2, 3]}))
    assert text["share"].tolist() == ["0.3900", "0.3870", "0.3873"] and text["n"].tolist() == ["1", "2", "3"]
    big = scene_report.formatted(pd.DataFrame({"mean": [12.5, 3.0, float("nan")]}))
    assert big["mean"].tolist() == ["12.50", "3.00", "–"]
