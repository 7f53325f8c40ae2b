"""dvc.yaml against the code: each stage lists exactly the project files its module can import
and exactly the params keys it declares (and so can read), no stage depends on cli.py or on the
runtime section; the import graph and the params restriction themselves, on small cases."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline import params as P
from pipeline import stage_deps
from pipeline.train import TrainConfig, stage_params

ROOT = Path(__file__).resolve().parents[2]
DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())


def test_every_stage_lists_exactly_its_code_and_params() -> None:
    problems = [p for st in stage_deps.analyse(ROOT / "dvc.yaml") for p in st.problems()]
    assert not problems, ("dvc.yaml and the code disagree (fix with `python -m pipeline.stage_deps --write`):\n"
                          + "\n".join(problems))


def test_no_stage_depends_on_the_cli_or_on_runtime_settings() -> None:
    for name, spec in DVC_YAML["stages"].items():
        assert "cli.py" not in spec.get("deps", []), name
        assert spec["cmd"].startswith("python -m pipeline.stage "), name
        assert not any(str(p).split(".")[0] == "runtime" for p in spec.get("params", [])), name


def test_stage_1_does_not_read_stage_2_settings() -> None:
    assert "train.stage1" in stage_params(1) and "train.stage2" not in stage_params(1)
    assert {"train.stage2", "train.stage2_init"} <= set(stage_params(2)) and "train.stage1" not in stage_params(2)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_the_import_graph_follows_every_kind_of_import(tmp_path) -> None:
    stage_deps._direct.cache_clear()
    _write(tmp_path, {
        "pipeline/__init__.py": "",
        "pipeline/a.py": "from pipeline import b\nfrom .sub import c\n\ndef f():\n    import model.lazy\n",
        "pipeline/b.py": "import numpy\nfrom pipeline.b_helpers import NAME  # a name, not a module\n",
        "pipeline/b_helpers.py": "NAME = 1\n",
        "pipeline/sub/__init__.py": "",
        "pipeline/sub/c.py": "from . import d\nfrom ..b import x\n",
        "pipeline/sub/d.py": "MOD = 'model.dynamic'  # importlib.import_module(MOD)\n",
        "pipeline/unused.py": "",
        "model/__init__.py": "",
        "model/lazy.py": "",
        "model/dynamic.py": "",
    })
    got = stage_deps.code_files(stage_deps.import_closure("pipeline.a", root=tmp_path), tmp_path)
    stage_deps._direct.cache_clear()
    assert got == ["model/__init__.py", "model/dynamic.py", "model/lazy.py", "pipeline/__init__.py",
                   "pipeline/a.py", "pipeline/b.py", "pipeline/b_helpers.py", "pipeline/sub/__init__.py",
                   "pipeline/sub/c.py", "pipeline/sub/d.py"]


def test_a_mismatch_names_what_to_add_and_remove() -> None:
    st = stage_deps.StageDeps("x", ["x"], ["pipeline/a.py", "pipeline/b.py"], ["data/labels"], ["seed", "x"],
                              ["pipeline/a.py", "cli.py"], [], ["seed", "train"])
    assert st.problems() == ["stage x: add to deps: data/labels, pipeline/b.py", "stage x: remove from deps: cli.py",
                             "stage x: add to params: x", "stage x: remove from params: train"]


def test_a_stage_sees_only_the_keys_it_declares(tmp_path) -> None:
    path = tmp_path / "params.yaml"
    base = {"seed": 3, "train": {"lr": 0.5, "stage1": {"length": 7}, "stage2": {"length": 9}}}
    path.write_text(yaml.safe_dump(base))
    one = P.section("train", TrainConfig, path, keys=stage_params(1))
    assert one.lr == 0.5 and one.stage1.length == 7
    assert one.stage2 == TrainConfig().stage2  # undeclared: the default, whatever the file says
    with pytest.raises(P.ParamsError, match="evaluate: read by a stage that does not declare it"):
        P.section("evaluate", P.DatasetConfig, path, keys=("seed", "train.lr"))
    with pytest.raises(P.ParamsError, match="seed: read by a stage"):
        P.seed(path, keys=("train",))
    assert P.restrict(base, ["train.stage1", "train.absent", "seed"]) == {"train": {"stage1": {"length": 7}}, "seed": 3}


def test_undeclared_keys_are_still_validated_and_old_runtime_keys_are_pointed_to(tmp_path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"train": {"stage2": {"length": 0}}}))
    with pytest.raises(P.ParamsError, match="train.stage2.length"):
        P.section("train", TrainConfig, path, keys=stage_params(1))
    path.write_text(yaml.safe_dump({"train": {"threads": 1}}))
    with pytest.raises(P.ParamsError, match=r"train.threads: .*\(moved to runtime.threads\)"):
        P.section("train", TrainConfig, path)
