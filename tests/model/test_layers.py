"""The layering of ARCHITECTURE.md decision 14: ``model/`` never imports ``pipeline/`` (not at
the top, not inside a function, not by a module name in a string), and the shared base
``model/common/`` imports nothing of the project outside itself."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import statement in ``path``, and of every string literal that is
    a dotted project module name (``importlib.import_module("pipeline.x")``-style)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.strip()
            if text.split(".")[0] in ("pipeline", "model") and text.replace(".", "").replace("_", "").isalnum():
                found.append((node.lineno, text))
    return found


def _violations(folder: str, allowed: tuple[str, ...]) -> list[str]:
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in ("pipeline", "model", "cli") and not module.startswith(allowed):
                bad.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    return bad


def test_model_never_imports_pipeline() -> None:
    assert _violations("model", ("model",)) == []


def test_common_base_imports_only_itself() -> None:
    assert _violations("model/common", ("model.common",)) == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The scanner is not blind: a lazy import and a string module name are both found."""
    path = tmp_path / "x.py"
    path.write_text("def f():\n    from pipeline.tables import SCHEMAS\n"
                    "import importlib\nimportlib.import_module('pipeline.train')\n")
    assert [m for _, m in _imports(path) if m.startswith("pipeline")] == ["pipeline.tables", "pipeline.train"]
