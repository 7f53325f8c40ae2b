"""Building ``predictions`` / ``pair_predictions`` tables (pipeline/tables.py schemas) from
plain columns: absent optional columns are filled with nulls of the schema's type, so importers
only state what their source knows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import tables

HUMAN = ("hx1", "hy1", "hx2", "hy2")
OBJECT = ("ox1", "oy1", "ox2", "oy2")


def conform(columns: dict[str, object], name: str = "predictions") -> pd.DataFrame:
    """A frame with every column of table ``name``: the given ones, the rest null (NaN for
    float columns). Sorted by image_id, query (stable)."""
    schema = tables.SCHEMAS[name]
    n = len(next(iter(columns.values()))) if columns else 0
    data = {}
    for field in schema:
        if field.name in columns:
            data[field.name] = columns[field.name]
        elif str(field.type).startswith("float"):
            data[field.name] = np.full(n, np.nan, dtype=np.float32)
        else:
            data[field.name] = pd.Series([None] * n, dtype=object)
    frame = pd.DataFrame(data)
    tables.to_arrow(frame, name)  # fail here, naming the column, rather than at write time
    return frame.sort_values(["image_id", "query"], kind="stable", ignore_index=True)


def write(frame: pd.DataFrame, path: Path, name: str = "predictions") -> Path:
    return tables.write(frame, name, path)


def read(path: Path, name: str = "predictions") -> pd.DataFrame:
    return tables.read(path, name)


def boxes(frame: pd.DataFrame, cols: tuple[str, ...]) -> np.ndarray:
    """[N, 4] float64 box columns."""
    return frame[list(cols)].to_numpy(np.float64)


def int_column(frame: pd.DataFrame, col: str, missing: int = -1) -> np.ndarray:
    """An integer column with nulls as ``missing``."""
    return pd.to_numeric(frame[col], errors="coerce").fillna(missing).to_numpy(np.int64)


def nullable_int(values: np.ndarray, valid: np.ndarray) -> pd.arrays.IntegerArray:
    """An Int32 column holding ``values`` where ``valid``, null elsewhere."""
    return pd.arrays.IntegerArray(np.where(valid, values, 0).astype(np.int32), ~np.asarray(valid, dtype=bool))
