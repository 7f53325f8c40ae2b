"""Turn parquet tables (pipeline/tables.py schemas) into the flat arrays the evaluators use.

Images are addressed by an int64 code: the position of the image id in the sorted list of the
evaluated image ids (sorted so that codes, and with them the tie rule, do not depend on the
order of any input table). Boxes become float64 [N, 4] x1, y1, x2, y2 in the tables' pixel
frame (for HICO-DET the dataset's 1-based pixel indices, unchanged).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from model.common.errors import UserError

HUMAN_COLS = ("hx1", "hy1", "hx2", "hy2")
OBJECT_COLS = ("ox1", "oy1", "ox2", "oy2")
BOX_COLS = ("x1", "y1", "x2", "y2")


@dataclass(frozen=True)
class ImageIndex:
    """The evaluated image set: sorted ids and their int codes."""

    ids: tuple[str, ...]

    @classmethod
    def of(cls, image_ids: Iterable[str]) -> ImageIndex:
        return cls(tuple(sorted(set(map(str, image_ids)))))

    def __len__(self) -> int:
        return len(self.ids)

    def codes(self, image_ids: pd.Series | np.ndarray) -> np.ndarray:
        """[N] int64 code of each id, -1 for ids outside the evaluated set."""
        cat = pd.Categorical(np.asarray(image_ids, dtype=object), categories=list(self.ids))
        return np.asarray(cat.codes, dtype=np.int64)


@dataclass(frozen=True)
class PairGroundTruth:
    """Annotated (human, object) pairs: image code, boxes and, for HICO-DET, the HOI id.

    Row order is the pairs table's order (ties between ground truths go to the earlier row).
    """

    image: np.ndarray  # [M] int64
    human: np.ndarray  # [M, 4] float64
    obj: np.ndarray  # [M, 4] float64
    label: np.ndarray  # [M] int64 HOI id (HICO-DET) or verb id
    verb: np.ndarray  # [M] int64 verb id

    def subset(self, mask: np.ndarray) -> PairGroundTruth:
        return PairGroundTruth(self.image[mask], self.human[mask], self.obj[mask], self.label[mask], self.verb[mask])


def split_image_ids(images_df: pd.DataFrame, split: str) -> ImageIndex:
    """Every image of ``split`` in the images table, annotated or not (decision 9)."""
    ids = images_df.loc[images_df["split"] == split, "image_id"]
    if len(ids) == 0:
        raise UserError(f"images table: no image with split '{split}'")
    return ImageIndex.of(ids)


def pair_ground_truth(pairs_df: pd.DataFrame, instances_df: pd.DataFrame, index: ImageIndex) -> PairGroundTruth:
    """Join pairs with their subject and object boxes, restricted to the evaluated images.

    Pairs without an object (V-COCO agent-only or role-less) get NaN object boxes.
    Every pair row is one ground truth: no de-duplication (HICO-DET near-duplicates count).
    """
    pairs = pairs_df.assign(_image=index.codes(pairs_df["image_id"]))
    pairs = pairs[pairs["_image"] >= 0].reset_index(drop=True)
    boxes = instances_df[["image_id", "index", *BOX_COLS]]
    human = _lookup_boxes(pairs, boxes, "subject")
    obj = _lookup_boxes(pairs, boxes, "object")
    if np.isnan(human).any():
        bad = pairs.loc[np.isnan(human[:, 0]), ["image_id", "subject"]].iloc[0]
        raise UserError(f"pairs table: subject {bad['subject']} of image '{bad['image_id']}' "
                        "is not in the instances table")
    label = _int_column(pairs, "hoi_id")
    return PairGroundTruth(pairs["_image"].to_numpy(np.int64), human, obj, label, _int_column(pairs, "verb_id"))


def _lookup_boxes(pairs: pd.DataFrame, boxes: pd.DataFrame, column: str) -> np.ndarray:
    """[M, 4] boxes of instance ``pairs[column]`` (NaN where the pair has none)."""
    key = pairs[["image_id", column]].rename(columns={column: "index"})
    key["index"] = pd.to_numeric(key["index"]).astype("Float64")
    right = boxes.assign(index=boxes["index"].astype("Float64"))
    try:
        merged = key.merge(right, on=["image_id", "index"], how="left", validate="many_to_one")
    except pd.errors.MergeError:
        raise UserError("instances table: an (image_id, index) appears more than once") from None
    return merged[list(BOX_COLS)].to_numpy(np.float64, na_value=np.nan)


def _int_column(df: pd.DataFrame, column: str) -> np.ndarray:
    """Nullable integer column as int64 with -1 for null."""
    return pd.to_numeric(df[column]).fillna(-1).to_numpy(np.int64)


def boxes_of(df: pd.DataFrame, cols: tuple[str, ...]) -> np.ndarray:
    """[N, 4] float64 box columns of a predictions table."""
    return df[list(cols)].to_numpy(np.float64, na_value=np.nan)


def int_or_missing(df: pd.DataFrame, column: str) -> np.ndarray:
    """Nullable integer column (e.g. hoi_id, category_id) as int64, -1 for null."""
    return _int_column(df, column)


def part_matrix(series: pd.Series, n_parts: int = 6) -> np.ndarray:
    """[N, n_parts] float64 from a list<float32> column (NaN rows where the list is null)."""
    out = np.full((len(series), n_parts), np.nan)
    values = series.to_numpy(dtype=object)
    present = np.fromiter((_is_vector(v, n_parts) for v in values), bool, len(values))
    if present.any():
        out[present] = np.stack(values[present]).astype(np.float64)
    return out


def _is_vector(value: object, n: int) -> bool:
    return isinstance(value, (np.ndarray, list, tuple)) and len(value) == n
