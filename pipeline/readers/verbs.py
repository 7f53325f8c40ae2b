"""From the raw ``hoi_annotation`` ids of each format to the pairs table's verb_id / hoi_id /
role, vectorised, with a reason for every id that the label tables do not know.

HICO-DET: ``category_id`` is the verb id 1..117; ``hoi_category_id`` (1..600) is checked
against the (verb, object category) pair, or derived from it when absent.
V-COCO (QPIC): ``category_id`` is a 0-based index into the 29 verb-role classes; it becomes
the action id 1..26 plus the role name (None for the agent-only actions). No HOI id.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from model.common import labels

PAIR_ID_REASONS = ("unknown_verb", "unknown_hoi", "hoi_mismatch")
MAX_COCO_ID = 90


class PairLabeler(Protocol):
    allows_no_object: bool

    def label(self, verb: np.ndarray, obj_cat: np.ndarray, hoi: np.ndarray, has_hoi: np.ndarray) -> pd.DataFrame:
        """Columns reason ('' or one of PAIR_ID_REASONS), verb_id, hoi_id (0 = none), role."""
        ...

    def describe(self, reason: str, verb: int, obj_cat: int, hoi: int, has_hoi: bool) -> str:
        """What is wrong with one pair's ids, for a one-line error."""
        ...


class HicoLabeler:
    """HICO-DET verb and HOI ids; ``obj_cat`` is the object's COCO id (-1 when unknown)."""

    allows_no_object = False

    def __init__(self) -> None:
        lab = labels.hico()
        self._n_verbs = len(lab.verb_names)
        self._n_hois = len(lab.hoi_verb)
        # dense (verb id, COCO id) -> HOI id table, 0 where HICO-DET has no such class
        self._lut = np.zeros((self._n_verbs + 1, MAX_COCO_ID + 1), dtype=np.int64)
        for h, v in lab.hoi_verb.items():
            self._lut[v, lab.hoi_object[h]] = h

    def expected(self, verb: np.ndarray, obj_cat: np.ndarray) -> np.ndarray:
        ok = (verb >= 1) & (verb <= self._n_verbs) & (obj_cat >= 0) & (obj_cat <= MAX_COCO_ID)
        return np.where(ok, self._lut[np.where(ok, verb, 0), np.where(ok, obj_cat, 0)], 0)

    def label(self, verb: np.ndarray, obj_cat: np.ndarray, hoi: np.ndarray, has_hoi: np.ndarray) -> pd.DataFrame:
        expected = self.expected(verb, obj_cat)
        hoi_in_range = (hoi >= 1) & (hoi <= self._n_hois)
        reason = np.select(
            [
                (verb < 1) | (verb > self._n_verbs),
                np.where(has_hoi, ~hoi_in_range, expected == 0),
                has_hoi & (hoi != expected),
            ],
            PAIR_ID_REASONS,
            "",
        )
        return pd.DataFrame({
            "reason": reason,
            "verb_id": verb,
            "hoi_id": np.where(has_hoi, hoi, expected),
            "role": np.full(len(verb), None, dtype=object),
        })

    def describe(self, reason: str, verb: int, obj_cat: int, hoi: int, has_hoi: bool) -> str:
        if reason == "unknown_verb":
            return f"category_id {verb} is not a HICO-DET verb id (1..{self._n_verbs})"
        if reason == "unknown_hoi" and has_hoi:
            return f"hoi_category_id {hoi} is not a HICO-DET HOI id (1..{self._n_hois})"
        names = labels.hico()
        obj_name = names.object_names.get(obj_cat, "?")
        pair = f"verb {verb} ({names.verb_names[verb]}) with object category {obj_cat} ({obj_name})"
        if reason == "unknown_hoi":
            return f"{pair} is not a HICO-DET HOI class"
        expected = int(self.expected(np.array([verb]), np.array([obj_cat]))[0])
        return f"hoi_category_id {hoi} does not match {pair} (expected {expected or 'none: no such HOI class'})"


class VcocoLabeler:
    """V-COCO's 29 verb-role classes of the QPIC files."""

    allows_no_object = True

    def __init__(self) -> None:
        lab = labels.vcoco()
        self._action_ids = np.array([lab.action_id(a) for a, _ in lab.verb_roles], dtype=np.int64)
        self._roles = np.array([r for _, r in lab.verb_roles], dtype=object)

    def label(self, verb: np.ndarray, obj_cat: np.ndarray, hoi: np.ndarray, has_hoi: np.ndarray) -> pd.DataFrame:
        ok = (verb >= 0) & (verb < len(self._action_ids))
        index = np.where(ok, verb, 0)
        return pd.DataFrame({
            "reason": np.where(ok, "", PAIR_ID_REASONS[0]),
            "verb_id": np.where(ok, self._action_ids[index], 0),
            "hoi_id": np.zeros(len(verb), dtype=np.int64),
            "role": np.where(ok, self._roles[index], None),
        })

    def describe(self, reason: str, verb: int, obj_cat: int, hoi: int, has_hoi: bool) -> str:
        return f"category_id {verb} is not a V-COCO verb-role index (0..{len(self._action_ids) - 1})"


def labeler(fmt: str) -> PairLabeler:
    """The labeler of dataset format ``fmt`` ('hico-det' or 'v-coco')."""
    return HicoLabeler() if fmt == "hico-det" else VcocoLabeler()
