"""Readers of HICO-DET's official MATLAB files, flattened into frames.

``anno_bbox.mat`` (Chao et al., WACV 2018): ``bbox_train`` / ``bbox_test`` are 1 x N struct
arrays, one per image, with ``filename``, ``size`` (struct: width, height, depth) and ``hoi``
(1 x K struct: ``id`` = HOI id 1..600 in ``list_action`` order, ``bboxhuman`` / ``bboxobject``
= 1 x M structs with fields x1, x2, y1, y2 (1-based inclusive pixel indices), ``connection`` =
C x 2 (1-based human index, object index), ``invis`` = 1 when the boxes were not drawn).
``list_action`` is 600 x 1 with ``nname`` (object) and ``vname`` (verb), among others.

``anno.mat``: ``anno_train`` (600 x 38,118) and ``anno_test`` (600 x 9,658) image-level labels
(1 positive, 0 ambiguous, -1 negative, NaN unknown), columns in ``list_train`` / ``list_test``
order (cell arrays of file names), plus ``list_action``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model.common.errors import UserError

SPLITS = {"train": "bbox_train", "test": "bbox_test"}
BOX_FIELDS = ("x1", "y1", "x2", "y2")


@dataclass(frozen=True)
class HicoBoxes:
    """One split of ``anno_bbox.mat``.

    images: pos (position in the struct array), file_name, width, height, depth.
    pairs: pos, hoi_id, hoi (position within the image's ``hoi``), conn (connection row),
        hx1, hy1, hx2, hy2, ox1, oy1, ox2, oy2 (values exactly as stored; 1-based pixels);
        one row per connection of every visible HOI annotation.
    invisible: pos, hoi_id of the HOI annotations flagged ``invis``.
    malformed: pos, hoi (position within the image), reason: HOI annotations left out because
        they do not follow the structure (e.g. a connection beyond the listed boxes).
    """

    images: pd.DataFrame
    pairs: pd.DataFrame
    invisible: pd.DataFrame
    malformed: pd.DataFrame


def load_mat(path: Path) -> dict:
    """``scipy.io.loadmat`` with squeezed arrays and attribute-style structs; a one-line
    UserError when the file is missing or not a MATLAB file."""
    from scipy.io import loadmat

    if not Path(path).exists():
        raise UserError(f"{path}: file not found")
    try:
        return loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except (OSError, ValueError, TypeError, NotImplementedError) as exc:
        raise UserError(f"{path}: not a readable MATLAB v5 file ({exc})") from None


def as_list(value: object) -> list:
    """A squeezed MATLAB struct array as a list: one struct stays one item, empty gives []."""
    if isinstance(value, np.ndarray):
        return list(value.ravel()) if value.dtype == object else ([] if value.size == 0 else [value])
    return [value]


def _number(v: object) -> float | int:
    x = np.asarray(v).item()
    return int(x) if float(x).is_integer() else float(x)


def _boxes(structs: object) -> list[tuple[float | int, ...]]:
    return [tuple(_number(getattr(s, f)) for f in BOX_FIELDS) for s in as_list(structs)]


def read_actions(mat: dict, source: str) -> list[tuple[str, str]]:
    """``list_action`` as (verb name, object name) pairs, HOI id order."""
    if "list_action" not in mat:
        raise UserError(f"{source}: variable 'list_action' missing")
    return [(str(a.vname), str(a.nname)) for a in as_list(mat["list_action"])]


def read_split(mat: dict, split: str, source: str) -> HicoBoxes:
    """Flatten ``bbox_<split>`` of a loaded ``anno_bbox.mat``."""
    key = SPLITS[split]
    if key not in mat:
        raise UserError(f"{source}: variable '{key}' missing (is this anno_bbox.mat?)")
    images, pairs, invisible, malformed = [], [], [], []
    for pos, rec in enumerate(as_list(mat[key])):
        try:
            images.append((pos, str(rec.filename), _number(rec.size.width), _number(rec.size.height),
                           _number(rec.size.depth)))
            hois = as_list(rec.hoi)
        except (AttributeError, IndexError, ValueError) as exc:
            raise UserError(f"{source}: {key}({pos + 1}) is not in the official structure ({exc})") from None
        for k, hoi in enumerate(hois):
            try:
                pairs.extend(_connections(pos, k, hoi, invisible))
            except (AttributeError, IndexError, ValueError, TypeError) as exc:
                # one odd annotation should not stop the conversion: counted and reported
                malformed.append((pos, k, f"{key}({pos + 1}).hoi({k + 1}): {exc}"))
    return HicoBoxes(
        pd.DataFrame(images, columns=["pos", "file_name", "width", "height", "depth"]),
        pd.DataFrame(pairs, columns=["pos", "hoi_id", "hoi", "conn", "hx1", "hy1", "hx2", "hy2",
                                     "ox1", "oy1", "ox2", "oy2"]),
        pd.DataFrame(invisible, columns=["pos", "hoi_id"]),
        pd.DataFrame(malformed, columns=["pos", "hoi", "reason"]),
    )


def _connections(pos: int, k: int, hoi: object, invisible: list) -> list[tuple]:
    """Rows of one HOI annotation: one per connection (human index, object index)."""
    hoi_id = int(_number(hoi.id))
    if not 1 <= hoi_id <= 600:
        raise ValueError(f"id {hoi_id} is not a HOI id 1..600")
    if int(_number(hoi.invis)) == 1:
        invisible.append((pos, hoi_id))
        return []
    humans, objects = _boxes(hoi.bboxhuman), _boxes(hoi.bboxobject)
    conn = np.asarray(hoi.connection, dtype=np.int64).reshape(-1, 2)
    rows = []
    for c, (h, o) in enumerate(conn):
        if not (1 <= h <= len(humans) and 1 <= o <= len(objects)):
            raise ValueError(f"connection {c + 1} = ({h}, {o}) indexes beyond {len(humans)} human / "
                             f"{len(objects)} object boxes of hoi({k + 1})")
        rows.append((pos, hoi_id, k, c, *humans[h - 1], *objects[o - 1]))
    return rows


def read_image_labels(mat: dict, source: str) -> pd.DataFrame:
    """Every known image-level label of ``anno.mat`` (NaN cells left out).

    Columns: image_id (file stem), split (train | test), hoi_id (1..600), label (int8: 1
    positive, 0 ambiguous, -1 negative), in split, image, HOI order.
    """
    frames = []
    for split in ("train", "test"):
        names_key, anno_key = f"list_{split}", f"anno_{split}"
        if names_key not in mat or anno_key not in mat:
            raise UserError(f"{source}: variables '{anno_key}' and '{names_key}' expected (is this anno.mat?)")
        names = [Path(str(n)).stem for n in np.atleast_1d(mat[names_key])]
        anno = np.atleast_2d(np.asarray(mat[anno_key], dtype=np.float64))
        if anno.shape != (600, len(names)):
            raise UserError(f"{source}: {anno_key} has shape {anno.shape}, expected (600, {len(names)})")
        img, hoi = np.nonzero(~np.isnan(anno.T))
        frames.append(pd.DataFrame({
            "image_id": np.asarray(names, dtype=object)[img], "split": split,
            "hoi_id": (hoi + 1).astype(np.int32), "label": anno.T[img, hoi].astype(np.int8),
        }))
    return pd.concat(frames, ignore_index=True)
