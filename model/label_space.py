"""The contiguous class indices the network uses, and their official ids (the label maps every
checkpoint carries, so that predictions can be turned back into dataset ids).

HICO-DET: objects = the 80 COCO ids in ascending order (the PPDM/QPIC files' order), verbs =
verb ids 1..117 (index = id - 1, no_interaction included). V-COCO: objects = the same 80 COCO
ids plus one extra class for a missing object (QPIC's 81st class), verbs = the 29 verb-role
classes of the QPIC files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from model.common import labels
from model.common.errors import UserError

MISSING_OBJECT = -1  # "COCO id" of V-COCO's extra class: a role without an object


@dataclass(frozen=True)
class LabelSpace:
    """Contiguous index <-> official id, for objects and verbs."""

    format: str  # hico-det | v-coco
    object_ids: tuple[int, ...]  # index -> COCO category id (MISSING_OBJECT for V-COCO's extra class)
    verb_names: tuple[str, ...]  # index -> name (HICO verb name | V-COCO verb-role name)
    no_interaction: int | None  # verb index of no_interaction (HICO-DET), None for V-COCO

    @property
    def num_objects(self) -> int:
        return len(self.object_ids)

    @property
    def num_verbs(self) -> int:
        return len(self.verb_names)

    def to_dict(self) -> dict:
        """Plain-python form stored in checkpoints (loadable with ``weights_only=True``)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> LabelSpace:
        return cls(d["format"], tuple(d["object_ids"]), tuple(d["verb_names"]), d["no_interaction"])

    def object_index(self, coco_ids: np.ndarray) -> np.ndarray:
        """Contiguous object index of each COCO id (null/NaN -> the missing-object class)."""
        lut = {c: i for i, c in enumerate(self.object_ids)}
        ids = np.where(np.isnan(coco_ids.astype(np.float64)), MISSING_OBJECT, coco_ids)
        out = np.array([lut.get(int(c), -1) for c in ids], dtype=np.int64)
        if (out < 0).any():
            bad = sorted({int(c) for c, o in zip(ids, out) if o < 0})
            raise UserError(f"object category id(s) {bad[:5]} not in the {self.format} label space")
        return out

    def verb_index(self, pairs: pd.DataFrame) -> np.ndarray:
        """Contiguous verb index of each row of the pairs table."""
        if self.format == "hico-det":
            idx = pairs["verb_id"].to_numpy(np.int64) - 1
            if ((idx < 0) | (idx >= self.num_verbs)).any():
                raise UserError(f"pairs: verb_id outside 1..{self.num_verbs}")
            return idx
        return _vcoco_verb_index(pairs)


def _vcoco_verb_index(pairs: pd.DataFrame) -> np.ndarray:
    """V-COCO: (action id, role) -> index of the 29 verb-role classes; a pair whose role is
    null takes the action's only verb-role (agent-only actions have exactly one)."""
    v = labels.vcoco()
    by_key = {(a, r): i for i, (a, r) in enumerate(v.verb_roles)}
    by_action: dict[str, list[int]] = {}
    for i, (a, _) in enumerate(v.verb_roles):
        by_action.setdefault(a, []).append(i)
    out = np.empty(len(pairs), dtype=np.int64)
    for n, (vid, role) in enumerate(zip(pairs["verb_id"].to_numpy(), pairs["role"].to_numpy())):
        action = v.actions.get(int(vid))
        role = role if isinstance(role, str) else None
        hit = by_key.get((action, role))
        if hit is None and role is None and len(by_action.get(action, [])) == 1:
            hit = by_action[action][0]
        if hit is None:
            raise UserError(f"pairs: V-COCO action {vid} ({action}) with role {role} has no verb-role class")
        out[n] = hit
    return out


def for_format(fmt: str) -> LabelSpace:
    """The label space of a dataset format (hico-det | v-coco)."""
    coco = labels.hico().object_coco_ids
    if fmt == "hico-det":
        h = labels.hico()
        names = tuple(h.verb_names[i] for i in sorted(h.verb_names))
        return LabelSpace(fmt, tuple(coco), names, h.no_interaction_verb_id - 1)
    if fmt == "v-coco":
        v = labels.vcoco()
        names = tuple(a if r is None else f"{a}_{r}" for a, r in v.verb_roles)
        return LabelSpace(fmt, (*coco, MISSING_OBJECT), names, None)
    raise UserError(f"unknown dataset format '{fmt}' (hico-det | v-coco)")
