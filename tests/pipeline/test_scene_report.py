"""The ``inspect`` command: each report and option through the CLI, and its one-line errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from pipeline import scene_report, tables


def scenes_frame() -> pd.DataFrame:
    """Six images: train s1 (sparse, tiny), c1 and c2 (crowded, c2 occluded); test s2 (sparse),
    c3 (crowded, tiny), e (unannotated)."""
    rows = [  # image_id, split, persons, interactive pairs, crowded, tiny, occluded
        ("s1", "train", 1, 1, False, True, False),
        ("c1", "train", 2, 2, True, False, False),
        ("c2", "train", 4, 3, True, False, True),
        ("s2", "test", 1, 0, False, False, False),
        ("c3", "test", 3, 1, True, True, False),
        ("e", "test", 0, 0, False, False, False),
    ]
    df = pd.DataFrame(rows, columns=["image_id", "split", "persons", "interactive_pairs",
                                     "crowded", "tiny", "occluded"])
    persons = df["persons"]
    return df.assign(
        person_boxes=persons, pose_persons=persons, matched_pose=persons, pairs=df["interactive_pairs"],
        min_person_area=(0.005 + 0.1 * persons).where(persons > 0),
        median_person_area=(0.01 + 0.1 * persons).where(persons > 0),
        max_person_iou=(0.1 * persons).where(persons > 1),
        max_person_cover=(0.15 * persons).where(persons > 1),
        low_conf_keypoints=0.2, part_fallback=0.1,
        sample_weight=(1 + 2 * (df["crowded"] & (df["split"] == "train"))).astype(float),
    )


def pairs_frame() -> pd.DataFrame:
    """HICO-DET pair rows: HOI 1 (board airplane) 3x in crowded images, 1x in sparse s1;
    HOI 2 (direct airplane) 1x in c1; HOI 10 (no_interaction airplane) 1x in c3."""
    rows = [("c1", 1), ("c1", 1), ("c2", 1), ("s1", 1), ("c1", 2), ("c3", 10)]
    return pd.DataFrame({"image_id": [r[0] for r in rows], "subject": 0, "object": 1,
                         "verb_id": 1, "hoi_id": [r[1] for r in rows], "role": None})


@pytest.fixture()
def paths(tmp_path: Path) -> list[str]:
    scenes, pairs = tmp_path / "scenes.parquet", tmp_path / "pairs.parquet"
    tables.write(scenes_frame(), "scenes", scenes)
    tables.write(pairs_frame(), "pairs", pairs)
    return ["inspect", "--scenes", str(scenes), "--pairs", str(pairs)]


def invoke(args: list[str]):
    return CliRunner().invoke(app, args)


def csv_blocks(text: str) -> dict[str, pd.DataFrame]:
    """Parse the multi-report CSV output back: '# report: NAME' + CSV, blank-line separated."""
    out = {}
    for block in text.strip().split("\n\n"):
        head, _, body = block.partition("\n")
        out[head.removeprefix("# report: ")] = pd.read_csv(io.StringIO(body))
    return out


def test_table_format_prints_every_report(paths: list[str]) -> None:
    result = invoke(paths)
    assert result.exit_code == 0, result.output
    for title in ("splits: images (6 of 6 images", "distribution", "crowd", "hoi: annotated pairs of crowded images only"):
        assert title in result.stdout


def test_csv_parse_back(paths: list[str]) -> None:
    single = invoke([*paths, "--format", "csv", "--report", "splits"])
    assert single.exit_code == 0, single.output
    splits = pd.read_csv(io.StringIO(single.stdout)).set_index("split")
    assert splits.loc["train", ["images", "crowded", "tiny", "occluded"]].tolist() == [3, 2, 1, 1]
    assert splits.loc["test", "crowded_share"] == pytest.approx(1 / 3, abs=1e-4)
    blocks = csv_blocks(invoke([*paths, "--format", "csv"]).stdout)
    assert list(blocks) == ["splits", "distribution", "crowd", "hoi"]
    dist = blocks["distribution"].set_index(["split", "scene", "measure"])
    assert dist.loc[("train", "crowded", "persons"), ["images", "mean", "max"]].tolist() == [2, 3.0, 4]
    assert dist.loc[("train", "crowded", "interactive_pairs"), "p90"] == pytest.approx(2.9)
    assert dist.loc[("test", "sparse", "interactive_pairs"), "max"] == 0


def test_json_parse_back_and_hoi_names(paths: list[str]) -> None:
    result = invoke([*paths, "--format", "json", "--report", "hoi", "--report", "distribution"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data) == ["distribution", "hoi"]
    train = [r for r in data["hoi"] if r["split"] == "train"]
    assert [(r["category"], r["name"], r["annotations"]) for r in train] == [(1, "board airplane", 3), (2, "direct airplane", 1)]
    assert train[0]["share"] == 0.75 and train[0]["crowded_fraction"] == 0.75  # s1 holds the 4th
    test = [r for r in data["hoi"] if r["split"] == "test"]
    assert [(r["name"], r["crowded_fraction"]) for r in test] == [("no_interaction airplane", 1.0)]


def test_group_by_several_columns(paths: list[str]) -> None:
    result = invoke([*paths, "--format", "json", "--group-by", "split", "--group-by", "tiny",
                     "--report", "splits"])
    rows = json.loads(result.stdout)["splits"]
    assert {(r["split"], r["tiny"], r["images"], r["crowded"]) for r in rows} == {
        ("test", False, 2, 0), ("test", True, 1, 1), ("train", False, 2, 2), ("train", True, 1, 0)}
    assert "tiny_share" not in rows[0]  # a group key is not also aggregated
    by_scene = json.loads(invoke([*paths, "--format", "json", "--group-by", "scene"]).stdout)
    assert {(r["scene"], r["measure"]): r["images"] for r in by_scene["distribution"]} == {
        ("crowded", "persons"): 3, ("crowded", "interactive_pairs"): 3,
        ("sparse", "persons"): 3, ("sparse", "interactive_pairs"): 3}


def test_query_filters_rows(paths: list[str]) -> None:
    result = invoke([*paths, "--format", "json", "--query", "split == 'train' and persons >= 2"])
    data = json.loads(result.stdout)
    assert [(r["split"], r["images"], r["crowded"]) for r in data["splits"]] == [("train", 2, 2)]
    assert sum(r["annotations"] for r in data["hoi"]) == 4  # the pairs of c1 and c2 only
    table = invoke([*paths, "--query", "tiny"])
    assert table.exit_code == 0 and "2 of 6 images, query: tiny" in table.stdout


def test_hist_writes_pngs(paths: list[str], tmp_path: Path) -> None:
    out = tmp_path / "hist"
    result = invoke([*paths, "--format", "csv", "--report", "splits", "--hist", str(out)])
    assert result.exit_code == 0, result.output
    pd.read_csv(io.StringIO(result.stdout))  # the "wrote" lines go to stderr
    files = sorted(p.name for p in out.glob("*.png"))
    assert files == sorted(f"{c}.png" for c in scene_report.HIST_COLUMNS)
    assert all((out / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in files)
    assert all((out / f).with_suffix(".pdf").read_bytes()[:5] == b"%PDF-" for f in files)


@pytest.mark.parametrize("args, needle", [
    (["--query", "persons >>> 2"], "--query"),
    (["--query", "no_such_column > 1"], "no_such_column"),
    (["--group-by", "no_such_column"], "unknown column"),
])
def test_errors_are_one_line_exit_2(paths: list[str], args: list[str], needle: str) -> None:
    result = invoke([*paths, *args])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]


def test_missing_scenes_table(tmp_path: Path) -> None:
    result = invoke(["inspect", "--scenes", str(tmp_path / "none.parquet")])
    assert result.exit_code == 2 and "file not found" in result.stderr


def test_vcoco_action_names() -> None:
    pairs = pairs_frame().assign(hoi_id=None, verb_id=[4, 4, 4, 4, 1, 1])
    ids, names = scene_report.category_names(tables.to_arrow(pairs, "pairs").to_pandas())
    assert ids.tolist() == [4, 4, 4, 4, 1, 1] and names.tolist()[::4] == ["ride", "hold"]
