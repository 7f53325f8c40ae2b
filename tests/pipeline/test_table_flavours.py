"""Table readers accept the arrow flavours a pandas round-trip writes (issue 19)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import tables


def plain_pandas_persons(path: Path) -> None:
    """A persons table as plain pandas writes it: large_string ids, int64, double, a keypoints
    column of float32 arrays and a part_boxes column of None only (arrow type null)."""
    df = pd.DataFrame({"image_id": ["a", "b"], "person": [0, 1], "x1": [0.0, 1.5], "y1": [0.0, 1.0],
                       "x2": [2.0, 3.0], "y2": [2.0, 3.0], "score": [0.5, 0.25],
                       "keypoints": [np.arange(51, dtype=np.float32), None], "part_boxes": [None, None],
                       "backend": ["x", "y"]})
    df.to_parquet(path)


def test_plain_pandas_persons_table_is_read(tmp_path: Path) -> None:
    path = tmp_path / "persons.parquet"
    plain_pandas_persons(path)
    assert "large" in str(pq.read_schema(path).field("image_id").type)
    table = tables.read_arrow(path, "persons")
    assert table.schema.equals(tables.SCHEMAS["persons"])
    df = table.to_pandas()
    assert df["image_id"].tolist() == ["a", "b"] and df["x1"].tolist() == [0.0, 1.5]
    assert df["keypoints"][0][50] == 50.0 and df["keypoints"][1] is None and df["part_boxes"].isna().all()


@pytest.mark.parametrize("string_type", [pa.large_string(), pa.string_view()])
@pytest.mark.parametrize("list_type", [pa.large_list(pa.float64()), pa.list_(pa.float32())])
def test_every_string_and_list_flavour(tmp_path: Path, string_type: pa.DataType, list_type: pa.DataType) -> None:
    frame = tables.empty("predictions")
    good = tables.to_arrow(pd.DataFrame({**{c: [1] for c in frame.columns if c not in ("image_id", "role", "part_scores")},
                                         "image_id": ["i"], "role": [None], "part_scores": [[0.5] * 6]}), "predictions")
    cols = {f.name: good.column(f.name) for f in good.schema}
    cols["image_id"] = cols["image_id"].cast(string_type)
    cols["role"] = cols["role"].cast(pa.large_string())
    cols["part_scores"] = pa.chunked_array([pa.array([[0.5] * 6], type=list_type)])
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table(cols), path)
    back = tables.read(path, "predictions")
    assert back["image_id"].tolist() == ["i"] and list(back["part_scores"][0]) == [0.5] * 6


def test_integer_that_does_not_fit_is_one_line_error(tmp_path: Path) -> None:
    df = pd.DataFrame({"image_id": ["a"], "split": ["train"], "file": ["a.jpg"], "width": [2**40],
                       "height": [1], "annotated": [True]})
    path = tmp_path / "images.parquet"
    df.to_parquet(path)
    with pytest.raises(tables.TableError, match=r"column 'width' of type int64 does not fit int32"):
        tables.read(path, "images")


def test_other_kinds_are_still_refused(tmp_path: Path) -> None:
    df = pd.DataFrame({"image_id": ["a"], "split": ["train"], "file": ["a.jpg"], "width": ["wide"],
                       "height": [1], "annotated": [True]})
    path = tmp_path / "images.parquet"
    df.to_parquet(path)
    with pytest.raises(tables.TableError, match="column 'width' has type"):
        tables.read(path, "images")
