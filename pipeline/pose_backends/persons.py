"""What every pose backend shares: person arrays, keypoint layouts, image-key lookup, and the
conversion of raw detections into rows of the ``persons`` table.

A backend fills a :class:`PersonArrays` (one row per detected person, missing values as NaN)
and calls :func:`to_persons`, which completes missing boxes from the keypoints' extent, clips
boxes to the image, drops what is unusable and counts every drop by reason.

Conventions: boxes ``x1, y1, x2, y2`` in absolute pixels of the original image; keypoints COCO-17
``(x, y, score)`` with score in [0, 1]; parts in HAKE order (``pipeline.tables.PART_NAMES``).
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from model.common.errors import UserError
from pipeline.tables import NUM_KEYPOINTS, NUM_PARTS

# Keypoints per person -> layout name. In each of them the first 17 points are the COCO-17 body
# points in COCO order (Halpe26/136: 17 head, 18 neck, 19 hip, 20-25 feet, then face and hands;
# COCO-WholeBody: 17-22 feet, 23-90 face, 91-132 hands), so mapping to COCO-17 is a slice.
LAYOUTS = {17: "coco17", 26: "halpe26", 133: "coco_wholebody", 136: "halpe136"}


@dataclass
class PersonArrays:
    """Raw persons of one backend, one row each (N rows).

    image_id: [N] str; box: [N, 4] float x1, y1, x2, y2 pixels, NaN row = no box;
    score: [N] float detection score, NaN = none given; keypoints: [N, 17, 3] float COCO-17
    (x, y, score), NaN row = no keypoints; part_boxes: [N, 10, 4] float, NaN row = none.
    """

    image_id: np.ndarray
    box: np.ndarray
    score: np.ndarray
    keypoints: np.ndarray
    part_boxes: np.ndarray

    @classmethod
    def empty(cls, n: int = 0) -> PersonArrays:
        nan = np.float32(np.nan)
        return cls(
            image_id=np.empty(n, dtype=object),
            box=np.full((n, 4), nan, np.float32),
            score=np.full(n, nan, np.float32),
            keypoints=np.full((n, NUM_KEYPOINTS, 3), nan, np.float32),
            part_boxes=np.full((n, NUM_PARTS, 4), nan, np.float32),
        )

    @classmethod
    def concat(cls, parts: Sequence[PersonArrays]) -> PersonArrays:
        """Row-wise concatenation (an empty sequence gives zero rows)."""
        if not parts:
            return cls.empty()
        fields = ("image_id", "box", "score", "keypoints", "part_boxes")
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))

    def select(self, rows: np.ndarray) -> PersonArrays:
        """The rows ``rows`` (index or boolean mask)."""
        return PersonArrays(self.image_id[rows], self.box[rows], self.score[rows],
                            self.keypoints[rows], self.part_boxes[rows])


def keypoints_to_coco17(flat: Sequence[Sequence[float]], counts: Counter) -> tuple[np.ndarray, np.ndarray]:
    """Flat keypoint lists ``[x, y, s] * K`` (K in LAYOUTS) -> ([N, 17, 3] float32, [N] ok).

    Rows of another length, or not numeric, are NaN with ok False and are counted.
    """
    out = np.full((len(flat), NUM_KEYPOINTS, 3), np.nan, np.float32)
    ok = np.zeros(len(flat), bool)
    lengths = np.fromiter((len(k) if isinstance(k, (list, tuple)) else -1 for k in flat), int, len(flat))
    for k, name in LAYOUTS.items():
        rows = np.flatnonzero(lengths == 3 * k)
        if rows.size == 0:
            continue
        arr, good = _numeric_rows([flat[i] for i in rows], 3 * k)
        out[rows[good]] = arr[good].reshape(-1, k, 3)[:, :NUM_KEYPOINTS]
        ok[rows[good]] = True
        _count(counts, f"layout {name}", int(good.sum()))
        _count(counts, "bad record: keypoints not numeric", int((~good).sum()))
    bad = int(np.isin(lengths, [3 * k for k in LAYOUTS], invert=True).sum())
    _count(counts, "bad record: keypoint count not 17, 26, 133 or 136", bad)
    return out, ok


def _numeric_rows(rows: list, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal-length lists -> ([n, width] float32, [n] ok); one bad row does not spoil the rest.
    A finite value beyond float32's range is a bad row (never silently turned into inf)."""
    try:
        wide = np.asarray(rows, dtype=np.float64).reshape(len(rows), width)
    except (TypeError, ValueError, OverflowError):
        wide = np.full((len(rows), width), np.nan)
        good = np.zeros(len(rows), bool)
        for i, row in enumerate(rows):  # rare path: only when some row is not numeric
            try:
                wide[i] = np.asarray(row, dtype=np.float64)
                good[i] = True
            except (TypeError, ValueError, OverflowError):
                pass
    else:
        good = np.ones(len(rows), bool)
    good &= ~(np.isfinite(wide) & (np.abs(wide) > np.finfo(np.float32).max)).any(1)
    return np.where(good[:, None], wide, np.nan).astype(np.float32), good


def box_from_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """Extent of the keypoints ``[N, 17, 3]`` -> boxes ``[N, 4]`` (x1, y1, x2, y2).

    Uses the joints with score > 0; a person whose scores are all 0 uses all joints.
    """
    seen = keypoints[..., 2] > 0
    seen = np.where(seen.any(axis=1, keepdims=True), seen, True)
    xs = np.where(seen, keypoints[..., 0], np.nan)
    ys = np.where(seen, keypoints[..., 1], np.nan)
    with _quiet_nan():
        return np.stack([np.nanmin(xs, 1), np.nanmin(ys, 1), np.nanmax(xs, 1), np.nanmax(ys, 1)], 1)


def box_from_parts(part_boxes: np.ndarray) -> np.ndarray:
    """Union of the ten part boxes ``[N, 10, 4]`` -> ``[N, 4]``."""
    with _quiet_nan():
        return np.stack([
            np.nanmin(part_boxes[..., 0], 1), np.nanmin(part_boxes[..., 1], 1),
            np.nanmax(part_boxes[..., 2], 1), np.nanmax(part_boxes[..., 3], 1),
        ], 1)


def clip_boxes(boxes: np.ndarray, width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Clip boxes ``[..., 4]`` to the image ``[0, width] x [0, height]`` (pixels, broadcast)."""
    out = boxes.copy()
    out[..., 0::2] = np.clip(out[..., 0::2], 0, np.asarray(width, np.float32)[..., None])
    out[..., 1::2] = np.clip(out[..., 1::2], 0, np.asarray(height, np.float32)[..., None])
    return out


def to_persons(raw: PersonArrays, images: pd.DataFrame, backend: str, counts: Counter) -> pd.DataFrame:
    """Raw persons -> ``persons`` table rows, ordered as ``images`` then by detection order.

    Missing boxes come from the part boxes' union, else the keypoints' extent; boxes are clipped
    to the image (width/height from ``images``); persons without any box, with non-finite
    values, or with an empty box after clipping are dropped and counted in ``counts``.
    """
    size = images.set_index("image_id")[["width", "height"]]
    pos = pd.Series(np.arange(len(images)), index=images["image_id"].to_numpy())
    keep = np.asarray(pd.Index(images["image_id"]).get_indexer(raw.image_id) >= 0)
    _drop(keep, ~keep, "unknown image id", counts)

    has_kp = ~np.isnan(raw.keypoints).all(axis=(1, 2))
    has_parts = ~np.isnan(raw.part_boxes).all(axis=(1, 2))
    _drop(keep, has_kp & ~np.isfinite(raw.keypoints).all(axis=(1, 2)), "bad record: non-finite keypoints", counts)
    _drop(keep, has_parts & ~np.isfinite(raw.part_boxes).all(axis=(1, 2)), "bad record: non-finite part boxes", counts)

    box = raw.box.astype(np.float32).copy()
    no_box = np.isnan(box).any(axis=1)
    box = np.where((no_box & has_parts)[:, None], box_from_parts(raw.part_boxes), box)
    box = np.where((no_box & ~has_parts & has_kp)[:, None], box_from_keypoints(raw.keypoints), box)
    _count(counts, "box from keypoints", int((keep & no_box & ~has_parts & has_kp).sum()))
    _count(counts, "box from part boxes", int((keep & no_box & has_parts).sum()))
    _drop(keep, ~np.isfinite(box).all(axis=1), "bad record: no usable box", counts)

    with np.errstate(invalid="ignore"):
        outside = (raw.score < 0) | (raw.score > 1)
        kp_outside = ((raw.keypoints[..., 2] < 0) | (raw.keypoints[..., 2] > 1)).any(axis=1)
    _count(counts, "detection score outside [0, 1]: clipped", int((keep & outside).sum()))
    _count(counts, "keypoint scores outside [0, 1]: clipped", int((keep & kp_outside).sum()))
    ids = raw.image_id[keep]
    wh = size.reindex(ids).to_numpy(np.float32)
    box = clip_boxes(box[keep], wh[:, 0], wh[:, 1])
    nonempty = (box[:, 2] > box[:, 0]) & (box[:, 3] > box[:, 1])
    _count(counts, "dropped: empty box after clipping to the image", int((~nonempty).sum()))
    rows = np.flatnonzero(keep)[nonempty]
    return _frame(raw, rows, box[nonempty], pos, backend)


def _frame(raw: PersonArrays, rows: np.ndarray, box: np.ndarray, pos: pd.Series, backend: str) -> pd.DataFrame:
    ids = raw.image_id[rows]
    # Stable sort by image position keeps each image's detection order.
    order = np.argsort(pos.reindex(ids).to_numpy(), kind="stable")
    rows, box, ids = rows[order], box[order], ids[order].astype(object)
    kp = raw.keypoints[rows]
    kp[..., 2] = np.clip(kp[..., 2], 0.0, 1.0)
    # Only the official part-box files carry no detection score (readers of formats that have one
    # drop a missing score, counted): those persons are taken as given (1). Clipping is counted.
    score = np.clip(np.where(np.isnan(raw.score[rows]), 1.0, raw.score[rows]), 0.0, 1.0)
    return pd.DataFrame({
        "image_id": ids,
        "person": pd.Series(ids, dtype=object).groupby(ids, sort=False).cumcount().to_numpy(np.int32),
        "x1": box[:, 0], "y1": box[:, 1], "x2": box[:, 2], "y2": box[:, 3],
        "score": score.astype(np.float32),
        "keypoints": _list_column(kp.reshape(len(rows), NUM_KEYPOINTS * 3)),
        "part_boxes": _list_column(raw.part_boxes[rows].reshape(len(rows), NUM_PARTS * 4)),
        "backend": backend,
    })


def _list_column(flat: np.ndarray) -> pd.Series:
    """Rows of ``flat`` [N, K] as arrays, None where the whole row is NaN (null in parquet)."""
    null = np.isnan(flat).all(axis=1)
    return pd.Series([None if n else row for row, n in zip(flat.astype(np.float32), null)], dtype=object)


def _count(counts: Counter, reason: str, n: int) -> None:
    """Add ``n`` to ``counts[reason]``; zero counts stay out of the report."""
    if n:
        counts[reason] += n


def _drop(keep: np.ndarray, bad: np.ndarray, reason: str, counts: Counter) -> None:
    hit = keep & bad
    if hit.any():
        counts[f"dropped: {reason}"] += int(hit.sum())
        keep &= ~bad


@contextlib.contextmanager
def _quiet_nan() -> Iterator[None]:
    """Silence numpy's all-NaN-slice warnings (all-NaN rows are expected and handled)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


_TRAILING_INT = re.compile(r"(\d+)$")


class ImageIndex:
    """Maps the image keys result files use (file name, stem, integer id) to ``image_id``.

    ``split`` restricts the candidates to one split: HICO-DET's integer ids repeat across train
    and test (``HICO_train2015_00000001`` and ``HICO_test2015_00000001`` are both 1).
    """

    def __init__(self, images: pd.DataFrame, split: str | None = None, source: str = "pose results") -> None:
        self.source = source  # the file whose keys are looked up (named in errors)
        if split is not None:
            images = images[images["split"] == split]
        self.image_ids = set(images["image_id"])
        ids = list(images["image_id"])
        self._by_name = _unique_map([PurePosixPath(f).name for f in images["file"]], ids)
        ints = [_TRAILING_INT.search(i) for i in ids]
        self._by_int = _unique_map([int(m.group(1)) if m else None for m in ints], ids)

    def lookup(self, key: object, mode: str) -> str | None:
        """``image_id`` for ``key`` read as ``mode`` (file | stem | int); None when unknown.

        Raises UserError when the key matches several images (integer ids across splits).
        """
        if mode == "int":
            found = self._by_int.get(integer_key(key))
        elif mode == "file":
            found = self._by_name.get(PurePosixPath(str(key)).name)
            if found is None:  # some writers store the stem
                found = str(key) if str(key) in self.image_ids else None
        else:
            stem = PurePosixPath(str(key)).stem if "." in str(key) else str(key)
            found = stem if stem in self.image_ids else None
        if found is _AMBIGUOUS:
            raise UserError(
                f"{self.source}: image key {key!r} matches several images (integer ids repeat across "
                "splits): give each result file its split in params"
            )
        return found


def integer_key(key: object) -> int | None:
    """An integer image key: an int, an integral float (``3.0``), a string of digits, or a file
    name ending in digits (``HICO_test2015_00000001.jpg``); None otherwise. ``True``, ``1.7``
    and ``"1.7"`` are not image 1."""
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key
    if isinstance(key, float):
        return int(key) if key.is_integer() else None
    if not isinstance(key, str):
        return None
    if key.strip().isdigit():
        return int(key)
    path = PurePosixPath(key)
    if path.suffix and not path.suffix[1:].isalpha():  # "1.7": a number, not a file name
        return None
    m = _TRAILING_INT.search(path.stem)
    return int(m.group(1)) if m else None


_AMBIGUOUS = "\0ambiguous"


def _unique_map(keys: list, image_ids: list[str]) -> dict:
    """{key: image_id}, with keys shared by several images marked ambiguous."""
    out: dict = {}
    for key, image_id in zip(keys, image_ids):
        if key is not None:
            out[key] = _AMBIGUOUS if key in out and out[key] != image_id else image_id
    return out
