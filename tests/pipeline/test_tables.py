"""pipeline/tables.py: every table with a fixed-size list column (persons' keypoints and
part boxes, the predictions' part scores) is written in a form every supported pyarrow reads
back, null rows included, and read back exactly.

Regression: pyarrow releases without the fix of apache/arrow#35692 write a null fixed-size list
to parquet but cannot read it ("Expected all lists to be of size=40 but index 1 had size=0"); the
pose stage wrote ``part_boxes`` (null for the alphapose, coco and ultralytics backends) that way,
so the parts stage could not read persons.parquet there. The file must store no fixed-size list.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import tables
from pipeline.pose_backends.shards import ShardStore

FIXED_LIST_TABLES = [name for name, schema in tables.SCHEMAS.items()
                     if any(pa.types.is_fixed_size_list(f.type) for f in schema)]


def frame_with_null_lists(name: str, rows: int = 4) -> pd.DataFrame:
    """``rows`` rows of table ``name``; fixed-size list columns null in row 0 (the pattern old
    readers fail on) and row 2, filled elsewhere."""
    rng = np.random.default_rng(0)
    data = {}
    for field in tables.SCHEMAS[name]:
        t = field.type
        if pa.types.is_fixed_size_list(t):
            value = ((lambda: rng.integers(0, 2, t.list_size).astype(np.int8)) if pa.types.is_integer(t.value_type)
                     else (lambda: rng.random(t.list_size).astype(np.float32)))
            data[field.name] = pd.Series([None if i in (0, 2) else value() for i in range(rows)], dtype=object)
        elif pa.types.is_string(t):
            # two rows per image, except in the images table, whose image_id is unique
            data[field.name] = [f"img_{i if name == 'images' else i // 2}" for i in range(rows)]
        elif pa.types.is_floating(t):
            data[field.name] = rng.random(rows).astype(np.float32)
        elif pa.types.is_integer(t):
            data[field.name] = np.arange(rows).astype(t.to_pandas_dtype())
        elif pa.types.is_boolean(t):
            data[field.name] = np.arange(rows) % 2 == 0
        else:  # pragma: no cover - a new column type: extend this helper
            raise AssertionError(f"{name}.{field.name}: {t}")
    return pd.DataFrame(data)


def stored_fixed_size_lists(path) -> list[str]:
    """Columns the parquet file's stored arrow schema declares as fixed-size lists."""
    return [f.name for f in pq.read_schema(path) if pa.types.is_fixed_size_list(f.type)]


def assert_same_lists(a: pd.Series, b: pd.Series) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_array_equal(np.asarray(x, np.float32), np.asarray(y, np.float32))


def test_tables_with_fixed_size_lists_are_known() -> None:
    assert set(FIXED_LIST_TABLES) == {"persons", "pairs", "predictions", "pair_predictions"}


@pytest.mark.parametrize("name", FIXED_LIST_TABLES)
@pytest.mark.parametrize("how", ["write", "write_arrow"])
def test_null_fixed_size_lists_round_trip_in_a_portable_file(tmp_path, name, how) -> None:
    df = frame_with_null_lists(name)
    path = tmp_path / f"{name}.parquet"
    if how == "write":
        tables.write(df, name, path)
    else:
        tables.write_arrow(pa.Table.from_pandas(df, preserve_index=False), name, path)
    assert stored_fixed_size_lists(path) == []  # fails before the fix: old pyarrow cannot read these
    back = tables.read(path, name)
    assert list(back.columns) == tables.SCHEMAS[name].names
    assert tables.read_arrow(path, name).schema.equals(tables.SCHEMAS[name])
    for field in tables.SCHEMAS[name]:
        if pa.types.is_fixed_size_list(field.type):
            assert_same_lists(back[field.name], df[field.name])
        else:
            np.testing.assert_array_equal(back[field.name].to_numpy(), df[field.name].to_numpy())


@pytest.mark.parametrize("name", FIXED_LIST_TABLES)
def test_empty_and_all_null_tables_round_trip(tmp_path, name) -> None:
    tables.write(tables.empty(name), name, tmp_path / "empty.parquet")
    assert tables.read(tmp_path / "empty.parquet", name).empty
    df = frame_with_null_lists(name)
    for field in tables.SCHEMAS[name]:
        if pa.types.is_fixed_size_list(field.type):
            df[field.name] = pd.Series([None] * len(df), dtype=object)
    tables.write(df, name, tmp_path / "null.parquet")
    assert stored_fixed_size_lists(tmp_path / "null.parquet") == []
    back = tables.read(tmp_path / "null.parquet", name)
    assert all(back[f.name].isna().all() for f in tables.SCHEMAS[name] if pa.types.is_fixed_size_list(f.type))


def test_a_list_of_the_wrong_length_on_disk_is_a_one_line_error(tmp_path) -> None:
    table = tables.storage_form(tables.to_arrow(frame_with_null_lists("persons"), "persons"))
    boxes = pa.array([None, [1.0] * 40, None, []], pa.list_(pa.float32()))
    table = table.set_column(table.schema.get_field_index("part_boxes"), "part_boxes", boxes)
    pq.write_table(table, tmp_path / "persons.parquet")
    with pytest.raises(tables.TableError) as err:
        tables.read(tmp_path / "persons.parquet", "persons")
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "persons.parquet") in message
    assert "column 'part_boxes' row 3 (image img_1) has 0 values, expected 40" in message


def test_files_of_earlier_versions_still_read(tmp_path) -> None:
    """Files stored with fixed-size list columns (before the fix) read as before where pyarrow
    can (no null rows here, which every release reads)."""
    df = frame_with_null_lists("persons")
    df["part_boxes"] = pd.Series([np.zeros(40, np.float32)] * len(df), dtype=object)
    df["keypoints"] = pd.Series([np.ones(51, np.float32)] * len(df), dtype=object)
    pq.write_table(tables.to_arrow(df, "persons"), tmp_path / "old.parquet")
    assert stored_fixed_size_lists(tmp_path / "old.parquet") == ["keypoints", "part_boxes"]
    back = tables.read(tmp_path / "old.parquet", "persons")
    assert_same_lists(back["part_boxes"], df["part_boxes"])


def test_pose_shards_store_portable_lists_and_keep_their_metadata(tmp_path) -> None:
    store = ShardStore(tmp_path, {"weights": "w"})
    df = frame_with_null_lists("persons")
    path = store.write(0, df, ["img_0", "img_1", "img_9"])
    assert stored_fixed_size_lists(path) == []
    assert sorted(store.done()) == ["img_0", "img_1", "img_9"]
    merged = store.merge(pd.Series({"img_0": 0, "img_1": 1, "img_9": 2}))
    assert_same_lists(merged["part_boxes"], df["part_boxes"])
    assert_same_lists(merged["keypoints"], df["keypoints"])


def test_a_file_that_cannot_be_read_back_is_never_left_behind(tmp_path, monkeypatch) -> None:
    """The list columns are read back before the file is renamed into place (here the read is
    made to fail as pyarrow without the fix of apache/arrow#35692 fails)."""
    path = tmp_path / "persons.parquet"
    tables.write(frame_with_null_lists("persons"), "persons", path)  # an earlier good file stays

    def unreadable(*args, **kwargs):
        raise pa.ArrowInvalid("Expected all lists to be of size=40 but index 1 had size=0")

    monkeypatch.setattr(tables.pq, "read_table", unreadable)
    with pytest.raises(tables.TableError, match="cannot read back what it wrote.*nothing written"):
        tables.write(frame_with_null_lists("persons"), "persons", tmp_path / "new.parquet")
    assert not (tmp_path / "new.parquet").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["persons.parquet"]  # no temporary file
    monkeypatch.undo()
    assert len(tables.read(path, "persons")) == 4


def test_optional_columns_are_null_when_a_frame_or_an_old_file_lacks_them(tmp_path) -> None:
    """``pairs.part_labels`` and ``images.scene_kind`` came later: producers that do not know
    them write nulls, and files written before them read back with null columns."""
    pairs = frame_with_null_lists("pairs").drop(columns="part_labels")
    back = tables.read(tables.write(pairs, "pairs", tmp_path / "pairs.parquet"), "pairs")
    assert list(back.columns) == tables.SCHEMAS["pairs"].names and back["part_labels"].isna().all()
    images = frame_with_null_lists("images")
    old = tables.to_arrow(images, "images").drop_columns("scene_kind")
    pq.write_table(old, tmp_path / "images.parquet")  # as the pipeline wrote it before
    back = tables.read(tmp_path / "images.parquet", "images")
    assert back["scene_kind"].isna().all() and list(back["image_id"]) == list(images["image_id"])
    arrow = tables.write_arrow(old, "images", tmp_path / "images2.parquet")
    assert tables.read(arrow, "images")["scene_kind"].isna().all()


def test_part_labels_round_trip_as_int8_lists(tmp_path) -> None:
    pairs = frame_with_null_lists("pairs")
    pairs["part_labels"] = pd.Series([[1, 1, 0, 0, 0, 0], None, [0] * 6, [0, 0, 0, 1, 1, 0]], dtype=object)
    back = tables.read(tables.write(pairs, "pairs", tmp_path / "pairs.parquet"), "pairs")
    assert back["part_labels"].iloc[1] is None
    assert [list(v) for v in back["part_labels"].iloc[[0, 2, 3]]] == [[1, 1, 0, 0, 0, 0], [0] * 6, [0, 0, 0, 1, 1, 0]]
    assert tables.read_arrow(tmp_path / "pairs.parquet", "pairs").schema.field("part_labels").type == \
        pa.list_(pa.int8(), 6)
