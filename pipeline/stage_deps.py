"""Each DVC stage's exact code dependencies and params, derived from the code.

A stage's command is ``python -m pipeline.stage NAME [ARG]`` (pipeline/stage.py). Its code is
every project module that ``pipeline.stage`` and ``pipeline.NAME`` can import: the static
import graph over pipeline/ and model/, followed transitively, counting imports inside
functions, ``importlib.import_module("model.x")``-style string literals that name a project
module, and the packages' ``__init__.py`` files on the way. Its params are the keys the
module declares (``PARAMS``, or ``stage_params(ARG)``), which are the only ones it can read
(pipeline/params.py). Data files the code reads itself are added (:data:`DATA_OF_MODULE`).

    python -m pipeline.stage_deps            # print every stage's code deps and params
    python -m pipeline.stage_deps --check    # exit 1 and say what to add/remove in dvc.yaml
    python -m pipeline.stage_deps --write    # rewrite those lists in dvc.yaml (comments kept)

tests/pipeline/test_dvc_stages.py runs the check, so dvc.yaml and the code cannot drift apart. No stage
imports this module: it is not a dependency of any.
"""

from __future__ import annotations

import ast
import re
import shlex
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "model")
ENTRY = "pipeline.stage"
# data read by a module's own code (not through a stage's inputs): a stage importing the
# module depends on it
DATA_OF_MODULE = {"model/common/labels.py": "data/labels"}
_MODULE_LITERAL = re.compile(rf"^(?:{'|'.join(PACKAGES)})(?:\.\w+)+$")


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """``pipeline/x/y.py`` or ``pipeline/x/y/__init__.py`` for module ``pipeline.x.y``."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _candidates(tree: ast.AST, name: str, is_package: bool) -> set[str]:
    """Module names ``tree`` (module ``name``) may import; non-modules are filtered later."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_LITERAL.match(node.value):
            found.add(node.value)
    return found


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@cache
def _direct(name: str, root: Path = ROOT) -> frozenset[str]:
    path = module_file(name, root)
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for cand in _candidates(tree, name, path.name == "__init__.py"):
        if cand.split(".")[0] in PACKAGES:
            out |= {m for m in _with_parents(cand) if module_file(m, root) is not None}
    return frozenset(out)


def import_closure(*modules: str, root: Path = ROOT) -> set[str]:
    """Every project module that importing ``modules`` can load (the modules included)."""
    todo = [p for m in modules for p in _with_parents(m)]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or module_file(name, root) is None:
            continue
        seen.add(name)
        todo.extend(_direct(name, root) - seen)
    return seen


def code_files(modules: set[str], root: Path = ROOT) -> list[str]:
    """The modules' files, relative to ``root``, sorted."""
    return sorted(module_file(m, root).relative_to(root).as_posix() for m in modules)


@dataclass
class StageDeps:
    """What one stage of dvc.yaml should list (``want_*``) and lists (``have_*``)."""

    name: str
    command: list[str]
    want_code: list[str]
    want_data: list[str]
    want_params: list[str]
    have_code: list[str] = field(default_factory=list)
    have_data: list[str] = field(default_factory=list)
    have_params: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        out = []
        for kind, want, have in (("deps", self.want_code + self.want_data, self.have_code + self.have_data),
                                 ("params", self.want_params, self.have_params)):
            add, remove = sorted(set(want) - set(have)), sorted(set(have) - set(want))
            if add:
                out.append(f"stage {self.name}: add to {kind}: {', '.join(add)}")
            if remove:
                out.append(f"stage {self.name}: remove from {kind}: {', '.join(remove)}")
        return out


def is_code(dep: str) -> bool:
    """A dvc.yaml dep that is project code (a .py file or a folder of pipeline/ or model/)."""
    return dep.endswith(".py") or dep.split("/")[0] in PACKAGES


def parse_command(cmd: str) -> tuple[str, list[str]] | None:
    """(stage module name, arguments) of ``python -m pipeline.stage NAME [ARG]``, else None."""
    words = shlex.split(cmd)
    if len(words) >= 4 and words[0].startswith("python") and words[1:3] == ["-m", ENTRY]:
        return words[3], words[4:]
    return None


def analyse(dvc_yaml: Path = ROOT / "dvc.yaml") -> list[StageDeps]:
    """Every stage of ``dvc_yaml``: the code deps, data deps and params it should list."""
    import yaml

    from pipeline import stage as stage_mod

    root = dvc_yaml.parent
    out = []
    for name, spec in (yaml.safe_load(dvc_yaml.read_text()).get("stages") or {}).items():
        parsed = parse_command(spec.get("cmd", ""))
        if parsed is None:
            raise ValueError(f"{dvc_yaml}: stage {name}: command is not 'python -m {ENTRY} NAME [ARG]'")
        module, args = parsed
        files = code_files(import_closure(ENTRY, f"pipeline.{module}", root=root), root)
        params = stage_mod.declared_params(stage_mod.module(module), args)
        deps = [d for d in spec.get("deps", []) if isinstance(d, str)]
        out.append(StageDeps(
            name, [module, *args], files, sorted({DATA_OF_MODULE[f] for f in files if f in DATA_OF_MODULE}),
            list(params), [d for d in deps if is_code(d)],
            [d for d in deps if d in DATA_OF_MODULE.values()],
            [p for p in spec.get("params", []) if isinstance(p, str)],
        ))
    return out


def write(dvc_yaml: Path, stages: list[StageDeps]) -> None:
    """Replace each stage's code deps, label-data deps and params in ``dvc_yaml`` by the
    derived ones (other deps, their order and every comment stay)."""
    from ruamel.yaml import YAML

    from model.common.atomic_io import atomic_write

    yml = YAML()
    yml.preserve_quotes = True
    yml.width = 4096
    yml.indent(mapping=2, sequence=4, offset=2)
    doc = yml.load(dvc_yaml.read_text())
    for st in stages:
        spec = doc["stages"][st.name]
        managed = set(DATA_OF_MODULE.values())
        deps = spec.get("deps", [])
        rest = [d for d in deps if not (isinstance(d, str) and (is_code(d) or d in managed))]
        deps.clear()
        deps.extend([*st.want_code, *st.want_data, *rest])
        spec["params"] = [*st.want_params, *[p for p in spec.get("params", []) if not isinstance(p, str)]]
    atomic_write(dvc_yaml, lambda tmp: yml.dump(doc, tmp))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    dvc_yaml = ROOT / "dvc.yaml"
    stages = analyse(dvc_yaml)
    if "--write" in argv:
        write(dvc_yaml, stages)
        print(f"{dvc_yaml}: code deps and params of {len(stages)} stages rewritten")
        return 0
    if "--check" in argv:
        problems = [p for st in stages for p in st.problems()]
        print("\n".join(problems) if problems else "dvc.yaml: every stage's code deps and params match the code")
        return 1 if problems else 0
    for st in stages:
        print(f"{st.name}:  # python -m {ENTRY} {' '.join(st.command)}")
        print("  deps:\n" + "".join(f"    - {d}\n" for d in st.want_code + st.want_data), end="")
        print("  params:\n" + "".join(f"    - {p}\n" for p in st.want_params), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
