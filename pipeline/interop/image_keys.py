"""Image ids (file stems, ARCHITECTURE conventions) and the integer keys other tools use: the
number at the end of the file name (HICO ``HICO_test2015_00000001`` -> 1, COCO
``COCO_val2014_000000000042`` -> 42)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import tables
from model.common.errors import UserError

# test-split file stems when no image list is given: HICO-DET test, V-COCO test (COCO val2014)
DEFAULT_PATTERNS = {"hico-det": "HICO_test2015_{:08d}", "v-coco": "COCO_val2014_{:012d}"}


def number(image_id: str) -> int:
    """The integer at the end of an image id or file name."""
    match = re.search(r"(\d+)\D*$", str(image_id))
    if match is None:
        raise UserError(f"image id '{image_id}' ends with no number")
    return int(match.group(1))


class KeyMap:
    """Integer key -> image id, from the image ids of one split."""

    def __init__(self, image_ids: Iterable[str]) -> None:
        self._ids: dict[int, str] = {}
        for image_id in image_ids:
            key = number(image_id)
            other = self._ids.setdefault(key, image_id)
            if other != image_id:
                raise UserError(f"image ids '{other}' and '{image_id}' share the number {key}; pass one split only")

    def known(self, keys: Sequence[int]) -> np.ndarray:
        """[N] bool: the key names one of the images given."""
        return np.fromiter((int(k) in self._ids for k in keys), dtype=bool, count=len(keys))

    def ids(self, keys: Sequence[int]) -> np.ndarray:
        """Image id of each key; a UserError names the first unknown key."""
        out = [self._ids.get(int(k)) for k in keys]
        if None in out:
            raise UserError(f"image key {keys[out.index(None)]} is not among the {len(self._ids)} images given")
        return np.asarray(out, dtype=object)


def pattern_map(dataset: str, keys: Iterable[int]) -> KeyMap:
    """Keys named after the dataset's test split (``DEFAULT_PATTERNS``)."""
    return KeyMap(DEFAULT_PATTERNS[dataset].format(int(k)) for k in set(keys))


def split_ids(images_table: Path, split: str = "test") -> list[str]:
    """Sorted image ids of ``split`` in an images table (every file of the split folder)."""
    images = tables.read(images_table, "images")
    ids = sorted(images.loc[images["split"] == split, "image_id"].astype(str))
    if not ids:
        raise UserError(f"{images_table}: no image of split '{split}'")
    return ids


def codes(image_ids: pd.Series, ordered: Sequence[str]) -> np.ndarray:
    """Position of each id in ``ordered`` (-1 when absent), vectorised."""
    cat = pd.Categorical(np.asarray(image_ids, dtype=object), categories=list(ordered))
    return np.asarray(cat.codes, dtype=np.int64)


def test_image_ids(images_table: Path | None = None, image_list: Path | None = None,
                   anno_mat: Path | None = None) -> list[str] | None:
    """The ordered test image ids from the first source given: HICO-DET's ``anno.mat``
    (``list_test``, the official order), a text file (one id or file name per line), or an
    images table (test split, sorted). None when no source is given or the table is absent."""
    if anno_mat is not None:
        from pipeline.interop.hico_mat import load_mat

        mat = load_mat(anno_mat)
        if "list_test" not in mat:
            raise UserError(f"{anno_mat}: variable 'list_test' missing (is this anno.mat?)")
        return [Path(str(n)).stem for n in np.atleast_1d(mat["list_test"])]
    if image_list is not None:
        try:
            return [Path(line.strip()).stem for line in image_list.read_text().splitlines() if line.strip()]
        except FileNotFoundError:
            raise UserError(f"{image_list}: file not found") from None
    if images_table is not None and images_table.exists():
        return split_ids(images_table, "test")
    return None
