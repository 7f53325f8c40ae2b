"""AlphaPose backend: read ``alphapose-results.json`` into persons.

The file is what AlphaPose's ``scripts/demo_inference.py`` writes: a list of
``{"image_id": file name, "category_id": 1, "keypoints": [x, y, s] * K, "score", "box": [x, y,
w, h]}`` with K = 17 (COCO), 26 (Halpe26), 133 (COCO-WholeBody) or 136 (Halpe136); the first 17
points of every layout are COCO-17. When the file is missing and the AlphaPose package is
importable, :mod:`pipeline.pose_backends.alphapose_api` runs AlphaPose to write it first.

AlphaPose's ``score`` is not a probability: its writer stores ``detector score + mean(keypoint
scores) + 1.25 * max(keypoint scores)`` (range [0, 3.25]). With ``score: detector`` (default)
the detector score is recovered exactly as AlphaPose's own ``ppose_nms_validate_preprocess``
does, by subtracting the two keypoint terms (over all K points); ``score: as_is`` keeps the
value (for files that already hold a probability). Both are clipped to [0, 1].
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from pipeline.params import Section
from pipeline.pose_backends.jsonfile import entries_to_arrays, read_entries
from pipeline.pose_backends.persons import ImageIndex, to_persons


class AlphaPoseConfig(Section):
    """params ``pose.alphapose``: the result file (relative to the dataset root) and how to read
    its scores.

    ``cfg``/``checkpoint`` (AlphaPose's model config and weights, relative to the working
    directory) and ``detector`` are used only to run AlphaPose when ``results`` does not exist.
    """

    results: Path = Path("alphapose-results.json")
    score: Literal["detector", "as_is"] = "detector"
    cfg: Path | None = None
    checkpoint: Path | None = None
    detector: str = "yolo"


def detector_score(score: float, keypoint_scores: np.ndarray) -> float:
    """AlphaPose's proposal score -> its detector score (inverse of AlphaPose's writer)."""
    if keypoint_scores.size == 0:
        return score
    return float(score - keypoint_scores.mean() - 1.25 * keypoint_scores.max())


def read(images: pd.DataFrame, root: Path, cfg: AlphaPoseConfig, counts: Counter) -> pd.DataFrame:
    """Persons of ``images`` from the AlphaPose result file (running AlphaPose if needed)."""
    path = root / cfg.results
    if not path.exists() and cfg.cfg is not None:
        from pipeline.pose_backends import alphapose_api

        alphapose_api.write_results(images, root, cfg, path)
    index = ImageIndex(images, source=str(path))
    raw = entries_to_arrays(
        read_entries(path),
        image_of=lambda key: index.lookup(key, "file"),
        box_key="box",
        category_id=1,
        counts=counts,
        score_of=detector_score if cfg.score == "detector" else None,
        source=str(path),
    )
    return to_persons(raw, images, "alphapose", counts)
