"""Typed, validated access to ``params.yaml``: each stage declares a pydantic model for its
section; unknown keys and wrong types are refused with a message naming the key.

A DVC stage reads only the params keys it declares (its module's ``PARAMS``, listed as the
stage's ``params`` in dvc.yaml; tests/pipeline/test_dvc_stages.py keeps the two equal): ``section(...,
keys=PARAMS)`` validates the whole section but hands the stage only the declared keys (the
others keep their defaults), so a key no stage declares cannot change a result unseen. The
``runtime`` section (how a run uses this machine) is declared by no stage.
"""

from __future__ import annotations

from collections.abc import Collection
import re
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import yaml
from pydantic import AfterValidator, Field, ValidationError

from model.common.errors import UserError
from model.common.section import Section
from model.runtime_config import Device, RuntimeConfig, check_device  # noqa: F401 (params' runtime section)

DEFAULT_PARAMS = Path("params.yaml")


class ParamsError(UserError):
    """params.yaml is missing, malformed, or a section does not validate."""


class DatasetConfig(Section):
    """Which dataset the pipeline runs on and where it lies.

    ``format`` selects the reader (the same code reads real and synthetic files); ``root`` is
    the dataset directory (for HICO-DET the folder holding ``annotations/`` and ``images/``).
    ``splits``: the splits ingest reads; ``[test]`` alone scores downloaded results without
    the training data (README, "Real data").
    """

    name: str = "synthetic"
    format: Literal["hico-det", "v-coco"] = "hico-det"
    root: Path = Path("data/raw/synthetic/hico_20160224_det")
    splits: tuple[Literal["train", "test"], ...] = Field(("train", "test"), min_length=1)


# keys that lived in ``train`` before the ``runtime`` section existed
MOVED_TO_RUNTIME = frozenset(RuntimeConfig.model_fields)

S = TypeVar("S", bound=Section)


def load(path: str | Path = DEFAULT_PARAMS) -> dict:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:  # its message spans lines: keep the first (the CLI prints one line)
        raise ParamsError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    except (OSError, UnicodeDecodeError, RecursionError) as exc:  # a directory, binary, a nesting bomb
        raise ParamsError(f"{path}: not a readable YAML file ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of sections")
    return data


def section(name: str, model: type[S], path: str | Path = DEFAULT_PARAMS,
            keys: Collection[str] | None = None) -> S:
    """Section ``name`` of params.yaml validated as ``model`` (defaults fill absent keys).

    ``keys``: the dotted params keys the calling DVC stage declares (``PARAMS``). The whole
    section is validated, then the stage gets only the declared keys' values; reading a section
    none of them names is a programming error (the stage would depend on undeclared params).
    """
    data = load(path)
    full = _validated(name, model, data.get(name, {}) or {}, path)
    if keys is None:
        return full
    if not any(k == name or k.startswith(f"{name}.") for k in keys):
        raise ParamsError(f"{path}: {name}: read by a stage that does not declare it (its PARAMS)")
    return _validated(name, model, restrict(data, keys).get(name, {}), path)


def _validated(name: str, model: type[S], raw: object, path: str | Path) -> S:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in (name, *first["loc"]))
        hint = ""
        if name == "train" and first["type"] == "extra_forbidden" and first["loc"][-1] in MOVED_TO_RUNTIME:
            hint = f" (moved to runtime.{first['loc'][-1]})"
        raise ParamsError(f"{path}: {key}: {first['msg']}{hint}") from None


def restrict(data: dict, keys: Collection[str]) -> dict:
    """The part of the params mapping ``data`` that the dotted ``keys`` name (absent ones are
    left out; a key naming a mapping keeps all of it)."""
    out: dict = {}
    for key in keys:
        *parents, leaf = key.split(".")
        src, dst = data, out
        for part in parents:
            src = src.get(part) if isinstance(src, dict) else None
            dst = dst.setdefault(part, {})
        if isinstance(src, dict) and leaf in src:
            dst[leaf] = src[leaf]
    return out


def runtime(path: str | Path = DEFAULT_PARAMS) -> RuntimeConfig:
    """The ``runtime`` section (declared by no stage: see :class:`RuntimeConfig`)."""
    return section("runtime", RuntimeConfig, path)


def seed(path: str | Path = DEFAULT_PARAMS, keys: Collection[str] | None = None) -> int:
    """The global ``seed``; with ``keys`` (a stage's PARAMS), only if the stage declares it."""
    if keys is not None and "seed" not in keys:
        raise ParamsError(f"{path}: seed: read by a stage that does not declare it (its PARAMS)")
    value = load(path).get("seed", 0)
    if not isinstance(value, int):
        raise ParamsError(f"{path}: seed: expected an integer")
    return value
