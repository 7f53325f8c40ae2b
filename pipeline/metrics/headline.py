"""The headline metrics: the few numbers a run is compared by, in percent, rounded to 0.01.

``reports/metrics.json`` keeps every metric (fractions, flat names); ``reports/headline.json``
holds only these, so that ``dvc exp show --only-changed`` fits a terminal. Keys (absent when the
dataset format has no such metric):

- ``int_ap``: interactiveness AP; ``int_ap_<split>`` on each hard-case scene split (crowded,
  tiny, occluded; evaluate.scene_splits);
- HICO-DET: ``map_full``, ``map_rare``, ``map_nonrare`` (Default), ``ko_full``, ``ko_rare``,
  ``ko_nonrare`` (Known Object);
- V-COCO: ``role_ap_s1``, ``role_ap_s2`` (role AP, scenarios 1 and 2, 24 actions).
"""

from __future__ import annotations

import math

# headline key -> name in the full metrics
HICO = {
    "map_full": "hico/default/full_map", "map_rare": "hico/default/rare_map",
    "map_nonrare": "hico/default/non_rare_map", "ko_full": "hico/known_object/full_map",
    "ko_rare": "hico/known_object/rare_map", "ko_nonrare": "hico/known_object/non_rare_map",
}
VCOCO = {"role_ap_s1": "vcoco/scenario1/role_map_24", "role_ap_s2": "vcoco/scenario2/role_map_24"}


def headline(metrics: dict[str, float], splits: tuple[str, ...] = ("crowded", "tiny", "occluded")) -> dict[str, float | None]:
    """The headline subset of ``metrics`` (fractions) in percent, rounded to two decimals;
    NaN (undefined, e.g. a split without positives) becomes None (JSON null)."""
    names = {"int_ap": "interactiveness/ap"}
    names |= {f"int_ap_{s}": f"interactiveness/{s}/ap" for s in splits}
    names |= HICO | VCOCO
    return {key: _percent(metrics[name]) for key, name in names.items() if name in metrics}


def _percent(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(100.0 * float(value), 2)
