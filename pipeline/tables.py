"""Every parquet table of the pipeline: its pyarrow schema (the one place they are defined),
validated reading and atomic writing.

Conventions (ARCHITECTURE.md): boxes are ``x1, y1, x2, y2`` float32 in absolute pixels of the
original image, kept exactly as the dataset gives them (HICO-DET's are 1-based pixel indices);
``image_id`` is the image file stem; categories and verbs keep the dataset's official ids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from model.common.atomic_io import atomic_write, sweep_temporaries, write_json  # noqa: F401 (the tables' writers)
from model.common.body_parts import (  # noqa: F401 (the schemas' vocabulary, read from here by pipeline code)
    FLIP_PARTS, NUM_KEYPOINTS, NUM_PARTS, PART_GROUP_NAMES, PART_NAMES, PART_TO_GROUP,
)
from model.common.errors import UserError, quote_name
from pipeline import runlog

BOX = [("x1", pa.float32()), ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32())]
SCHEMAS: dict[str, pa.Schema] = {
    # one row per image file of every split, annotated or not
    "images": pa.schema([
        ("image_id", pa.string()),
        ("split", pa.string()),  # train | test
        ("file", pa.string()),  # path relative to the dataset root
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("annotated", pa.bool_()),  # False for images the annotation file omits
        # the record's optional "scene" tag (synthetic data: its scene kind); null = none
        ("scene_kind", pa.string()),
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
        # part-level interactiveness, PART_GROUP_NAMES order: 1 = the subject's body part takes
        # part in the interaction; null = unknown (real HICO-DET / V-COCO without HAKE labels)
        ("part_labels", pa.list_(pa.int8(), len(PART_GROUP_NAMES))),
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
        ("scene_kind", pa.string()),  # the images table's scene tag, null = none
        ("cross_person", pa.bool_()),  # scene_kind == "cross_person" (cue only on another person)
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


# nullable columns added after the first release: a frame without one gets it as nulls when
# written, and a file written before it was added reads back with it as nulls
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "images": ("scene_kind",), "pairs": ("part_labels",), "scenes": ("scene_kind", "cross_person"),
}


class TableError(UserError):
    """A table file that is missing, unreadable, or does not match its schema."""


def empty(name: str) -> pd.DataFrame:
    """An empty frame with the columns and dtypes of table ``name``."""
    return SCHEMAS[name].empty_table().to_pandas()


def to_arrow(df: pd.DataFrame, name: str) -> pa.Table:
    """Convert ``df`` to table ``name``'s schema (column order and types), naming what is wrong."""
    schema = SCHEMAS[name]
    absent = [c for c in OPTIONAL_COLUMNS.get(name, ()) if c not in df.columns]
    if absent:
        df = df.assign(**{c: pd.Series([None] * len(df), index=df.index, dtype=object) for c in absent})
    missing = [f.name for f in schema if f.name not in df.columns]
    if missing:
        raise TableError(f"table '{name}': missing column(s) {missing}")
    try:
        return pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise TableError(f"table '{name}': {exc}") from None


def write(df: pd.DataFrame, name: str, path: str | Path) -> Path:
    """Write ``df`` as table ``name`` to ``path`` atomically (temporary file + rename)."""
    return write_parquet(to_arrow(df, name), path)


def write_arrow(table: pa.Table, name: str, path: str | Path) -> Path:
    """Write an arrow ``table`` as table ``name`` atomically (columns selected and cast to the
    schema; for large tables built without pandas)."""
    schema = SCHEMAS[name]
    for column in OPTIONAL_COLUMNS.get(name, ()):
        if column not in table.column_names:
            table = table.append_column(schema.field(column), pa.nulls(table.num_rows, schema.field(column).type))
    try:
        table = table.select(schema.names).cast(schema)
    except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        raise TableError(f"table '{name}': {exc}") from None
    return write_parquet(table, path)


def write_parquet(table: pa.Table, path: str | Path) -> Path:
    """Write an arrow ``table`` (already in its table's schema) to ``path`` atomically, in the
    on-disk form that :func:`read_arrow` reads back: fixed-size list columns stored as
    variable-size lists (:func:`storage_form`), schema metadata kept.

    The list columns (the only ones pyarrow has been known to write but not read) are read
    back from the temporary file before it is renamed into place: a file that cannot be read
    back is never left at ``path``.
    """
    stored = storage_form(table)
    lists = [f.name for f in stored.schema if pa.types.is_list(f.type) or pa.types.is_large_list(f.type)]

    def writer(tmp: Path) -> None:
        pq.write_table(stored, tmp)
        if lists:
            try:
                back = pq.read_table(tmp, columns=lists)
            except (pa.ArrowInvalid, OSError) as exc:
                raise TableError(f"{path}: pyarrow {pa.__version__} cannot read back what it wrote "
                                 f"({exc}); nothing written") from None
            if back.num_rows != stored.num_rows:
                raise TableError(f"{path}: read back {back.num_rows} rows of {stored.num_rows}; nothing written")

    return atomic_write(path, writer)


def storage_form(table: pa.Table) -> pa.Table:
    """``table`` with every fixed-size list column turned into a variable-size list of the same
    values (null rows stay null, and empty).

    Parquet has no fixed-size list type: a fixed-size list column is written as a plain list
    plus a note in the file's stored arrow schema, and pyarrow releases without the fix of
    apache/arrow#35692 cannot read such a column back once it holds a null ("Expected all
    lists to be of size=N but index i had size=0"), although they write it without complaint.
    The ``persons`` table's ``part_boxes`` is null for every backend but ``official``, so its
    file was unreadable there. Plain lists read back on every pyarrow; :func:`read_arrow`
    checks their lengths and restores the fixed size.
    """
    for index, field in enumerate(table.schema):
        if pa.types.is_fixed_size_list(field.type):
            column = _variable_size(table.column(index), pa.list_(field.type.value_field))
            table = table.set_column(index, field.with_type(column.type), column)
    return table


def _variable_size(column: pa.ChunkedArray, list_type: pa.DataType) -> pa.ChunkedArray:
    """A fixed-size list column as variable-size lists, null rows empty: a plain cast would keep
    their N hidden values, which older pyarrow (21, for one) refuses to write ("Lists with
    non-zero length null components are not supported")."""
    size = column.type.list_size
    chunks = []
    for chunk in column.chunks:
        valid = chunk.is_valid().to_numpy(zero_copy_only=False)
        offsets = np.zeros(len(chunk) + 1, np.int64)
        np.cumsum(valid * size, out=offsets[1:])
        offsets = pa.array(offsets).cast(pa.int32())  # raises rather than wraps past 2**31 values
        # flatten() skips null rows and honours the chunk's slice offset
        chunks.append(pa.ListArray.from_arrays(offsets, chunk.flatten(), type=list_type,
                                               mask=pa.array(~valid)))
    return pa.chunked_array(chunks, type=list_type)


def read(path: str | Path, name: str) -> pd.DataFrame:
    """Read table ``name`` from ``path``; refuse a file whose columns do not match the schema."""
    return read_arrow(path, name).to_pandas()


def read_arrow(path: str | Path, name: str) -> pa.Table:
    """Like :func:`read`, as an arrow table (list columns stay flat buffers: fast to numpy)."""
    path = Path(path)
    if not path.exists():
        raise TableError(f"{path}: file not found (table '{name}'; run the stage that writes it)")
    if not path.is_file():  # pyarrow would read a folder as a dataset of whatever it holds
        raise TableError(f"{path}: a directory or not a regular file, expected a parquet file (table '{name}')")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        hint = ""
        if "Expected all lists to be of size" in str(exc):  # apache/arrow#35692: see storage_form
            hint = (f"; written by an earlier version of this pipeline with null fixed-size lists, "
                    f"which pyarrow {pa.__version__} cannot read: run the stage that writes it again")
        raise TableError(f"{path}: not a readable parquet file ({exc}){hint}") from None
    schema = SCHEMAS[name]
    for column in OPTIONAL_COLUMNS.get(name, ()):
        if column not in table.column_names:  # a file written before the column existed
            table = table.append_column(schema.field(column), pa.nulls(table.num_rows, schema.field(column).type))
    for field in schema:
        if field.name not in table.column_names:
            raise TableError(f"{path}: column '{field.name}' missing (table '{name}')")
        table = _normalised(table, field, path, name)
        if pa.types.is_fixed_size_list(field.type):
            table = _restore_fixed_size(table, field, path, name)
        if not table.schema.field(field.name).type.equals(field.type):
            raise TableError(
                f"{path}: column '{field.name}' has type {table.schema.field(field.name).type}, "
                f"expected {field.type} (table '{name}')"
            )
    _check_unique_key(table, path, name)
    runlog.note_read(path, table.num_rows, name)
    return table.select(schema.names)


UNIQUE_KEYS = {"images": "image_id"}  # tables whose key column names each row once


def _check_unique_key(table: pa.Table, path: Path, name: str) -> None:
    """A one-line error when a key column (``UNIQUE_KEYS``) repeats a value (a hand-edited or
    concatenated table: every stage joining on it would mix two images)."""
    key = UNIQUE_KEYS.get(name)
    if key is None or table.num_rows == 0:
        return
    counts = pc.value_counts(table.column(key).combine_chunks())
    repeated = pc.filter(counts, pc.greater(pc.struct_field(counts, "counts"), 1))
    if len(repeated):
        first = repeated[0].as_py()
        raise TableError(f"{path}: {key} {quote_name(first['values'])} appears {first['counts']} times "
                         f"(table '{name}'; {len(repeated)} repeated value(s)): every {key} must be unique")



def _kind(t: pa.DataType) -> str | None:
    """The family of an arrow type for :func:`_normalised`: flavours of one family (string,
    large_string, string_view; list, large_list, list_view; int8..int64; float16..float64) are
    one kind; the all-null type (a column pandas wrote with only None) fits any kind."""
    checks = (("null", pa.types.is_null), ("string", lambda x: pa.types.is_string(x) or pa.types.is_large_string(x)
              or pa.types.is_string_view(x)), ("int", pa.types.is_integer), ("float", pa.types.is_floating),
              ("bool", pa.types.is_boolean), ("list", lambda x: pa.types.is_list(x) or pa.types.is_large_list(x)
              or pa.types.is_list_view(x) or pa.types.is_large_list_view(x) or pa.types.is_fixed_size_list(x)))
    return next((k for k, check in checks if check(t)), None)


def _normalised(table: pa.Table, field: pa.Field, path: Path, name: str) -> pa.Table:
    """Column ``field.name`` cast to the schema's flavour when it holds the same kind of values
    in another arrow flavour, as a pandas round-trip writes them (pandas >= 3 strings are
    ``large_string``, integers int64, floats double, a column of None ``null``). Integer casts
    are checked (a value that does not fit is an error naming the column); float64 -> float32
    rounds. Anything else is left for the caller's type check."""
    column = table.column(field.name)
    have, want = column.type, field.type
    if have.equals(want):
        return table
    kind, wanted = _kind(have), _kind(want)
    if kind is None or (kind != wanted and not (kind == "null" or (kind, wanted) == ("int", "float"))):
        return table
    if kind == "list" and wanted == "list":
        target = pa.list_(want.value_type)  # variable-size first; the fixed size is restored after
        if _kind(have.value_type) not in (_kind(want.value_type), "int", "null"):
            return table
    else:
        target = pa.list_(want.value_type) if pa.types.is_fixed_size_list(want) else want
    try:
        cast = column.cast(target, safe=kind == "int" or _kind(getattr(have, "value_type", have)) == "int")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise TableError(f"{path}: column '{field.name}' of type {have} does not fit {want} "
                         f"(table '{name}'; {exc})") from None
    index = table.schema.get_field_index(field.name)
    return table.set_column(index, pa.field(field.name, target), cast)


def _restore_fixed_size(table: pa.Table, field: pa.Field, path: Path, name: str) -> pa.Table:
    """Cast column ``field.name``, stored as a variable-size list (:func:`storage_form`), back to
    its fixed-size list type; a non-null row of another length is a one-line error naming the
    file, the column and the row (and its image)."""
    column = table.column(field.name)
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        return table  # already fixed-size (files of older versions), or wrong: checked by the caller
    if not column.type.value_type.equals(field.type.value_type):
        return table
    size = field.type.list_size
    lengths = pc.fill_null(pc.list_value_length(column), size).to_numpy()  # null rows pass
    bad = np.flatnonzero(lengths != size)
    if bad.size:
        row = int(bad[0])
        where = f"row {row}"
        if "image_id" in table.column_names:
            where += f" (image {table.column('image_id')[row].as_py()})"
        raise TableError(
            f"{path}: column '{field.name}' {where} has {int(lengths[row])} values, expected {size} "
            f"(table '{name}'; {bad.size} such row(s))"
        )
    index = table.schema.get_field_index(field.name)
    return table.set_column(index, table.schema.field(index).with_type(field.type), column.cast(field.type))
