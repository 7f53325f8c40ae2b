"""Typed, validated access to ``params.yaml``: each stage declares a pydantic model for its
section; unknown keys and wrong types are refused with a message naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline.errors import UserError

DEFAULT_PARAMS = Path("params.yaml")


class Section(BaseModel):
    """Base of every params section: unknown keys are an error, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamsError(UserError):
    """params.yaml is missing, malformed, or a section does not validate."""


class DatasetConfig(Section):
    """Which dataset the pipeline runs on and where it lies.

    ``format`` selects the reader (the same code reads real and synthetic files); ``root`` is
    the dataset directory (for HICO-DET the folder holding ``annotations/`` and ``images/``).
    """

    name: str = "synthetic"
    format: Literal["hico-det", "v-coco"] = "hico-det"
    root: Path = Path("data/raw/synthetic/hico_20160224_det")


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


def section(name: str, model: type[S], path: str | Path = DEFAULT_PARAMS) -> S:
    """Section ``name`` of params.yaml validated as ``model`` (defaults fill absent keys)."""
    raw = load(path).get(name, {}) or {}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in (name, *first["loc"]))
        raise ParamsError(f"{path}: {key}: {first['msg']}") from None


def seed(path: str | Path = DEFAULT_PARAMS) -> int:
    value = load(path).get("seed", 0)
    if not isinstance(value, int):
        raise ParamsError(f"{path}: seed: expected an integer")
    return value
