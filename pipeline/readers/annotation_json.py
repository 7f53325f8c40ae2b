"""The PPDM/QPIC annotation JSON (HICO-DET and V-COCO share it): loading, structural checks
and flattening into three frames.

A file is a list of image records ``{"file_name", "annotations": [{"bbox": [x1, y1, x2, y2],
"category_id"}], "hoi_annotation": [{"subject_id", "object_id", "category_id",
"hoi_category_id"?, "part_labels"?}], "scene"?}``. Two optional keys are this project's
additions: ``part_labels`` (6 ints in {0, 1}, body-part groups foot, leg, hip, hand, arm, head:
1 = that part of the subject takes part in the interaction) and the record's ``scene`` tag (a
non-empty string; the synthetic data's scene kind). Structural mistakes (wrong JSON, wrong
types, missing keys, repeated file names, malformed optional keys) always stop the stage with
a one-line ``UserError`` naming the file and the record; the values themselves (ranges, ids,
box geometry) are checked later, in ``checks``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model.common.errors import UserError, quote_name
from pipeline.inputs.json_reader import read_json

INT32_MAX = 2**31 - 1
PART_LABELS = 6  # body-part groups of ``part_labels`` (pipeline.tables.PART_GROUP_NAMES)


@dataclass(frozen=True)
class RawSplit:
    """One annotation file, flattened; ``rec`` is the 0-based record position in the file.

    records: rec, file_name, n_ann (number of boxes), n_hoi, scene (the optional tag, None).
    boxes: rec, index (position in ``annotations``), category_id, x1, y1, x2, y2 (float64,
        pixels, exactly as the file gives them).
    hois: rec, pos (position in ``hoi_annotation``), subject, object, verb (the raw
        ``category_id``), hoi (``hoi_category_id``, 0 when absent), has_hoi, part_labels (a
        list of 6 ints, None when absent).
    """

    source: str
    records: pd.DataFrame
    boxes: pd.DataFrame
    hois: pd.DataFrame


def load_json(path: Path) -> object:
    """Parse ``path``; a missing file or invalid JSON is a one-line UserError with its position."""
    return read_json(path, "annotation file", hint="check dataset.root and dataset.format")


def read_split(path: Path) -> RawSplit:
    """Load, check the structure of, and flatten one annotation file."""
    data = load_json(path)
    source = path.name
    if not isinstance(data, list):
        raise UserError(f"{source}: expected a JSON list of image records, found {_kind(data)}")
    for i, rec in enumerate(data):
        check_record(rec, f"{source}: record {i}")
    _check_unique_names(data, source)
    return flatten(data, source)


def check_record(rec: object, where: str) -> None:
    """Raise a UserError naming ``where`` and the field when ``rec`` is not a valid record."""
    if not isinstance(rec, dict):
        raise UserError(f"{where}: expected an object, found {_kind(rec)}")
    name = rec.get("file_name")
    if not isinstance(name, str) or name.strip() in {"", ".", ".."} or "/" in name or "\\" in name:
        raise UserError(f"{where}: file_name must be a plain file name, found {name!r}")
    where = f"{where} ({quote_name(name)})"
    scene = rec.get("scene")
    if scene is not None and not (isinstance(scene, str) and scene.strip()):
        raise UserError(f"{where}: 'scene' must be a non-empty string, found {_short(scene)}")
    anns = _field_list(rec, "annotations", where)
    hois = _field_list(rec, "hoi_annotation", where)
    for k, ann in enumerate(anns):
        _check_box(ann, f"{where}: annotations[{k}]")
    for j, hoi in enumerate(hois):
        _check_hoi(hoi, f"{where}: hoi_annotation[{j}]")


def _field_list(rec: dict, key: str, where: str) -> list:
    if key not in rec:
        raise UserError(f"{where}: key '{key}' missing")
    value = rec[key]
    if not isinstance(value, list):
        raise UserError(f"{where}: '{key}' must be a list, found {_kind(value)}")
    return value


def _check_box(ann: object, where: str) -> None:
    if not isinstance(ann, dict):
        raise UserError(f"{where}: expected an object, found {_kind(ann)}")
    box = ann.get("bbox")
    if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
        raise UserError(f"{where}.bbox must be a list of 4 numbers [x1, y1, x2, y2], found {_short(box)}")
    _require_int(ann, "category_id", where)


def _check_hoi(hoi: object, where: str) -> None:
    if not isinstance(hoi, dict):
        raise UserError(f"{where}: expected an object, found {_kind(hoi)}")
    for key in ("subject_id", "object_id", "category_id"):
        _require_int(hoi, key, where)
    if hoi.get("hoi_category_id") is not None:
        _require_int(hoi, "hoi_category_id", where)
    labels = hoi.get("part_labels")
    if labels is not None and not (isinstance(labels, list) and len(labels) == PART_LABELS
                                   and all(_is_int(v) and v in (0, 1) for v in labels)):
        raise UserError(f"{where}.part_labels must be a list of {PART_LABELS} values 0 or 1 (foot, leg, hip, "
                        f"hand, arm, head), found {_short(labels)}")


def _require_int(obj: dict, key: str, where: str) -> None:
    if key not in obj:
        raise UserError(f"{where}: key '{key}' missing")
    if not _is_int(obj[key]):
        raise UserError(f"{where}.{key} must be an integer, found {_short(obj[key])}")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -INT32_MAX <= v <= INT32_MAX


def _is_number(v: object) -> bool:
    # NaN/inf pass here on purpose: they are a box-geometry problem, counted by the checks
    if isinstance(v, float):
        return math.isnan(v) or math.isinf(v) or abs(v) < 1e30
    return _is_int(v)


def _check_unique_names(data: list[dict], source: str) -> None:
    first: dict[str, int] = {}
    for i, rec in enumerate(data):
        j = first.setdefault(rec["file_name"], i)
        if j != i:
            raise UserError(f"{source}: record {i} ({rec['file_name']}): file name repeats record {j}")


def flatten(data: list[dict], source: str) -> RawSplit:
    """Flatten checked records into the three frames of ``RawSplit`` (no value checks)."""
    n_ann = np.array([len(r["annotations"]) for r in data], dtype=np.int64)
    n_hoi = np.array([len(r["hoi_annotation"]) for r in data], dtype=np.int64)
    records = pd.DataFrame({
        "rec": np.arange(len(data), dtype=np.int64),
        "file_name": [r["file_name"] for r in data],
        "n_ann": n_ann,
        "n_hoi": n_hoi,
        "scene": [r.get("scene") for r in data],
    })
    coords = np.array([a["bbox"] for r in data for a in r["annotations"]], dtype=np.float64).reshape(-1, 4)
    boxes = pd.DataFrame({
        "rec": np.repeat(records["rec"].to_numpy(), n_ann),
        "index": _positions(n_ann),
        "category_id": np.array([a["category_id"] for r in data for a in r["annotations"]], dtype=np.int64),
        "x1": coords[:, 0], "y1": coords[:, 1], "x2": coords[:, 2], "y2": coords[:, 3],
    })
    hoi_items = [h for r in data for h in r["hoi_annotation"]]
    hoi_raw = [h.get("hoi_category_id") for h in hoi_items]
    hois = pd.DataFrame({
        "rec": np.repeat(records["rec"].to_numpy(), n_hoi),
        "pos": _positions(n_hoi),
        "subject": np.array([h["subject_id"] for h in hoi_items], dtype=np.int64),
        "object": np.array([h["object_id"] for h in hoi_items], dtype=np.int64),
        "verb": np.array([h["category_id"] for h in hoi_items], dtype=np.int64),
        "hoi": np.array([0 if v is None else v for v in hoi_raw], dtype=np.int64),
        "has_hoi": np.array([v is not None for v in hoi_raw], dtype=bool),
        "part_labels": pd.Series([h.get("part_labels") for h in hoi_items], dtype=object),
    })
    return RawSplit(source, records, boxes, hois)


def _positions(counts: np.ndarray) -> np.ndarray:
    """0..n-1 within each group of the given sizes, concatenated."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total, dtype=np.int64) - starts


def _kind(v: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), f"a {type(v).__name__}"
    )


def _short(v: object) -> str:
    text = json.dumps(v, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
