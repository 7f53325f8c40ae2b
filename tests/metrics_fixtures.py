"""Small hand-built tables for the evaluator tests (pipeline/tables.py schemas)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from model.common import labels

H = (10.0, 10.0, 60.0, 110.0)  # a person box
O = (70.0, 50.0, 120.0, 100.0)  # an object box


def hoi(verb: str, obj: str) -> int:
    lab = labels.hico()
    v = next(i for i, n in lab.verb_names.items() if n == verb)
    o = next(i for i, n in lab.object_names.items() if n == obj)
    return lab.hoi_id(v, o)


def gt_tables(rows: list[tuple[str, tuple, tuple, int]], images: list[str]) -> tuple[pd.DataFrame, ...]:
    """images, instances, pairs tables from (image_id, human box, object box, hoi_id) rows;
    every row gets its own two instances. ``images`` lists the test images (incl. GT-less)."""
    lab = labels.hico()
    inst, pairs = [], []
    count: dict[str, int] = {}
    for image, h, o, hid in rows:
        k = count.get(image, 0)
        count[image] = k + 2
        inst.append((image, k, 1, *h))
        inst.append((image, k + 1, lab.hoi_object[hid], *o))
        pairs.append((image, k, k + 1, lab.hoi_verb[hid], hid, None))
    images_df = pd.DataFrame({"image_id": images, "split": "test", "file": [f"{i}.jpg" for i in images],
                              "width": 640, "height": 480, "annotated": [i in count for i in images]})
    instances = pd.DataFrame(inst, columns=["image_id", "index", "category_id", "x1", "y1", "x2", "y2"])
    pairs_df = pd.DataFrame(pairs, columns=["image_id", "subject", "object", "verb_id", "hoi_id", "role"])
    return images_df, instances, pairs_df


def predictions(rows: list[tuple[str, tuple, tuple, int, float]], interactiveness: float = 0.5) -> pd.DataFrame:
    """predictions table from (image_id, human box, object box, hoi_id, score) rows; each row
    its own query."""
    lab = labels.hico()
    out = []
    for q, (image, h, o, hid, score) in enumerate(rows):
        out.append({"image_id": image, "query": q, **dict(zip(("hx1", "hy1", "hx2", "hy2"), h)),
                    **dict(zip(("ox1", "oy1", "ox2", "oy2"), o)), "category_id": lab.hoi_object[hid],
                    "verb_id": lab.hoi_verb[hid], "hoi_id": hid, "role": None, "score": score,
                    "interactiveness": interactiveness, "part_scores": np.full(6, interactiveness, np.float32)})
    return pd.DataFrame(out)


def shift(box: tuple, dx: float) -> tuple:
    return (box[0] + dx, box[1], box[2] + dx, box[3])
