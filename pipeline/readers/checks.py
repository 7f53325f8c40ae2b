"""Value checks of the flattened annotations, vectorised: one reason per box and per pair (the
first that applies, '' when none), the skip/keep/fail policy, and the one-line messages.

Every row gets at most one reason, so ``read = written + sum(skipped)`` holds per table.
Boxes: image (its image was skipped) > unknown_category > degenerate (non-finite, x2 <= x1 or
y2 <= y1) > too_small > outside (beyond the image by more than the margin).
Pairs: image > index_out_of_range > box_skipped (subject or object box was skipped) >
subject_not_person > the label reasons of ``verbs`` (unknown_verb, unknown_hoi, hoi_mismatch).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

import numpy as np
import pandas as pd

from model.common.errors import UserError, quote_name
from model.common.labels import PERSON_COCO_ID
from pipeline.readers.verbs import PAIR_ID_REASONS, PairLabeler

BOX_REASONS = ("image", "unknown_category", "degenerate", "too_small", "outside")
PAIR_REASONS = ("image", "index_out_of_range", "box_skipped", "subject_not_person", *PAIR_ID_REASONS)


def box_reasons(
    boxes: pd.DataFrame, valid_categories: Collection[int], min_size: float, margin: float
) -> np.ndarray:
    """Reason per box. ``boxes`` has category_id, x1, y1, x2, y2 (pixels), width, height (the
    image's, pixels) and image_skipped (bool)."""
    x1, y1, x2, y2 = (boxes[c].to_numpy() for c in ("x1", "y1", "x2", "y2"))
    w, h = boxes["width"].to_numpy(), boxes["height"].to_numpy()
    finite = np.isfinite(x1) & np.isfinite(y1) & np.isfinite(x2) & np.isfinite(y2)
    conditions = [
        boxes["image_skipped"].to_numpy(),
        ~np.isin(boxes["category_id"].to_numpy(), np.fromiter(valid_categories, dtype=np.int64)),
        ~finite | (x2 <= x1) | (y2 <= y1),
        (x2 - x1 < min_size) | (y2 - y1 < min_size),
        (x1 < -margin) | (y1 < -margin) | (x2 > w + margin) | (y2 > h + margin),
    ]
    return np.select(conditions, BOX_REASONS, "")


def attach_boxes(
    hois: pd.DataFrame, n_ann: np.ndarray, box_category: np.ndarray, box_kept: np.ndarray, allows_no_object: bool
) -> pd.DataFrame:
    """Add to ``hois`` (rec, subject, object) what the pair checks need from its boxes:
    sub_ok / obj_ok (index in range, or -1 = no object where allowed), has_object, sub_cat /
    obj_cat (COCO id, -1 when none), box_skipped. ``n_ann`` is per record; ``box_category`` and
    ``box_kept`` are per box, in flattened order."""
    rec = hois["rec"].to_numpy()
    sub, obj = hois["subject"].to_numpy(), hois["object"].to_numpy()
    n = n_ann[rec]
    offset = (np.cumsum(n_ann) - n_ann)[rec]
    sub_ok = (sub >= 0) & (sub < n)
    has_object = (obj >= 0) & (obj < n)
    obj_ok = has_object | (allows_no_object & (obj == -1))
    sub_pos = offset + np.where(sub_ok, sub, 0)
    obj_pos = offset + np.where(has_object, obj, 0)
    kept = np.append(box_kept, True)  # a sentinel for rows whose index is invalid
    cats = np.append(box_category, -1)
    sub_pos = np.where(sub_ok, sub_pos, len(box_kept))
    obj_pos = np.where(has_object, obj_pos, len(box_kept))
    return hois.assign(
        n_ann=n, sub_ok=sub_ok, obj_ok=obj_ok, has_object=has_object,
        sub_cat=cats[sub_pos], obj_cat=cats[obj_pos], box_skipped=~kept[sub_pos] | ~kept[obj_pos],
    )


def pair_reasons(pairs: pd.DataFrame, id_reason: np.ndarray) -> np.ndarray:
    """Reason per pair; ``pairs`` comes from ``attach_boxes`` plus image_skipped; ``id_reason``
    is the labeler's reason per pair."""
    conditions = [
        pairs["image_skipped"].to_numpy(),
        ~(pairs["sub_ok"].to_numpy() & pairs["obj_ok"].to_numpy()),
        pairs["box_skipped"].to_numpy(),
        pairs["sub_cat"].to_numpy() != PERSON_COCO_ID,
        *(id_reason == r for r in PAIR_ID_REASONS),
    ]
    return np.select(conditions, PAIR_REASONS, "")


def enforce(reasons: np.ndarray, policies: Mapping[str, str], describe: Callable[[int], str]) -> np.ndarray:
    """Apply the policy of each reason ('fail' | 'skip' | 'keep'): raise a UserError on the
    first row (in file order) whose reason fails, else return the mask of rows to keep."""
    failing = [r for r, p in policies.items() if p == "fail"]
    bad = np.isin(reasons, failing)
    if bad.any():
        raise UserError(describe(int(np.argmax(bad))))
    kept = [r for r, p in policies.items() if p == "keep"]
    return (reasons == "") | np.isin(reasons, kept)


def counts(reasons: np.ndarray, names: tuple[str, ...]) -> dict[str, int]:
    """Number of rows per reason, every name present (zeros included)."""
    return {name: int(np.count_nonzero(reasons == name)) for name in names}


def record_prefix(source: str, rec: int, file_name: str) -> str:
    return f"{source}: record {rec} ({quote_name(file_name)})"


def describe_box(row: pd.Series, reason: str, min_size: float, margin: float) -> str:
    """What is wrong with one box (a row of the frame given to ``box_reasons``, plus index)."""
    k = int(row["index"])
    box = "[" + ", ".join(f"{row[c]:g}" for c in ("x1", "y1", "x2", "y2")) + "]"
    if reason == "unknown_category":
        return f"annotations[{k}].category_id {int(row['category_id'])} is not a COCO category id"
    if reason == "degenerate":
        return f"annotations[{k}].bbox {box} is degenerate (needs finite x1 < x2 and y1 < y2)"
    if reason == "too_small":
        return f"annotations[{k}].bbox {box} is narrower or shorter than ingest.min_box_size_px = {min_size:g}"
    return (
        f"annotations[{k}].bbox {box} lies outside the {int(row['width'])}x{int(row['height'])} image "
        f"(margin {margin:g} px)"
    )


def describe_pair(row: pd.Series, reason: str, labeler: PairLabeler) -> str:
    """What is wrong with one pair (a row of the frame given to ``pair_reasons``)."""
    j = int(row["pos"])
    if reason == "index_out_of_range":
        field, value = ("subject_id", row["subject"]) if not row["sub_ok"] else ("object_id", row["object"])
        return f"hoi_annotation[{j}].{field} {int(value)} out of range ({int(row['n_ann'])} annotations)"
    if reason == "subject_not_person":
        subject, category = int(row["subject"]), int(row["sub_cat"])
        return f"hoi_annotation[{j}].subject_id {subject} is not a person (category_id {category})"
    detail = labeler.describe(reason, int(row["verb"]), int(row["obj_cat"]), int(row["hoi"]), bool(row["has_hoi"]))
    return f"hoi_annotation[{j}]: {detail}"
