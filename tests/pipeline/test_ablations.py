"""The Table-5 ablation command: statistics on hand-computed numbers, run parameters, and the
whole command on a tiny schedule (two arms x two seeds) writing a well-formed table."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.ablations import METRICS, TABLE5_ARMS, markdown, parse_sets, run_params, selection_by_verb, summarise, t_interval
from model.common.errors import UserError
from test_train_stage import TINY_MODEL
from train_fixtures import make_dataset, write_tables


def test_t_interval_on_hand_computed_numbers() -> None:
    mean, lo, hi = t_interval(np.array([1.0, 2.0, 3.0]))
    half = 4.302652729911275 / math.sqrt(3)  # t_{0.975, 2} x sd 1 / sqrt(3)
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert math.isnan(t_interval(np.array([0.5]))[1]) and t_interval(np.array([0.5, np.nan]))[0] == 0.5


def test_summarise_pairs_by_seed() -> None:
    rows = pd.DataFrame({"arm": ["full"] * 3 + ["no_parts"] * 3, "seed": [0, 1, 2, 2, 0, 1],
                         "ap_all": [0.5, 0.6, 0.7, 0.5, 0.4, 0.6]})  # no_parts by seed: 0.4, 0.6, 0.5
    s = summarise(rows, metrics=("ap_all",)).set_index("arm")
    assert s.loc["full", "mean"] == pytest.approx(0.6) and math.isnan(s.loc["full", "diff"])
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # diffs 0.1, 0.0, 0.2: mean 0.1, sd 0.1
    r = s.loc["no_parts"]
    assert (r["diff"], r["diff_lo"], r["diff_hi"]) == pytest.approx((0.1, 0.1 - half, 0.1 + half))
    assert r["positive"] == 2 and r["pairs"] == 3
    assert "| no_parts | 3 | 50.0 |" in markdown(s.reset_index(), {"seeds": [0, 1, 2]})


def test_run_params_apply_arm_overrides_and_fixed_settings() -> None:
    base = {"seed": 0, "model": {"ablation": "full"}, "train": {"alpha": 3.0}}
    p = run_params(base, "alpha1", 2, parse_sets(["train.stage1.length=7", "model.hidden_dim=64"]), 1, "cuda")
    assert p["train"]["alpha"] == 1.0 and p["seed"] == 2 and p["train"]["stage1"] == {"length": 7}
    assert p["model"]["hidden_dim"] == 64 and p["runtime"]["threads"] == 1 and p["runtime"]["device"] == "cuda"
    assert run_params(base, "no_parts", 0, {}, 1, "cpu")["model"]["ablation"] == "no_parts"
    assert base["train"] == {"alpha": 3.0}  # base untouched
    with pytest.raises(UserError):
        run_params(base, "nope", 0, {}, 1, "cpu")
    with pytest.raises(UserError):
        parse_sets(["train.alpha"])
    assert set(TABLE5_ARMS) == {"full", "no_saliency", "no_parts", "intuitive", "no_progressive", "no_one_time", "alpha1"}
    assert run_params(base, "part_supervised", 0, {}, 1, "cpu")["train"]["loss"]["part"] == 1.0


def test_selection_by_verb_shares() -> None:
    selected = np.array([[1, 0, 0, 1, 0, 0], [0, 0, 0, 1, 1, 0], [1, 1, 0, 0, 0, 0]], dtype=bool)
    pairs = pd.DataFrame({"verb_id": [37, 37, 41, 41], "query_row": [0, 1, 2, -1]})
    t = selection_by_verb(pairs, selected, {37: "hold", 41: "kick"}).set_index("verb")
    assert t.loc["hold", "n"] == 2 and t.loc["hold", "part_hand"] == 1.0 and t.loc["hold", "part_foot"] == 0.5
    assert t.loc["kick", "n"] == 1 and t.loc["kick", "part_leg"] == 1.0  # the unmatched pair is left out


def test_ablate_command_on_a_tiny_schedule(tmp_path: Path) -> None:
    import cli

    root = tmp_path / "data"
    t = make_dataset(root, n=12)
    test_ids = [f"img_{i:03d}" for i in range(8, 12)]
    t["images"].loc[t["images"]["image_id"].isin(test_ids), "split"] = "test"
    t["scenes"].loc[t["scenes"]["image_id"].isin(test_ids), "split"] = "test"
    t["scenes"]["cross_person"] = t["scenes"]["image_id"].isin(test_ids[:2])
    write_tables(t, tmp_path / "processed")
    params = {"seed": 0, "runtime": {"num_workers": 0, "log_every": 1}, "dataset": {"name": "test", "format": "hico-det", "root": str(root)}, "model": TINY_MODEL,
              "train": {"batch_size": 4, "warmup": 1, "lr": 1e-3, "lr_backbone": 1e-3,
                        "stage1": {"length": 2, "lr_drop": 1}, "val_fraction": 0.2, "val_every": 2,
                        "checkpoint_every": 2,
                        "augment": {"scales": [64], "max_size": 96, "eval_size": 64, "eval_max_size": 96}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    args = ["ablate", "--params", str(tmp_path / "params.yaml"), "--arm", "full", "--arm", "no_parts", "--seeds", "2",
            "--jobs", "2", "--threads", "1", "--device", "cpu", "--set", "train.stage1.length=3",
            "--data", str(tmp_path / "processed"), "--out", str(tmp_path / "runs"), "--reports", str(tmp_path / "reports")]
    res = CliRunner().invoke(cli.app, args)
    assert res.exit_code == 0, res.output + "".join(p.read_text() for p in (tmp_path / "runs").rglob("log.txt"))
    rows = pd.read_csv(tmp_path / "reports" / "ablations.csv")
    assert sorted(zip(rows["arm"], rows["seed"])) == [("full", 0), ("full", 1), ("no_parts", 0), ("no_parts", 1)]
    assert set(METRICS) <= set(rows.columns)
    assert rows["ap_all"].between(0, 1).all() and rows["ap_cross_person"].between(0, 1).all()
    md = (tmp_path / "reports" / "ablations.md").read_text()
    assert "## ap_cross_person" in md and "| no_parts | 2 |" in md
    used = yaml.safe_load((tmp_path / "runs" / "runs" / "no_parts-s1" / "params.yaml").read_text())
    assert used["seed"] == 1 and used["train"]["stage1"]["length"] == 3 and used["runtime"]["threads"] == 1
    assert not (tmp_path / "runs" / "runs" / "full-s0" / "reports" / "train").exists()  # no dvclive curves
    sel = pd.read_csv(tmp_path / "reports" / "ablations_selection.csv")
    assert list(sel.columns) == ["arm", "seed", "verb", "n", "part_foot", "part_leg", "part_hip", "part_hand", "part_arm",
                                 "part_head"]
    assert set(sel["arm"]) <= {"full"}  # only the one-time scheme selects parts (no_parts has none)
    # --collect-only tabulates what finished (a run folder without result.json is reported, not trained)
    (tmp_path / "runs" / "runs" / "no_parts-s1" / "result.json").unlink()
    # (tabulating the runs' result.json files needs no processed tables: --data may be elsewhere)
    no_tables = [a if a != str(tmp_path / "processed") else str(tmp_path / "nowhere") for a in args]
    again = CliRunner().invoke(cli.app, [*no_tables, "--collect-only", "--reports", str(tmp_path / "collected")])
    assert again.exit_code == 0, again.output
    rows = pd.read_csv(tmp_path / "collected" / "ablations.csv")
    assert sorted(zip(rows["arm"], rows["seed"])) == [("full", 0), ("full", 1), ("no_parts", 0)]
    collected_md = (tmp_path / "collected" / "ablations.md").read_text()
    assert "Runs without a result (not run, unfinished or failed; not in the table): no_parts-s1" in collected_md
    assert "train.stage1 length 3, lr_drop 1 (recorded)" in collected_md  # the runs' schedule, not "none"
    assert not (tmp_path / "runs" / "runs" / "no_parts-s1" / "result.json").exists()
    # --eval-images: the finished networks scored again on given tables and images (here the same
    # ones, so the same numbers as their result.json: the control experiment's mechanism)
    scored = CliRunner().invoke(cli.app, [*args, "--collect-only", "--eval-images", str(root),
                                          "--reports", str(tmp_path / "elsewhere")])
    assert scored.exit_code == 0, scored.output
    again_rows = pd.read_csv(tmp_path / "elsewhere" / "ablations.csv").set_index(["arm", "seed"])
    own = rows.set_index(["arm", "seed"])
    assert list(again_rows.index) == list(own.index)
    assert np.allclose(again_rows["ap_all"], own["ap_all"]) and np.allclose(again_rows["ap_cross_person"],
                                                                           own["ap_cross_person"], equal_nan=True)
    # the scores are kept per run and data folder: a second call reads them instead of scoring again
    cached = json.loads((tmp_path / "runs" / "runs" / "full-s0" / "elsewhere.json").read_text())
    assert len(cached) == 1 and cached[0]["key"]["images"] == str(root.resolve())
    cached[0]["result"]["ap_all"] = 0.125  # a marker only a read of the cache can produce
    (tmp_path / "runs" / "runs" / "full-s0" / "elsewhere.json").write_text(json.dumps(cached))
    CliRunner().invoke(cli.app, [*args, "--collect-only", "--eval-images", str(root), "--reports", str(tmp_path / "e2")])
    assert pd.read_csv(tmp_path / "e2" / "ablations.csv").set_index(["arm", "seed"]).loc[("full", 0), "ap_all"] == 0.125
    ckpt = tmp_path / "runs" / "runs" / "full-s0" / "models" / "stage1.pt"
    os.utime(ckpt, ns=(ckpt.stat().st_atime_ns, ckpt.stat().st_mtime_ns + 10**9))  # a new network: scored again
    CliRunner().invoke(cli.app, [*args, "--collect-only", "--eval-images", str(root), "--reports", str(tmp_path / "e3")])
    assert np.isclose(pd.read_csv(tmp_path / "e3" / "ablations.csv").set_index(["arm", "seed"]).loc[("full", 0), "ap_all"],
                      own.loc[("full", 0), "ap_all"])
    refused = CliRunner().invoke(cli.app, [*args, "--eval-images", str(root)])
    assert refused.exit_code == 2 and "--collect-only" in refused.output
