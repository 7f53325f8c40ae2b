"""Every parquet table of the pipeline: its pyarrow schema (the one place they are defined),
validated reading and atomic writing.

Conventions (ARCHITECTURE.md): boxes are ``x1, y1, x2, y2`` float32 in absolute pixels of the
original image, kept exactly as the dataset gives them (HICO-DET's are 1-based pixel indices);
``image_id`` is the image file stem; categories and verbs keep the dataset's official ids.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import UserError

BOX = [("x1", pa.float32()), ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32())]
NUM_KEYPOINTS = 17  # COCO-17 order, (x, y, score) each
NUM_PARTS = 10  # HAKE parts, order in PART_NAMES

PART_NAMES = (
    "right_foot", "right_leg", "left_leg", "left_foot", "hip",
    "head", "right_hand", "right_arm", "left_arm", "left_hand",
)
PART_GROUP_NAMES = ("foot", "leg", "hip", "hand", "arm", "head")
# part index -> group index (foot {0,3}, leg {1,2}, hip {4}, hand {6,9}, arm {7,8}, head {5})
PART_TO_GROUP = (0, 1, 1, 0, 2, 5, 3, 4, 4, 3)
# a horizontal flip maps part i to FLIP_PARTS[i]
FLIP_PARTS = (3, 2, 1, 0, 4, 5, 9, 8, 7, 6)

SCHEMAS: dict[str, pa.Schema] = {
    # one row per image file of every split, annotated or not
    "images": pa.schema([
        ("image_id", pa.string()),
        ("split", pa.string()),  # train | test
        ("file", pa.string()),  # path relative to the dataset root
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("annotated", pa.bool_()),  # False for images the annotation file omits
    ]),
    # one row per annotated box; index = position in the file's annotation list
    "instances": pa.schema([
        ("image_id", pa.string()),
        ("index", pa.int32()),
        ("category_id", pa.int32()),  # COCO category id, 1 = person
        *BOX,
    ]),
    # one row per annotated (subject, object, verb); object null when the pair has no object
    "pairs": pa.schema([
        ("image_id", pa.string()),
        ("subject", pa.int32()),  # instance index of the person
        ("object", pa.int32()),  # instance index of the object, null = none (V-COCO)
        ("verb_id", pa.int32()),  # HICO-DET verb id 1..117 | V-COCO action id 1..26
        ("hoi_id", pa.int32()),  # HICO-DET HOI id 1..600, null for V-COCO
        ("role", pa.string()),  # V-COCO role (obj | instr), null for HICO-DET and agent-only
    ]),
    # one row per person found by the pose backend
    "persons": pa.schema([
        ("image_id", pa.string()),
        ("person", pa.int32()),  # index of the person within the image
        *BOX,
        ("score", pa.float32()),  # detection score in [0, 1]
        # 17 COCO keypoints flattened as x0, y0, s0, x1, ...; null when the backend has none
        ("keypoints", pa.list_(pa.float32(), NUM_KEYPOINTS * 3)),
        # 10 HAKE part boxes flattened (x1, y1, x2, y2 per part) when the backend supplies
        # them (the official part files); null otherwise
        ("part_boxes", pa.list_(pa.float32(), NUM_PARTS * 4)),
        ("backend", pa.string()),
    ]),
    # one row per (person, part): ten rows per person, in PART_NAMES order
    "parts": pa.schema([
        ("image_id", pa.string()),
        ("person", pa.int32()),
        ("part", pa.int8()),  # 0..9, PART_NAMES
        ("group", pa.int8()),  # 0..5, PART_GROUP_NAMES
        *BOX,
        ("fallback", pa.bool_()),  # True when the box is the whole-body box
    ]),
    # one row per image (every split): scene statistics, hard-case splits, sampler weight;
    # rules and thresholds in pipeline/scenes.py (params: scenes, train.alpha)
    "scenes": pa.schema([
        ("image_id", pa.string()),
        ("split", pa.string()),  # dataset split: train | test
        ("person_boxes", pa.int32()),  # annotated person boxes before merging duplicates
        ("persons", pa.int32()),  # distinct annotated persons (near-duplicates merged)
        ("pose_persons", pa.int32()),  # persons found by the pose backend
        ("matched_pose", pa.int32()),  # annotated persons matched to a pose person
        ("pairs", pa.int32()),  # distinct (person, object) pairs
        ("interactive_pairs", pa.int32()),  # ... with a verb other than no_interaction
        ("min_person_area", pa.float32()),  # smallest person box / image area; null: none
        ("median_person_area", pa.float32()),
        ("max_person_iou", pa.float32()),  # largest IoU of two distinct persons; null: < 2
        ("max_person_cover", pa.float32()),  # largest intersection / smaller box area
        ("low_conf_keypoints", pa.float32()),  # matched pose persons' low-score keypoint share
        ("part_fallback", pa.float32()),  # matched pose persons' fallback part-box share
        ("crowded", pa.bool_()),  # False = sparse
        ("tiny", pa.bool_()),  # False = normal
        ("occluded", pa.bool_()),  # False = less occlusion
        ("sample_weight", pa.float32()),  # sparsity-adaptive sampling weight (alpha | 1)
    ]),
    # one row per HOI triplet after post-processing (model/postprocess.py: NIS, pair NMS,
    # top-K); boxes in the original image's pixels, the dataset's own frame
    "predictions": pa.schema([
        ("image_id", pa.string()),
        ("query", pa.int32()),  # stage-2 query (pair) index within the image
        ("hx1", pa.float32()), ("hy1", pa.float32()), ("hx2", pa.float32()), ("hy2", pa.float32()),
        ("ox1", pa.float32()), ("oy1", pa.float32()), ("ox2", pa.float32()), ("oy2", pa.float32()),  # NaN: V-COCO missing object
        ("category_id", pa.int32()),  # COCO id of the predicted object, null = V-COCO missing object
        ("verb_id", pa.int32()),  # HICO-DET verb id 1..117 | V-COCO action id 1..26
        ("hoi_id", pa.int32()),  # HICO-DET HOI id 1..600, null for V-COCO
        ("role", pa.string()),  # V-COCO role (obj | instr), null for HICO-DET and agent-only
        ("score", pa.float32()),  # verb x object probability (x interactiveness with NIS "product")
        ("interactiveness", pa.float32()),  # matched stage-1 pair's probability, NaN without stage 1
        ("part_scores", pa.list_(pa.float32(), 6)),  # matched stage-1 part scores, PART_GROUP_NAMES order
    ]),
    # one row per stage-1 query: the pairs ranked by the interactiveness AP
    "pair_predictions": pa.schema([
        ("image_id", pa.string()),
        ("query", pa.int32()),
        ("hx1", pa.float32()), ("hy1", pa.float32()), ("hx2", pa.float32()), ("hy2", pa.float32()),
        ("ox1", pa.float32()), ("oy1", pa.float32()), ("ox2", pa.float32()), ("oy2", pa.float32()),  # NaN: V-COCO missing object
        ("category_id", pa.int32()),  # null when unknown or V-COCO missing object
        ("interactiveness", pa.float32()),
        ("part_scores", pa.list_(pa.float32(), 6)),
    ]),
}


class TableError(UserError):
    """A table file that is missing, unreadable, or does not match its schema."""


def empty(name: str) -> pd.DataFrame:
    """An empty frame with the columns and dtypes of table ``name``."""
    return SCHEMAS[name].empty_table().to_pandas()


def to_arrow(df: pd.DataFrame, name: str) -> pa.Table:
    """Convert ``df`` to table ``name``'s schema (column order and types), naming what is wrong."""
    schema = SCHEMAS[name]
    missing = [f.name for f in schema if f.name not in df.columns]
    if missing:
        raise TableError(f"table '{name}': missing column(s) {missing}")
    try:
        return pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise TableError(f"table '{name}': {exc}") from None


def write(df: pd.DataFrame, name: str, path: str | Path) -> Path:
    """Write ``df`` as table ``name`` to ``path`` atomically (temporary file + rename)."""
    table = to_arrow(df, name)
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def write_arrow(table: pa.Table, name: str, path: str | Path) -> Path:
    """Write an arrow ``table`` as table ``name`` atomically (columns selected and cast to the
    schema; for large tables built without pandas)."""
    try:
        table = table.select(SCHEMAS[name].names).cast(SCHEMAS[name])
    except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        raise TableError(f"table '{name}': {exc}") from None
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def read(path: str | Path, name: str) -> pd.DataFrame:
    """Read table ``name`` from ``path``; refuse a file whose columns do not match the schema."""
    return read_arrow(path, name).to_pandas()


def read_arrow(path: str | Path, name: str) -> pa.Table:
    """Like :func:`read`, as an arrow table (list columns stay flat buffers: fast to numpy)."""
    path = Path(path)
    if not path.exists():
        raise TableError(f"{path}: file not found (table '{name}'; run the stage that writes it)")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TableError(f"{path}: not a readable parquet file ({exc})") from None
    schema = SCHEMAS[name]
    for field in schema:
        if field.name not in table.column_names:
            raise TableError(f"{path}: column '{field.name}' missing (table '{name}')")
        if not table.schema.field(field.name).type.equals(field.type):
            raise TableError(
                f"{path}: column '{field.name}' has type {table.schema.field(field.name).type}, "
                f"expected {field.type} (table '{name}')"
            )
    return table.select(schema.names)


def atomic_write(path: str | Path, writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp)`` on a temporary file beside ``path``, then rename it into place, so
    that a crash never leaves a truncated file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_json(obj: object, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON atomically (metrics, summaries)."""
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))
