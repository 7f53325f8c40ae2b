"""Reading keypoint-result JSON files (AlphaPose's and COCO's formats share one structure).

Both are a list of per-person entries ``{"image_id", "category_id", "keypoints": [x, y, s] * K,
"score", optional box}``; they differ in how the image is named and how the box is spelt.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from model.common.errors import UserError, quote_name
from pipeline.inputs.json_reader import read_json
from pipeline.pose_backends.persons import PersonArrays, keypoints_to_coco17


def read_entries(path: Path) -> list:
    """The list of entries of a result JSON file; a clear error when it is missing or not a list."""
    data = read_json(path, "pose result file", hint="see README, 'Pose backends'")
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON list of per-person entries, got {type(data).__name__}")
    return data


def entries_to_arrays(
    entries: list,
    image_of: Callable[[object], str | None],
    box_key: str,
    category_id: int | None,
    counts: Counter,
    score_of: Callable[[float, np.ndarray], float] | None = None,
    source: str = "pose result file",
) -> PersonArrays:
    """Entries -> :class:`PersonArrays`, skipping and counting what cannot be used.

    ``image_of`` maps an entry's ``image_id`` to the table's ``image_id`` (None = unknown);
    ``box_key`` names the optional ``[x, y, w, h]`` box field ("box" AlphaPose, "bbox" COCO);
    ``category_id`` keeps only entries of that category (None keeps all); ``score_of(score,
    all_keypoint_scores)`` turns the entry's score into a detection score (default: as given).
    An entry whose score is missing, not a number or not finite is skipped and counted (never
    taken as 1). ``source`` names the file: entries none of which names a known image are an
    error (a wrong file, or the wrong ``image_id`` mode), not a silent empty result.
    """
    ids, flat, scores, boxes, unknown = [], [], [], [], []
    for entry in entries:
        if not isinstance(entry, dict) or "keypoints" not in entry or "image_id" not in entry:
            counts["bad record: not an entry with image_id and keypoints"] += 1
            continue
        if category_id is not None and entry.get("category_id", category_id) != category_id:
            counts["skipped: category is not person"] += 1
            continue
        image_id = image_of(entry["image_id"])
        if image_id is None:
            counts["skipped: unknown image id"] += 1
            unknown.append(entry["image_id"])
            continue
        ids.append(image_id)
        flat.append(entry["keypoints"])
        scores.append(entry.get("score"))
        boxes.append(entry.get(box_key))
    if unknown and not ids:
        raise UserError(f"{source}: none of its {len(unknown)} entries names an image of the dataset "
                        f"(e.g. image_id {quote_name(unknown[0])}): wrong file, split or image_id mode?")
    keypoints, ok = keypoints_to_coco17(flat, counts)
    raw = PersonArrays.empty(len(ids))
    raw.image_id[:] = ids
    raw.keypoints[:] = keypoints
    for i, (entry_score, box) in enumerate(zip(scores, boxes)):
        raw.box[i] = _xywh_to_xyxy(box)
        raw.score[i] = _number(entry_score)
    no_score = ok & np.isnan(raw.score)
    if no_score.any():
        counts["bad record: detection score missing or not a finite number"] += int(no_score.sum())
        ok &= ~no_score
    if score_of is not None:
        raw.score[:] = [score_of(s, np.asarray(f, np.float64)[2::3]) if k else np.nan
                        for s, f, k in zip(raw.score, flat, ok)]
    # Entries whose keypoints could not be read are dropped whole (already counted).
    return raw.select(ok)


def _xywh_to_xyxy(box: object) -> np.ndarray:
    """``[x, y, w, h]`` -> ``[x1, y1, x2, y2]``; NaN when absent or malformed."""
    if isinstance(box, (list, tuple)) and len(box) == 4:
        x, y, w, h = (_number(v) for v in box)
        return np.array([x, y, x + w, y + h], np.float32)
    return np.full(4, np.nan, np.float32)


def _number(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return math.nan
