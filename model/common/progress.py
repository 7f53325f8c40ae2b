"""Progress bars and console verbosity shared by every command: ``-q`` (quiet) turns the bars
off, ``-v`` (verbose) adds debug logging and tracebacks; bars are off as well when stderr is not
a terminal (logs of batch jobs stay clean)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
VERBOSITY = {"level": 0}  # -1 quiet, 0 normal, 1 verbose (set once by the CLI)


def set_verbosity(level: int) -> None:
    """-1: no progress bars, warnings only; 0: default; 1: debug logging."""
    VERBOSITY["level"] = level
    logging.basicConfig(level={-1: logging.WARNING, 0: logging.INFO}.get(level, logging.DEBUG),
                        format="%(levelname)s %(name)s: %(message)s")
    if level < 0:
        os.environ["TQDM_DISABLE"] = "1"  # bars of libraries (ultralytics, dvclive) too
        VERBOSITY["env"] = 1
    elif VERBOSITY.pop("env", 0):  # a later command in the same process (tests) gets bars back
        os.environ.pop("TQDM_DISABLE", None)


def quiet() -> bool:
    return VERBOSITY["level"] < 0


def verbose() -> bool:
    return VERBOSITY["level"] > 0


def bar(iterable: Iterable[T] | None = None, **kwargs) -> tqdm:
    """A tqdm bar on stderr; off with -q and when stderr is not a terminal (``disable=None``)."""
    kwargs.setdefault("dynamic_ncols", True)
    kwargs["disable"] = True if quiet() else kwargs.get("disable") or None
    return tqdm(iterable, **kwargs)
