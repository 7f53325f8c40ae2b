"""The image files of a split: which ones exist, and their size from the file header.

Sizes (and by default a full decode of every file, in parallel) come from
:mod:`pipeline.readers.image_check`; ``read_sizes`` is re-exported here for the ingest stage.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from model.common.errors import UserError, quote_name
from pipeline.readers.image_check import read_sizes  # noqa: F401 - re-exported
from pipeline.readers.layout import IMAGE_SUFFIXES, SplitLayout


def list_images(root: Path, layout: SplitLayout, names: Sequence[str]) -> pd.DataFrame:
    """One row per image of the split, JSON records first (in file order), then the folder's
    other image files (sorted by name) when the layout lists whole folders.

    Columns: file_name, image_id (file stem), file (path relative to ``root``, POSIX), rec
    (record position in the JSON, -1 for a file the JSON omits), exists (bool).
    """
    folders = sorted({layout.image_dir(n) for n in names} | ({layout.default_dir} if layout.list_folder else set()))
    present = {folder: _folder_files(root, folder, layout.annotation) for folder in folders}
    dirs = [layout.image_dir(n) for n in names]
    rows = pd.DataFrame({
        "file_name": list(names),
        "file": [f"{d}/{n}" for d, n in zip(dirs, names, strict=True)],
        "rec": np.arange(len(names), dtype=np.int64),
        "exists": np.array([n in present[d] for d, n in zip(dirs, names, strict=True)], dtype=bool),
    })
    if layout.list_folder:
        extra = sorted(present[layout.default_dir] - set(names))
        rows = pd.concat([rows, pd.DataFrame({
            "file_name": extra,
            "file": [f"{layout.default_dir}/{n}" for n in extra],
            "rec": np.full(len(extra), -1, dtype=np.int64),
            "exists": np.ones(len(extra), dtype=bool),
        })], ignore_index=True)
    rows.insert(1, "image_id", [Path(n).stem for n in rows["file_name"]])
    _check_unique_ids(rows, layout)
    return rows


def _folder_files(root: Path, folder: str, needed_by: str) -> set[str]:
    path = root / folder
    if not path.is_dir():
        raise UserError(f"{path}: image folder not found (needed by {needed_by}; check dataset.root)")
    try:
        with os.scandir(path) as entries:
            return {e.name for e in entries if e.is_file() and Path(e.name).suffix.lower() in IMAGE_SUFFIXES}
    except OSError as exc:
        raise UserError(f"{path}: cannot list the image folder ({exc.strerror})") from None


def _check_unique_ids(rows: pd.DataFrame, layout: SplitLayout) -> None:
    dup = rows["image_id"].duplicated(keep=False)
    if dup.any():
        files = rows.loc[dup, "file"].head(2).tolist()
        raise UserError(
            f"{layout.annotation}: image id '{quote_name(rows.loc[dup, 'image_id'].iloc[0])}' names two files "
            f"({quote_name(files[0])}, {quote_name(files[1])}); image ids are file stems and must be unique"
        )
