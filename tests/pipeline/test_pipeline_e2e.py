"""End to end: `dvc repro` of the whole pipeline on a tiny generated dataset, in a temporary
copy of the repository (its own git repo), then `dvc metrics show`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

# Overrides that make every stage tiny: a few images, a few training iterations.
TINY = {
    "synth": {"hico_train": 24, "hico_test": 8, "vcoco_train": 6, "vcoco_test": 4,
              "width": [128, 128], "height": [128, 128]},
    "train": {"batch_size": 4, "warmup": 1, "val_fraction": 0.25, "val_every": 2, "checkpoint_every": 2,
              "stage1": {"unit": "iterations", "length": 3, "lr_drop": 2},
              "stage2": {"unit": "iterations", "length": 3, "lr_drop": 2}},
    "runtime": {"num_workers": 0, "log_every": 1, "progress": False},
}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base.get(k, {}), v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def _copy_repo(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file() and not rel.startswith(("dvc.lock", ".dvc/tmp", ".dvc/cache")):
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def _run(cmd: list[str], cwd: Path, env: dict) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    return res.stdout


def tiny_git_repo(tmp_path: Path) -> tuple[Path, dict]:
    """A copy of the project with the TINY params, committed in a fresh git repository (DVC
    needs one); returns (repo, the environment to run git and dvc in)."""
    repo = tmp_path / "repo"
    _copy_repo(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    (repo / "params.yaml").write_text(yaml.safe_dump(_merge(params, TINY), sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    _run(["git", "init", "-q"], repo, env)
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-qm", "tiny"], repo, env)
    return repo, env


@pytest.mark.slow
def test_dvc_repro_on_a_tiny_dataset(tmp_path: Path) -> None:
    repo, env = tiny_git_repo(tmp_path)
    dvc = [sys.executable, "-m", "dvc"]
    _run([*dvc, "repro"], repo, env)

    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        for out in stage.get("outs", []):
            path = out if isinstance(out, str) else next(iter(out))
            assert (repo / path).exists(), f"stage {name}: output {path} missing"
    shown = _run([*dvc, "metrics", "show"], repo, env)
    assert "int_ap" in shown and "map_full" in shown  # reports/headline.json
    # a second repro has nothing to do
    again = _run([*dvc, "repro"], repo, env)
    assert "didn't change" in again or "up to date" in again.lower()
