"""Crowded-scene measures of the ``inspect`` command (report ``crowd``): how interactions are
spread over the persons of an image, per group (default: split) and scene (sparse | crowded).

- ``pairs_per_person``: interactive pairs / persons (sums over the group's images);
- ``persons_per_pair``: persons / interactive pairs, the persons a detector must tell apart
  per true interaction (the paper's crowded-scene difficulty);
- ``idle_share``: share of persons that are the subject of no interactive pair.

Persons are the scenes table's (annotated boxes, near-duplicates merged); a person interacts
when it is the subject of a pair with a verb other than HICO-DET's no_interaction (every V-COCO
pair). Subjects are counted per image and capped at its persons (a merged duplicate box that is
the subject of pairs counts once at most).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from model.common import labels


def interacting_persons(pairs: pd.DataFrame) -> pd.Series:
    """Distinct subjects of interactive pairs per image_id."""
    inter = pairs
    if pairs["hoi_id"].notna().any():  # HICO-DET: drop no_interaction pairs
        inter = pairs[pairs["verb_id"] != labels.hico().no_interaction_verb_id]
    return inter.drop_duplicates(["image_id", "subject"]).groupby("image_id").size()


def crowd_report(df: pd.DataFrame, pairs: pd.DataFrame, group_by: list[str]) -> pd.DataFrame:
    """Per group and scene: images, persons, interactive pairs, interacting persons and the
    three ratios (NaN where the denominator is 0)."""
    busy = interacting_persons(pairs[pairs["image_id"].isin(df["image_id"])])
    active = np.minimum(df["image_id"].map(busy).fillna(0).to_numpy(np.int64), df["persons"].to_numpy(np.int64))
    frame = df.assign(interacting=active)
    keys = list(dict.fromkeys([*group_by, "scene"]))
    g = frame.groupby(keys, dropna=False, sort=True)
    out = pd.DataFrame({"images": g.size(), "persons": g["persons"].sum(),
                        "interactive_pairs": g["interactive_pairs"].sum(), "interacting": g["interacting"].sum()})
    persons = out["persons"].where(out["persons"] > 0)
    out["pairs_per_person"] = (out["interactive_pairs"] / persons).round(4)
    out["persons_per_pair"] = (out["persons"] / out["interactive_pairs"].where(out["interactive_pairs"] > 0)).round(4)
    out["idle_share"] = (1 - out["interacting"] / persons).round(4)
    return out.reset_index()
