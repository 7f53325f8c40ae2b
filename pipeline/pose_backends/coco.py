"""COCO backend: read COCO keypoint-detection result files into persons.

Each file is a list of ``{"image_id": int or str, "category_id", "keypoints": [x, y, v] * 17,
"score", optional "bbox": [x, y, w, h]}`` (the format COCO's evaluation server and most pose
estimators write). ``image_id`` is matched by the integer at the end of the file stem (``int``,
COCO and HICO-DET numbering), by the stem, or by the file name; HICO-DET's integers repeat
across splits, so give each file its ``split``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

import pandas as pd

from pipeline.params import Section
from pipeline.pose_backends.jsonfile import entries_to_arrays, read_entries
from pipeline.pose_backends.persons import ImageIndex, PersonArrays, to_persons


class ResultFile(Section):
    """One result file (relative to the dataset root) and the split its images belong to."""

    path: Path
    split: str | None = None


class CocoConfig(Section):
    """params ``pose.coco``: result files, how their image ids map, which category is a person."""

    files: list[ResultFile] = [ResultFile(path=Path("coco-keypoint-results.json"))]
    image_id: Literal["int", "stem", "file"] = "int"
    category_id: int = 1


def read(images: pd.DataFrame, root: Path, cfg: CocoConfig, counts: Counter) -> pd.DataFrame:
    """Persons of ``images`` from every configured COCO result file."""
    parts = []
    for spec in cfg.files:
        index = ImageIndex(images, spec.split, source=str(root / spec.path))
        parts.append(entries_to_arrays(
            read_entries(root / spec.path),
            image_of=lambda key, index=index: index.lookup(key, cfg.image_id),
            box_key="bbox",
            category_id=cfg.category_id,
            counts=counts,
            source=str(root / spec.path),
        ))
    return to_persons(PersonArrays.concat(parts), images, "coco", counts)

