"""Same inputs, params and thread count -> the same bytes: a tiny training (both stages and
the bundle) run twice, in two folders, writes files with the same SHA-256 (no archive names
from temporary files, no times, no absolute paths, no git state), so `dvc repro -f` leaves
dvc.lock unchanged."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from train_fixtures import make_dataset, write_tables

ROOT = Path(__file__).resolve().parents[2]

TINY_MODEL = {"backbone": "demo", "hidden_dim": 16, "nheads": 2, "dim_feedforward": 32, "enc_layers": 1,
              "dec_layers_box": 1, "dec_layers_verb": 1, "num_queries": 4, "query_type": "anchor", "dropout": 0.1}


def _params(runtime: dict) -> dict:
    return {
        "seed": 0,
        "dataset": {"name": "test", "format": "hico-det", "root": "data"},
        "model": TINY_MODEL,
        "train": {"batch_size": 2, "warmup": 1, "lr": 1e-3, "lr_backbone": 1e-3, "val_fraction": 0.34,
                  "stage1": {"length": 3, "lr_drop": 2}, "stage2": {"length": 2, "lr_drop": 1},
                  "val_every": 2, "checkpoint_every": 2,
                  "augment": {"scales": [48, 64], "max_size": 80, "eval_size": 64, "eval_max_size": 80}},
        "postprocess": {"nis": "threshold"},
        "runtime": {"threads": 1, **runtime},
    }


def _run_in(folder: Path, runtime: dict) -> dict[str, str]:
    """Train both stages and bundle inside ``folder`` with the DVC stages' commands, each in a
    fresh process as DVC runs it; returns {file: sha256} of every output."""
    folder.mkdir(parents=True)
    write_tables(make_dataset(folder / "data", n=6), folder / "data" / "processed")
    (folder / "params.yaml").write_text(yaml.safe_dump(_params(runtime)))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for args in (["train", "1"], ["train", "2"], ["bundle"]):
        res = subprocess.run([sys.executable, "-m", "pipeline.stage", *args], cwd=folder, env=env,
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
    files = sorted(p for d in ("models", "reports") for p in (folder / d).rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
            if "timing" not in p.parts}


@pytest.mark.slow
def test_a_training_run_twice_writes_the_same_bytes(tmp_path) -> None:
    first = _run_in(tmp_path / "a", {"progress": False, "log_every": 1})
    second = _run_in(tmp_path / "b", {"progress": True, "log_every": 1, "num_workers": 0})
    assert {"models/stage1.pt", "models/stage2-last.pt", "models/bundle.pt", "reports/train_stage1.json",
            "reports/bundle.json", "reports/train/stage2/plots/metrics/train/loss.tsv"} <= set(first)
    differ = sorted(k for k in first if first[k] != second.get(k))
    assert not differ and first.keys() == second.keys(), f"different bytes: {differ}"
