"""V-COCO evaluation inputs: the official ground truth files and the detection formats.

Ground truth is read exactly as s-gupta/v-coco ``vsrl_eval.py`` prepares it (§3.4): from
``<root>/data/vcoco/vcoco_<split>.json`` (26 action dicts; ``role_object_id`` flattened
role-major and reshaped to [n_annotations, n_roles] as ``vsrl_utils`` does),
``<root>/data/splits/vcoco_<split>.ids`` and ``<root>/data/instances_vcoco_all_2014.json``
(COCO format, read with pycocotools). Persons present in COCO but not in V-COCO are kept with
actions -1: detections matched to them are skipped by the evaluator.

Detections are held in a long format: one row per detection (person box) and one entry per
(detection, slot) with a score, where slots 0..25 are the actions' agent scores and slot
26 + 2a + r is role r of action a (a role box and a score).
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model.common import labels
from model.common.errors import UserError
from pipeline.inputs.json_reader import read_json
from pipeline.metrics.inputs import HUMAN_COLS, OBJECT_COLS, boxes_of

N_ROLE_SLOTS = 2  # at most two roles per action (hit, eat, cut)


def role_slot(n_actions: int, action: int, role: int) -> int:
    """Slot index of role ``role`` (0-based, agent excluded) of action ``action``."""
    return n_actions + N_ROLE_SLOTS * action + role


@dataclass(frozen=True)
class VcocoGroundTruth:
    """Persons of the split's images with their actions and role boxes (float32, +1 frame of
    vsrl_eval: x2 = x + max(0, w - 1), clipped to the image)."""

    image_ids: np.ndarray  # [I] int64 COCO ids, ascending
    stem_to_id: dict[str, int]  # image file stem -> COCO id (maps our string image ids)
    actions: tuple[str, ...]  # 26, order of the annotation file
    roles: tuple[tuple[str, ...], ...]  # per action, role names without "agent"
    person_image: np.ndarray  # [P] int64 image code
    person_box: np.ndarray  # [P, 4] float32
    person_actions: np.ndarray  # [P, A] int8: 1 / 0, -1 = person not in V-COCO (ignored)
    role_box: np.ndarray  # [P, A, 2, 4] float32, NaN where the person has no role object
    n_missing_role_objects: int  # role objects dropped by box sanitising (vsrl_eval asserts)

    def codes(self, coco_ids: np.ndarray) -> np.ndarray:
        """[N] int64 image code of COCO ids, -1 outside the split."""
        coco_ids = np.asarray(coco_ids, dtype=np.int64)
        pos = np.clip(np.searchsorted(self.image_ids, coco_ids), 0, max(len(self.image_ids) - 1, 0))
        return np.where(self.image_ids[pos] == coco_ids, pos, -1) if len(self.image_ids) else np.full(len(coco_ids), -1)

    def coco_id(self, image_id: str) -> int:
        """COCO id of one of our image ids: by file stem, else by its trailing digits."""
        if image_id in self.stem_to_id:
            return self.stem_to_id[image_id]
        m = re.search(r"(\d+)$", image_id)
        return int(m.group(1)) if m else -1


def vcoco_files(root: Path, split: str = "test") -> tuple[Path, Path, Path]:
    """The three official files under the V-COCO root; a clear error when one is missing."""
    paths = (root / "data" / "vcoco" / f"vcoco_{split}.json", root / "data" / "splits" / f"vcoco_{split}.ids",
             root / "data" / "instances_vcoco_all_2014.json")
    for p in paths:
        if not p.exists():
            raise UserError(f"{p}: V-COCO evaluation file not found (set evaluate.vcoco_root to the v-coco folder)")
    return paths


def load_vcoco_ground_truth(root: Path, split: str = "test") -> VcocoGroundTruth:
    """Read and prepare the official ground truth (see module docstring)."""
    vsrl_file, split_file, coco_file = vcoco_files(root, split)
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco = COCO(str(coco_file))
    vsrl = read_json(vsrl_file, "V-COCO annotation file")
    image_ids = np.unique(np.loadtxt(split_file, dtype=np.int64, ndmin=1))
    actions = tuple(a["action_name"] for a in vsrl)
    roles = tuple(tuple(a["role_name"][1:]) for a in vsrl)
    labelled = [_labelled_rows(a) for a in vsrl]
    in_vcoco = {int(x) for x in np.ravel(vsrl[0]["ann_id"])}
    person_cat = coco.getCatIds()[0]  # vsrl_eval: persons = contiguous class 1 = first listed category
    rows, missing = [], 0
    for code, img in enumerate(coco.loadImgs(image_ids.tolist())):
        objs = _clean_objects(coco, img)
        box_of = {o["id"]: o["clean_bbox"] for o in objs}
        for o in objs:
            if o["category_id"] == person_cat:
                acts, rbox, miss = _person_labels(o["id"], o["id"] in in_vcoco, labelled, box_of, len(roles))
                rows.append((code, o["clean_bbox"], acts, rbox))
                missing += miss
    stems = {Path(i["file_name"]).stem: int(i["id"]) for i in coco.dataset.get("images", [])}
    return _assemble(image_ids, stems, actions, roles, rows, missing)


def _labelled_rows(action: dict) -> dict[int, np.ndarray]:
    """ann_id -> role object ids (agent first) of the annotations labelled 1 for the action."""
    n_roles = len(action["role_name"])
    role_ids = np.asarray(action["role_object_id"], dtype=np.int64).reshape(n_roles, -1).T
    ann = np.ravel(action["ann_id"]).astype(np.int64)
    lab = np.ravel(action["label"])
    return {int(a): role_ids[i] for i, a in enumerate(ann) if lab[i] == 1}


def _clean_objects(coco, img: dict) -> list[dict]:
    """vsrl_eval's sanitising: skip ``ignore``, convert to x1y1x2y2 with w - 1, clip, drop
    zero-area and degenerate boxes. Crowd annotations are kept, as there."""
    w, h = img["width"], img["height"]
    out = []
    for o in coco.loadAnns(coco.getAnnIds(imgIds=img["id"], iscrowd=None)):
        if o.get("ignore", 0) == 1:
            continue
        x, y, bw, bh = o["bbox"]
        x1, y1 = min(w - 1.0, max(0.0, x)), min(h - 1.0, max(0.0, y))
        x2 = min(w - 1.0, max(0.0, x + max(0.0, bw - 1.0)))
        y2 = min(h - 1.0, max(0.0, y + max(0.0, bh - 1.0)))
        if o["area"] > 0 and x2 > x1 and y2 > y1:
            out.append({**o, "clean_bbox": (x1, y1, x2, y2)})
    return out


def _person_labels(ann_id: int, in_vcoco: bool, labelled: list[dict], box_of: dict, n_actions: int):
    """(actions [A] int8, role boxes [A, 2, 4] float32 NaN = none, #missing role objects)."""
    acts = np.full(n_actions, -1 if not in_vcoco else 0, dtype=np.int8)
    rbox = np.full((n_actions, N_ROLE_SLOTS, 4), np.nan, dtype=np.float32)
    missing = 0
    if not in_vcoco:
        return acts, rbox, missing
    for a, rows in enumerate(labelled):
        if ann_id not in rows:
            continue
        acts[a] = 1
        for r, obj_id in enumerate(rows[ann_id][1:]):
            if obj_id == 0:
                continue  # no role object annotated
            if int(obj_id) in box_of:
                rbox[a, r] = box_of[int(obj_id)]
            else:
                missing += 1  # vsrl_eval would stop on an assertion here
    return acts, rbox, missing


def _assemble(image_ids, stems, actions, roles, rows, missing) -> VcocoGroundTruth:
    n_act = len(actions)
    if rows:
        code, box, acts, rbox = zip(*rows)
        arrays = (np.array(code, np.int64), np.array(box, np.float32), np.stack(acts), np.stack(rbox))
    else:
        arrays = (np.zeros(0, np.int64), np.zeros((0, 4), np.float32), np.zeros((0, n_act), np.int8),
                  np.zeros((0, n_act, N_ROLE_SLOTS, 4), np.float32))
    return VcocoGroundTruth(image_ids, stems, actions, roles, *arrays, missing)


@dataclass(frozen=True)
class VcocoDetections:
    """Long-format detections (see module docstring); scores and boxes float32 like vsrl_eval."""

    image: np.ndarray  # [N] int64 image code
    person_box: np.ndarray  # [N, 4] float32
    entry_det: np.ndarray  # [E] int64 detection of each entry
    entry_slot: np.ndarray  # [E] int64
    entry_box: np.ndarray  # [E, 4] float32 role box (NaN for agent entries)
    entry_score: np.ndarray  # [E] float32, never NaN (NaN scores are skipped, as there)


def detections_from_official(dets: list[dict], gt: VcocoGroundTruth) -> VcocoDetections:
    """The official pickle's list of dicts (image_id, person_box, <action>_agent = score,
    <action>_<role> = [x1, y1, x2, y2, score]); every key must be present, as in vsrl_eval.
    Detections on images outside the split are dropped (vsrl_eval never collects them)."""
    image = gt.codes(np.array([d["image_id"] for d in dets], dtype=np.int64))
    keep = np.flatnonzero(image >= 0)
    kept = [dets[i] for i in keep]
    person = np.array([d["person_box"] for d in kept], dtype=np.float32).reshape(-1, 4)
    n_act = len(gt.actions)
    det_idx, slots, boxes, scores = [], [], [], []
    for a, name in enumerate(gt.actions):
        for r, role in enumerate(("agent",) + gt.roles[a]):
            vals = _gather(kept, f"{name}_{role}", keep)
            if r == 0:
                s, b = vals.reshape(-1), np.full((len(kept), 4), np.nan, np.float32)
            else:
                s, b = vals.reshape(-1, 5)[:, 4], vals.reshape(-1, 5)[:, :4]
            ok = np.flatnonzero(~np.isnan(s))
            det_idx.append(ok)
            slots.append(np.full(len(ok), a if r == 0 else role_slot(n_act, a, r - 1)))
            boxes.append(b[ok])
            scores.append(s[ok])
    return VcocoDetections(image[keep], person, *_concat(det_idx, slots, boxes, scores))


def _gather(kept: list[dict], key: str, positions: np.ndarray) -> np.ndarray:
    try:
        return np.array([d[key] for d in kept], dtype=np.float32)
    except KeyError:
        bad = next(i for i, d in zip(positions, kept) if key not in d)
        raise UserError(f"V-COCO detections: detection {bad} has no key '{key}'") from None


def _concat(det_idx, slots, boxes, scores):
    return (np.concatenate(det_idx).astype(np.int64), np.concatenate(slots).astype(np.int64),
            np.concatenate(boxes).astype(np.float32).reshape(-1, 4), np.concatenate(scores).astype(np.float32))


def detections_from_predictions(df: pd.DataFrame, gt: VcocoGroundTruth) -> VcocoDetections:
    """A V-COCO predictions table -> detections, one per (image, query), as QPIC's
    ``generate_vcoco_official``: rows with a role fill that role (box = object box, NaN for the
    missing-object class); agent-only actions fill the agent score; a role action's agent score
    is its agent row's (role null; NaN = none), else the max of its role scores. Absent
    (action, role)s stay empty (NaN in the pickle)."""
    uniq, inverse = np.unique(df["image_id"].astype(str).to_numpy(), return_inverse=True)
    code = gt.codes(np.array([gt.coco_id(i) for i in uniq], dtype=np.int64))[inverse]  # per distinct image
    df = df.assign(_code=code)[code >= 0]
    det = df.groupby(["_code", "query"], sort=True).ngroup().to_numpy(np.int64)
    n_det = int(det.max()) + 1 if len(det) else 0
    image = np.zeros(n_det, np.int64)
    person = np.zeros((n_det, 4), np.float32)
    image[det] = df["_code"].to_numpy()
    person[det] = boxes_of(df, HUMAN_COLS)
    a_idx, r_idx = _action_role_index(df, gt)
    has_role = r_idx >= 0
    slot = np.where(has_role, role_slot(len(gt.actions), a_idx, np.maximum(r_idx, 0)), a_idx)
    box = np.where(has_role[:, None], boxes_of(df, OBJECT_COLS), np.nan).astype(np.float32)
    score = df["score"].to_numpy(np.float32)
    agent = _derived_agent(det, a_idx, score, has_role)
    ok = ~np.isnan(score)  # a NaN agent row only stops the derivation (the pickle's NaN: skipped)
    return VcocoDetections(image, person, *_concat([det[ok], agent[0]], [slot[ok], agent[1]],
                                                  [box[ok], np.full((len(agent[0]), 4), np.nan)], [score[ok], agent[2]]))


def _action_role_index(df: pd.DataFrame, gt: VcocoGroundTruth) -> tuple[np.ndarray, np.ndarray]:
    """[N] action position in the annotation file and role position (-1: agent / no role)."""
    names = labels.vcoco().actions
    lut = np.full(max(names) + 1, -1, dtype=np.int64)
    for vid, name in names.items():
        lut[vid] = gt.actions.index(name)
    a_idx = lut[df["verb_id"].to_numpy(np.int64)]
    role = df["role"].astype(object).where(df["role"].notna(), "").to_numpy(dtype=str)
    r_idx = np.full(len(df), -1, dtype=np.int64)
    for a, roles in enumerate(gt.roles):  # 26 x (1..2) vectorised passes
        for r, name in enumerate(roles):
            r_idx[(a_idx == a) & (role == name)] = r
    bad = (role != "") & (r_idx < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise UserError(f"predictions: action {gt.actions[a_idx[i]]} has no role '{role[i]}'")
    return a_idx, r_idx


def _derived_agent(det, a_idx, score, has_role):
    """Agent entries of role actions: the max role score per (detection, action), unless the
    table has an explicit agent row for it (even one with a NaN score)."""
    roles = pd.DataFrame({"det": det[has_role], "slot": a_idx[has_role], "score": score[has_role]})
    best = roles.groupby(["det", "slot"], sort=True)["score"].max().reset_index()
    explicit = pd.DataFrame({"det": det[~has_role], "slot": a_idx[~has_role], "_explicit": True}).drop_duplicates()
    best = best.merge(explicit, on=["det", "slot"], how="left")
    best = best[best["_explicit"].isna()]
    return best["det"].to_numpy(np.int64), best["slot"].to_numpy(np.int64), best["score"].to_numpy(np.float32)


def detections_to_official(dets: VcocoDetections, gt: VcocoGroundTruth) -> list[dict]:
    """Dense list of dicts in the official pickle format (NaN where a slot is empty), e.g. to
    run ``vsrl_eval.py`` itself."""
    n_act = len(gt.actions)
    n_slots = n_act * (1 + N_ROLE_SLOTS)
    table = np.full((len(dets.image), n_slots, 5), np.nan, dtype=np.float32)
    table[dets.entry_det, dets.entry_slot, :4] = dets.entry_box
    table[dets.entry_det, dets.entry_slot, 4] = dets.entry_score
    out = []
    for i in range(len(dets.image)):
        d = {"image_id": int(gt.image_ids[dets.image[i]]), "person_box": dets.person_box[i].tolist()}
        for a, name in enumerate(gt.actions):
            d[f"{name}_agent"] = float(table[i, a, 4])
            for r, role in enumerate(gt.roles[a]):
                d[f"{name}_{role}"] = table[i, role_slot(n_act, a, r)].tolist()
        out.append(d)
    return out
