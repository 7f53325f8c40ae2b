"""Same inputs, params and thread count -> the same bytes: a tiny training (both stages and
the bundle) run twice, in two folders, writes files with the same SHA-256 (no archive names
from temporary files, no times, no absolute paths, no git state), so `dvc repro -f` leaves
dvc.lock unchanged."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import yaml

from train_fixtures import make_dataset, write_tables

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
        "runtime": runtime,
    }


def _run_in(folder: Path, runtime: dict) -> dict[str, str]:
    """Train both stages and bundle inside ``folder`` (relative paths, as DVC runs them);
    returns {file: sha256} of every output."""
    from pipeline import bundle, train

    folder.mkdir(parents=True)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        write_tables(make_dataset(Path("data"), n=6), Path("data/processed"))
        Path("params.yaml").write_text(yaml.safe_dump(_params(runtime)))
        for stage in (1, 2):
            train.run(Path("params.yaml"), stage, processed=Path("data/processed"))
        bundle.run(Path("params.yaml"))
    finally:
        os.chdir(cwd)
    files = sorted(p for d in ("models", "reports") for p in (folder / d).rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
            if "timing" not in p.parts}


def test_a_training_run_twice_writes_the_same_bytes(tmp_path) -> None:
    first = _run_in(tmp_path / "a", {"progress": False, "log_every": 1})
    second = _run_in(tmp_path / "b", {"progress": True, "log_every": 1, "num_workers": 0})
    assert {"models/stage1.pt", "models/stage2-last.pt", "models/bundle.pt", "reports/train_stage1.json",
            "reports/bundle.json", "reports/train/stage2/plots/metrics/train/loss.tsv"} <= set(first)
    differ = sorted(k for k in first if first[k] != second.get(k))
    assert not differ and first.keys() == second.keys(), f"different bytes: {differ}"
