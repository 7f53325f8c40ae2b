"""Official backend: import the paper authors' pre-computed part-box pickles as persons.

The three structures (reference notes §3.3; the files are on the authors' Google Drive):

- ``hico-train`` (``train_set_part_boxes.pkl``): ``{int image number: [person, ...]}``, each
  person ten part boxes (dicts ``{x1, y1, x2, y2}`` in HAKE order, or a 10 x 4 array); no person
  box or score, so the box is the union of the parts and the score 1.
- ``hico-test`` (``Test_Faster_RCNN_R-50-PFN_2x_HICO_DET_with_pose_with_part.pkl``, TIN's
  detection file): ``{int image number: [[image_id, 'Human' | 'Object', box x1y1x2y2, nan,
  class_id, score, keypoints or None, part boxes or None], ...]}``; objects are skipped, humans
  keep box, score, keypoints (when COCO-17-like) and part boxes (when present; humans without
  part boxes get them from their keypoints or the whole-body fallback in the ``parts`` stage).
- ``vcoco`` (``share_label_10w.pkl``): ``{file name: [item, ...]}`` with ``item[5]`` the ten
  part-box dicts; box = union of the parts, score 1.

The pickles are untrusted: they are read with :mod:`pipeline.inputs.safe_pickle`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from pipeline.inputs import safe_pickle
from model.common.errors import UserError, quote_name
from pipeline.params import Section
from pipeline.pose_backends.persons import ImageIndex, PersonArrays, keypoints_to_coco17, to_persons
from pipeline.tables import NUM_PARTS

Format = Literal["auto", "hico-train", "hico-test", "vcoco"]
_CORNERS = ("x1", "y1", "x2", "y2")


class OfficialFile(Section):
    """One part-box pickle (relative to the dataset root), its split and structure."""

    path: Path
    split: str | None = None
    format: Format = "auto"


class OfficialConfig(Section):
    """params ``pose.official``: the part-box pickles to import (defaults: HICO-DET's two)."""

    files: list[OfficialFile] = [
        OfficialFile(path=Path("train_set_part_boxes.pkl"), split="train"),
        OfficialFile(path=Path("Test_Faster_RCNN_R-50-PFN_2x_HICO_DET_with_pose_with_part.pkl"), split="test"),
    ]


def read(images: pd.DataFrame, root: Path, cfg: OfficialConfig, counts: Counter) -> pd.DataFrame:
    """Persons (with part boxes) of ``images`` from every configured pickle."""
    arrays = []
    for spec in cfg.files:
        path = root / spec.path
        data = safe_pickle.load(path)
        if not isinstance(data, dict):
            raise UserError(f"{path}: expected a dict keyed by image, got {type(data).__name__}")
        fmt = detect_format(data) if spec.format == "auto" else spec.format
        counts[f"file {spec.path} read as {fmt}"] += 1
        unknown_before = counts["skipped: unknown image id"]
        arrays.append(_read_dict(data, fmt, ImageIndex(images, spec.split, source=str(path)), counts))
        if data and counts["skipped: unknown image id"] - unknown_before == len(data):
            raise UserError(f"{path}: none of its {len(data)} image keys names an image of the dataset "
                            f"(e.g. {quote_name(next(iter(data)))}): wrong file or split?")
    return to_persons(PersonArrays.concat(arrays), images, "official", counts)


def detect_format(data: dict) -> str:
    """Guess the structure: string keys -> vcoco; TIN detection rows -> hico-test; else hico-train."""
    if data and all(isinstance(k, str) for k in data):
        return "vcoco"
    for value in data.values():
        for item in value if isinstance(value, (list, tuple)) else ():
            if isinstance(item, (list, tuple)) and len(item) >= 8 and item[1] in ("Human", "Object"):
                return "hico-test"
            return "hico-train"
    return "hico-train"


def _read_dict(data: dict, fmt: str, index: ImageIndex, counts: Counter) -> PersonArrays:
    rows = list(_rows(data, fmt, index, counts))
    raw = PersonArrays.empty(len(rows))
    flat_kp = []
    for i, (image_id, box, score, kp, parts) in enumerate(rows):
        raw.image_id[i] = image_id
        raw.box[i], raw.score[i], raw.part_boxes[i] = box, score, parts
        flat_kp.append(kp)
    # Keypoints are optional here: only rows that have them go through the layout check.
    has = [i for i, kp in enumerate(flat_kp) if kp is not None]
    if has:
        kp, ok = keypoints_to_coco17([flat_kp[i] for i in has], counts)
        raw.keypoints[np.asarray(has)[ok]] = kp[ok]
    return raw


def _rows(data: dict, fmt: str, index: ImageIndex, counts: Counter) -> Iterator[tuple]:
    """(image_id, box [4], score, flat keypoints or None, parts [10, 4]) per usable person."""
    nan4 = np.full(4, np.nan, np.float32)
    no_parts = np.full((NUM_PARTS, 4), np.nan, np.float32)
    for key, items in data.items():
        image_id = index.lookup(key, "file" if isinstance(key, str) else "int")
        if image_id is None:
            counts["skipped: unknown image id"] += 1
            continue
        if not isinstance(items, (list, tuple)):
            counts["bad record: image entry is not a list"] += 1
            continue
        for item in items:
            if fmt == "hico-test":
                row = _tin_row(item, counts)
                if row is not None:
                    box, score, kp, parts = row
                    yield image_id, box, score, kp, no_parts if parts is None else parts
                continue
            parts = part_array(item if fmt == "hico-train" else _nth(item, 5))
            if parts is None:
                counts["bad record: part boxes not ten x1..y2 boxes"] += 1
                continue
            yield image_id, nan4, np.nan, None, parts


def _tin_row(item: object, counts: Counter) -> tuple | None:
    """One TIN detection row -> (box, score, flat keypoints or None, parts or None); None = skip."""
    if not isinstance(item, (list, tuple)) or len(item) < 8:
        counts["bad record: detection row is not [image, kind, box, ...] of 8"] += 1
        return None
    if item[1] != "Human":
        counts["skipped: object detection"] += 1
        return None
    box = _floats(item[2], 4)
    if box is None:
        counts["bad record: detection box not 4 numbers"] += 1
        return None
    score = _floats([item[5]], 1)
    kp = None if item[6] is None else _floats(item[6], None)
    if item[6] is not None and kp is None:
        counts["keypoints ignored: not numeric"] += 1
    parts = None if item[7] is None else part_array(item[7])
    if item[7] is None:
        counts["human without part boxes"] += 1
    elif parts is None:
        counts["part boxes ignored: not ten x1..y2 boxes"] += 1
    if score is None or not np.isfinite(score[0]):
        counts["bad record: detection score missing or not a finite number"] += 1
        return None
    return box, score[0], None if kp is None else kp.tolist(), parts


def part_array(value: object) -> np.ndarray | None:
    """Ten part boxes as dicts ``{x1, y1, x2, y2}`` or a 10 x 4 array -> [10, 4] float32; None if not."""
    if isinstance(value, (list, tuple)) and len(value) == NUM_PARTS and all(isinstance(v, dict) for v in value):
        try:
            return np.array([[float(v[c]) for c in _CORNERS] for v in value], np.float32)
        except (KeyError, TypeError, ValueError):
            return None
    arr = _floats(value, None)
    return arr.reshape(NUM_PARTS, 4) if arr is not None and arr.size == NUM_PARTS * 4 else None


def _floats(value: object, size: int | None) -> np.ndarray | None:
    try:
        arr = np.asarray(value, dtype=np.float32).ravel()
    except (TypeError, ValueError):
        return None
    return arr if size is None or arr.size == size else None


def _nth(item: object, n: int) -> object:
    return item[n] if isinstance(item, (list, tuple)) and len(item) > n else None
