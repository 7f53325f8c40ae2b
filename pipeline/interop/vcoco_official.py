"""The official V-COCO files (s-gupta/v-coco): ``data/vcoco/vcoco_<split>.json`` and
``data/splits/vcoco_<split>.ids``, read into arrays.

A ``vcoco_<split>.json`` is a list of the 26 actions, each ``{"action_name", "role_name"
(['agent', ...]), "include", "image_id", "ann_id", "label" (N each), "role_object_id"}``, the
last flattened role-major: K blocks of N COCO annotation ids, block 0 = the agent (= ann_id),
0 = no role object. ``label`` is 1 when the person does the action.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.inputs import json_reader as json_input
from model.common.errors import UserError


@dataclass(frozen=True)
class Action:
    """One action entry with its N rows: arrays image_id, ann_id, label [N] and
    role_object_id [N, K] (column 0 = agent)."""

    name: str
    roles: tuple[str, ...]
    include: list
    image_id: np.ndarray
    ann_id: np.ndarray
    label: np.ndarray
    role_object_id: np.ndarray


def read_json(path: Path) -> object:
    return json_input.read_json(path)


def load_actions(path: Path) -> list[Action]:
    """Read and check one ``vcoco_<split>.json``."""
    data = read_json(path)
    if not isinstance(data, list) or not data:
        raise UserError(f"{path}: expected a list of action entries")
    out = []
    for i, a in enumerate(data):
        try:
            roles = tuple(a["role_name"])
            n = len(a["ann_id"])
            flat = np.asarray(a["role_object_id"], dtype=np.int64)
            if flat.size != n * len(roles) or len(a["image_id"]) != n or len(a["label"]) != n:
                raise ValueError(f"{n} ann_id, {len(a['image_id'])} image_id, {len(a['label'])} label, "
                                 f"{flat.size} role_object_id for {len(roles)} roles")
            out.append(Action(str(a["action_name"]), roles, a.get("include", []),
                              np.asarray(a["image_id"], dtype=np.int64), np.asarray(a["ann_id"], dtype=np.int64),
                              np.asarray(a["label"], dtype=np.int64), flat.reshape(len(roles), n).T))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{path}: action entry {i} is malformed ({exc})") from None
    return out


def merge(first: list[Action], second: list[Action], source: str) -> list[Action]:
    """Row-wise union of two splits (train + val = trainval), action by action."""
    if [a.name for a in first] != [a.name for a in second]:
        raise UserError(f"{source}: the two splits list different actions")
    return [Action(a.name, a.roles, a.include, np.concatenate([a.image_id, b.image_id]),
                   np.concatenate([a.ann_id, b.ann_id]), np.concatenate([a.label, b.label]),
                   np.concatenate([a.role_object_id, b.role_object_id])) for a, b in zip(first, second, strict=True)]


def load_split(vcoco_dir: Path, split: str) -> list[Action]:
    """``vcoco_<split>.json``; for 'trainval' the union of train and val when the trainval file
    is absent."""
    path = vcoco_dir / f"vcoco_{split}.json"
    if split == "trainval" and not path.exists() and (vcoco_dir / "vcoco_train.json").exists():
        return merge(load_actions(vcoco_dir / "vcoco_train.json"), load_actions(vcoco_dir / "vcoco_val.json"),
                     str(vcoco_dir))
    return load_actions(path)


def read_ids(path: Path) -> np.ndarray:
    """A ``.ids`` split file: one COCO image id per line."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    try:
        return np.array([int(float(t)) for t in text.split()], dtype=np.int64)
    except ValueError as exc:
        raise UserError(f"{path}: not a list of image ids ({exc})") from None


def verb_role_names(actions: list[Action]) -> list[tuple[str, str | None]]:
    """The verb-role classes in the order QPIC derives them: per action, the action itself when
    it has only the agent role, else one class per non-agent role."""
    out: list[tuple[str, str | None]] = []
    for a in actions:
        out += [(a.name, None)] if len(a.roles) == 1 else [(a.name, r) for r in a.roles[1:]]
    return out
