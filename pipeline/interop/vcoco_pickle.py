"""Predictions ⇄ the official V-COCO detection pickle read by s-gupta/v-coco ``vsrl_eval.py``.

The pickle (protocol 2, readable by Python 2) is a list of dicts, one per predicted pair
(query): ``image_id`` (COCO id, int), ``person_box`` [x1, y1, x2, y2], ``<action>_agent`` =
score for all 26 actions and ``<action>_<role>`` = [x1, y1, x2, y2, score] for all 25
action-roles; every key is present (the evaluator indexes them all). A class the table has no
row for gets NaN (the evaluator skips NaN scores); a missing role object is a NaN box, which
Scenario 1 reads as "no role predicted". Agent scores of actions with roles: an explicit
agent row of the table (role null; what importing a pickle keeps from its ``<action>_agent``),
else, as QPIC's ``generate_vcoco_official.py``, the largest of the action's role scores.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from model.common import labels
from pipeline import tables
from pipeline.inputs import safe_pickle
from model.common.errors import UserError
from pipeline.interop import predictions as preds
from pipeline.interop.image_keys import KeyMap, number

PROTOCOL = 2


def _classes() -> tuple[list[tuple[str, str | None]], dict[tuple[int, str | None], int]]:
    """The 29 verb-role classes, then the agent (role None) of each action with roles, and
    (action id, role) -> class index."""
    vc = labels.vcoco()
    classes = list(vc.verb_roles)
    classes += [(a, None) for a, roles in vc.action_roles.items() if len(roles) > 1 and (a, None) not in classes]
    return classes, {(vc.action_id(a), r): i for i, (a, r) in enumerate(classes)}


def query_keys(frame: pd.DataFrame) -> np.ndarray:
    """One integer per (image, query); rows without a query index fall back to their boxes."""
    q = preds.int_column(frame, "query")
    boxes = frame[[*preds.HUMAN, *preds.OBJECT]].astype("float64").fillna(-1e9)
    fallback = pd.MultiIndex.from_frame(pd.concat([frame[["image_id"]], boxes], axis=1)).factorize()[0]
    key = pd.MultiIndex.from_arrays([frame["image_id"].to_numpy(object), np.where(q >= 0, q, -1 - fallback)])
    return key.factorize()[0]


def dense(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Per pair: (image_id, person box) frame, scores [P, C] and role boxes [P, C, 4] over the
    classes of :func:`_classes` (NaN = no row / no object), and [P, C] bool: a row exists (an
    agent row with a NaN score says "no agent score", as the pickle's NaN). Duplicate (pair,
    class) rows keep the highest score."""
    classes, index = _classes()
    frame = frame.sort_values(["image_id", "query"], kind="stable", na_position="last", ignore_index=True)
    role = frame["role"].astype(object).where(frame["role"].notna(), None)
    cls = np.array([index.get((v, r), -1) for v, r in zip(preds.int_column(frame, "verb_id"), role, strict=True)])
    if (cls < 0).any():
        bad = frame.loc[cls < 0, ["verb_id", "role"]].iloc[0].tolist()
        raise UserError(f"predictions: (verb_id, role) {bad} is not a V-COCO action-role")
    pair = query_keys(frame)
    order = np.argsort(frame["score"].to_numpy(np.float64), kind="stable")  # highest assigned last
    scores = np.full((pair.max() + 1 if len(pair) else 0, len(classes)), np.nan)
    roles = np.full((*scores.shape, 4), np.nan)
    scores[pair[order], cls[order]] = frame["score"].to_numpy(np.float64)[order]
    roles[pair[order], cls[order]] = preds.boxes(frame, preds.OBJECT)[order]
    present = np.zeros(scores.shape, dtype=bool)
    present[pair, cls] = True
    first = pd.DataFrame({"pair": pair, "image_id": frame["image_id"].to_numpy(object)})
    first[list(preds.HUMAN)] = preds.boxes(frame, preds.HUMAN)
    heads = first.drop_duplicates("pair").sort_values("pair").reset_index(drop=True)
    return heads, scores, roles, present


def to_detections(frame: pd.DataFrame) -> list[dict]:
    """The evaluator's list of dicts, one per pair, in (image_id, query) order."""
    classes, _ = _classes()
    vc = labels.vcoco()
    heads, scores, roles, present = dense(frame)
    agent = {}
    for action, action_roles in vc.action_roles.items():
        k = classes.index((action, None))
        cols = [i for i, (a, r) in enumerate(classes) if a == action and r is not None]
        with np.errstate(all="ignore"):
            derived = np.fmax.reduce(scores[:, cols], axis=1) if cols else scores[:, k]
        agent[action] = np.where(present[:, k], scores[:, k], derived)
    role_values = np.concatenate([roles, scores[:, :, None]], axis=2).tolist()  # [P][29][5]
    image_keys = [number(i) for i in heads["image_id"]]
    person = heads[list(preds.HUMAN)].to_numpy(np.float64).tolist()
    agents = [(f"{a}_agent", v.tolist()) for a, v in agent.items()]
    role_keys = [(f"{a}_{r}", classes.index((a, r))) for a, rs in vc.action_roles.items() for r in rs[1:]]
    out = []
    from model.common.progress import bar

    for p in bar(range(len(heads)), desc="export: V-COCO detections", unit="pair", leave=False):
        det = {"image_id": image_keys[p], "person_box": person[p]}
        det.update((key, values[p]) for key, values in agents)
        det.update((key, role_values[p][c]) for key, c in role_keys)
        out.append(det)
    return out


def write_pickle(detections: list[dict], path: Path) -> Path:
    def dump(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            pickle.dump(detections, f, protocol=PROTOCOL)
    return tables.atomic_write(path, dump)


def from_detections(detections: object, keys: KeyMap, source: str) -> pd.DataFrame:
    """The inverse: one ``predictions`` row per (pair, action-role) with a non-NaN score, and
    one agent row (role null) per non-NaN ``<action>_agent`` of every action, so that the
    evaluator ranks agents by the pickle's own agent scores, as vsrl_eval does. All-zero role
    boxes (another way to say "no role") become NaN. Detections on images that ``keys`` does
    not know (outside the test split) are left out, counted and reported: vsrl_eval never
    looks at them; a pickle none of whose detections is known is refused."""
    if not isinstance(detections, list):
        raise UserError(f"{source}: expected a list of detection dicts")
    classes, _ = _classes()
    vc = labels.vcoco()
    rows = []
    seen: dict[int, int] = {}
    for n, det in enumerate(detections):
        try:
            image, person = int(det["image_id"]), [float(v) for v in det["person_box"]]
            query = seen[image] = seen.get(image, -1) + 1
            with_roles: set[str] = set()  # actions with a scored role in this detection
            for action, role in classes:  # roles before the agents of role actions
                if role is None:
                    box, score = [np.nan] * 4, float(det[f"{action}_agent"])
                else:
                    value = det[f"{action}_{role}"]
                    box, score = list(map(float, value[:4])), float(value[4])
                    if not np.isnan(score):
                        with_roles.add(action)
                # a NaN agent next to scored roles stays a row: "no agent score", not "derive one"
                if not np.isnan(score) or (role is None and action in with_roles):
                    rows.append((image, query, *person, *box, vc.action_id(action), role, score))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            why = f"{type(exc).__name__}: {exc}"
            raise UserError(f"{source}: detection {n} is not in the V-COCO format ({why})") from None
    cols = ["key", "query", *preds.HUMAN, *preds.OBJECT, "verb_id", "role", "score"]
    got = pd.DataFrame(rows, columns=cols)
    known = keys.known(got["key"].tolist())
    if not known.all():
        outside = sorted(set(got.loc[~known, "key"].tolist()))
        if known.sum() == 0:
            raise UserError(f"{source}: none of its images is among the images given (image_id {outside[0]}, ...)")
        n_det = len(got.loc[~known, ["key", "query"]].drop_duplicates())
        print(f"import-preds: {source}: {n_det} detections on {len(outside)} images outside the image list "
              f"(e.g. image_id {outside[0]}) left out, as vsrl_eval ignores them")
        got = got[known].reset_index(drop=True)
    obj = got[list(preds.OBJECT)].to_numpy(np.float64, copy=True)
    obj[(obj == 0).all(axis=1)] = np.nan
    return preds.conform({
        "image_id": keys.ids(got["key"].tolist()), "query": got["query"].to_numpy(np.int32),
        **{c: got[c].to_numpy(np.float32) for c in preds.HUMAN},
        **{c: obj[:, i].astype(np.float32) for i, c in enumerate(preds.OBJECT)},
        "verb_id": got["verb_id"].to_numpy(np.int32), "role": pd.array(got["role"].to_numpy(object), dtype="str"),
        "score": got["score"].to_numpy(np.float32),
    })


def read_pickle(path: Path, keys: KeyMap) -> pd.DataFrame:
    """Load a detection pickle with the restricted unpickler and convert it."""
    return from_detections(safe_pickle.load(path), keys, str(path))


def run(predictions_path: Path, out: Path) -> int:
    """Command entry point: predictions table -> detection pickle; prints the counts."""
    detections = to_detections(preds.read(predictions_path))
    write_pickle(detections, out)
    print(f"export-vcoco: {predictions_path} -> {out} ({len(detections)} detections, one per pair; "
          "pickle protocol 2)")
    return len(detections)
