"""Typed, validated access to ``params.yaml``: each stage declares a pydantic model for its
section; unknown keys and wrong types are refused with a message naming the key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

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

_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def check_device(value: str) -> str:
    """``value`` when it names a device this pipeline runs on: auto | cpu | cuda | cuda:N | mps.

    Exact, lower-case spelling: ``gpu``, ``0`` or ``CUDA`` are refused rather than read as CPU
    (torch would take some of them, others would silently fall back). ``cuda`` = this rank's
    GPU (``LOCAL_RANK``), ``cuda:N`` = GPU N exactly; whether it exists is checked when used.
    """
    if not isinstance(value, str) or not _DEVICE.fullmatch(value):
        raise ValueError(f"device {value!r}: expected auto, cpu, cuda, cuda:N (N = GPU index) or mps")
    return value


# A validated device name; a params field or a CLI option declares ``device: Device = "auto"``.
Device = Annotated[str, AfterValidator(check_device)]


def load(path: str | Path = DEFAULT_PARAMS) -> dict:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})") from None
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
