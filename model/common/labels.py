"""The official label tables shipped with the project (``data/labels/*.json``).

HICO-DET: 80 objects (alphabetical HICO order, each with its COCO category id), 117 verbs
(ids 1..117), 600 HOI classes (ids 1..600, official order) and the 138 rare HOI ids.
V-COCO: 26 actions (ids 1..26, official order) with their roles, and the 29 verb-role classes
of the QPIC/CDN annotation files.

Parquet tables keep the official ids (COCO category ids, verb ids, HOI ids); contiguous
indices exist only inside the model and are derived here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

LABELS_DIR = Path(__file__).resolve().parents[2] / "data" / "labels"
PERSON_COCO_ID = 1


@dataclass(frozen=True)
class HicoLabels:
    """HICO-DET class tables. ``object_coco_ids`` is sorted ascending: the PPDM/QPIC files index
    objects (and the columns of ``corre_hico.npy``) in this COCO-id order."""

    object_names: dict[int, str]  # COCO id -> name
    object_coco_ids: tuple[int, ...]  # 80 COCO ids, ascending
    verb_names: dict[int, str]  # verb id 1..117 -> name
    hoi_verb: dict[int, int]  # HOI id 1..600 -> verb id
    hoi_object: dict[int, int]  # HOI id 1..600 -> COCO object id
    rare_hoi_ids: frozenset[int]

    @property
    def no_interaction_verb_id(self) -> int:
        return next(v for v, n in self.verb_names.items() if n == "no_interaction")

    def hoi_id(self, verb_id: int, object_coco_id: int) -> int | None:
        """The HOI id of a (verb, object) pair, or None when HICO-DET has no such class."""
        return self._hoi_lookup().get((verb_id, object_coco_id))

    def _hoi_lookup(self) -> dict[tuple[int, int], int]:
        return {(self.hoi_verb[h], self.hoi_object[h]): h for h in self.hoi_verb}

    def correspondence(self) -> np.ndarray:
        """The (117 verbs × 80 objects) 0/1 validity matrix of ``corre_hico.npy``; rows are verb
        ids 1..117, columns objects in ascending COCO-id order."""
        mat = np.zeros((len(self.verb_names), len(self.object_coco_ids)), dtype=np.float64)
        col = {c: i for i, c in enumerate(self.object_coco_ids)}
        for h, v in self.hoi_verb.items():
            mat[v - 1, col[self.hoi_object[h]]] = 1.0
        return mat


@dataclass(frozen=True)
class VcocoLabels:
    """V-COCO tables: actions (id 1..26 -> name, roles incl. 'agent') and the 29 verb-role
    classes (index 0..28 -> (action name, role or None))."""

    actions: dict[int, str]
    action_roles: dict[str, tuple[str, ...]]
    verb_roles: tuple[tuple[str, str | None], ...]

    def action_id(self, name: str) -> int:
        return next(i for i, n in self.actions.items() if n == name)

    def verb_role_index(self, action: str, role: str | None) -> int:
        """Index of (action, role) in the 29-class QPIC list; role None for agent-only actions."""
        return self.verb_roles.index((action, role))


@cache
def hico() -> HicoLabels:
    raw = json.loads((LABELS_DIR / "hicodet.json").read_text())
    index_to_coco = {o["index"]: o["coco_id"] for o in raw["objects"]}
    verb_by_index = {v["index"]: v["id"] for v in raw["verbs"]}
    return HicoLabels(
        object_names={o["coco_id"]: o["name"] for o in raw["objects"]},
        object_coco_ids=tuple(sorted(index_to_coco.values())),
        verb_names={v["id"]: v["name"] for v in raw["verbs"]},
        hoi_verb={h["id"]: verb_by_index[h["verb_index"]] for h in raw["hois"]},
        hoi_object={h["id"]: index_to_coco[h["object_index"]] for h in raw["hois"]},
        rare_hoi_ids=frozenset(raw["rare_hoi_ids"]),
    )


@cache
def vcoco() -> VcocoLabels:
    raw = json.loads((LABELS_DIR / "vcoco.json").read_text())
    return VcocoLabels(
        actions={a["id"]: a["name"] for a in raw["actions"]},
        action_roles={a["name"]: tuple(a["roles"]) for a in raw["actions"]},
        verb_roles=tuple((v["action"], v["role"]) for v in raw["verb_roles"]),
    )


def coco_category_name(coco_id: int) -> str:
    """COCO's spelling of a category name (spaces, as in COCO's instances files)."""
    return hico().object_names[coco_id].replace("_", " ")
