"""``python -m pipeline.stage NAME [ARG]``: the command of DVC stage NAME (dvc.yaml), which
runs ``pipeline.NAME.main(ARG)`` with the default paths.

The stages run through this module rather than cli.py so that a stage depends only on the
code it runs: dvc.yaml lists, for each stage, the project files ``pipeline.NAME`` imports
(directly, transitively, or inside functions) and the params keys it declares in ``PARAMS``
(``stage_params(ARG)`` for ``train``, whose two stages read different keys);
``python -m pipeline.stage_deps`` prints both lists and tests/pipeline/test_dvc_stages.py checks them.
A user's mistake (UserError) is one line on stderr and exit status 2, as in cli.py.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from model.common.errors import UserError


def module(name: str) -> ModuleType:
    """The stage module ``pipeline.NAME``."""
    return importlib.import_module(f"pipeline.{name}")


def declared_params(mod: ModuleType, args: list[str]) -> tuple[str, ...]:
    """The params keys the stage (module + arguments of its command) reads."""
    return tuple(mod.stage_params(*args) if hasattr(mod, "stage_params") else mod.PARAMS)


def main(argv: list[str] | None = None) -> int:
    name, *args = sys.argv[1:] if argv is None else argv
    try:
        module(name).main(*args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
