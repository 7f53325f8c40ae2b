"""Official V-COCO agent and role AP (s-gupta/v-coco ``vsrl_eval.py``; evaluation-protocols §3).

Each detection is assigned to the ground-truth person of its image with the largest IoU (+1
pixel convention, float32 like vsrl_eval; the first wins ties), whatever the action; if that
person is not annotated in V-COCO the detection is skipped. Agent AP of action a: TP when the
person does a, IoU >= 0.5 and the person is not yet covered for a. Role AP adds the role:
IoU(role box, the person's role object) >= 0.5; if the person has no role object, Scenario 1
accepts only an empty (all-zero or all-NaN) role box, Scenario 2 anything. npos counts every
person doing the action, with or without a role object. All-point VOC AP on vsrl_eval's
numbers: recall TP / npos in float32 (its cumulative counts are float32 arrays), precision in
float64 (numpy >= 2 promotes its float64 ``eps`` guard). Ties in score keep the input order of
the detections (decision 15; vsrl_eval's ``argsort()[::-1]`` has no defined tie order).

Vectorised per action: the person assignment is computed once for all detections; each
(action, role) then needs only array operations on its own entries, instead of re-scanning all
detections per image as vsrl_eval does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from model.box_geometry import iou_np
from pipeline.metrics.ap import all_point_ap
from pipeline.metrics.matching import TieRule, best_match, first_come_true_positives, rank_order, tie_keys
from pipeline.metrics.vcoco_data import VcocoDetections, VcocoGroundTruth, role_slot

IOU_THRESHOLD = 0.5
OMITTED_IN_24 = (("point", "instr"),)  # papers' 24-role mean (iCAN's script)


@dataclass(frozen=True)
class VcocoResult:
    """APs (NaN where undefined) and the per-(action, role) table."""

    agent_ap: np.ndarray  # [A]
    role_ap: dict[str, np.ndarray]  # scenario -> [A, 2], NaN for absent roles
    npos: np.ndarray  # [A]
    table: pd.DataFrame  # action, role, npos, agent_ap, role_ap_scenario1, role_ap_scenario2

    def means(self) -> dict[str, float]:
        """agent_map (nansum / 26, as printed by vsrl_eval), role_map_25 (nanmean over the 25
        roles) and role_map_24 (without point-instr) per scenario."""
        out = {"agent_map": float(np.nansum(self.agent_ap) / len(self.agent_ap))}
        keep24 = ~self.table.apply(lambda r: (r["action"], r["role"]) in OMITTED_IN_24, axis=1).to_numpy()
        for sc in self.role_ap:
            col = self.table[f"role_ap_{sc}"].to_numpy(np.float64)
            out[f"{sc}/role_map_25"] = _nanmean(col)
            out[f"{sc}/role_map_24"] = _nanmean(col[keep24])
        return out


def _nanmean(x: np.ndarray) -> float:
    return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")


class _Context:
    """Per-detection person assignment shared by all actions."""

    def __init__(self, dets: VcocoDetections, gt: VcocoGroundTruth, ties: TieRule = "input_order"):
        self.dets, self.gt = dets, gt
        match = best_match(dets.image, (dets.person_box.astype(np.float32),), gt.person_image,
                           (gt.person_box.astype(np.float32),), plus_one=True)
        self.person = match.gt  # [N] -1 when the image has no person (counted as FP)
        self.person_ok = match.overlap >= IOU_THRESHOLD
        ignored = np.zeros(len(dets.image), dtype=bool)
        has = self.person >= 0
        ignored[has] = gt.person_actions[self.person[has], 0] == -1
        self.ignored = ignored
        self.npos = (gt.person_actions == 1).sum(axis=0).astype(np.float64)
        order = np.argsort(dets.entry_slot, kind="stable")
        self.slot_sorted = order
        self.slot_bounds = np.searchsorted(dets.entry_slot[order], np.arange(len(gt.actions) * 3 + 1))
        role_box = np.nan_to_num(dets.entry_box, nan=-1)  # NaN would break the lexicographic tie order
        self.tie = tie_keys(ties, dets.image[dets.entry_det], (dets.person_box[dets.entry_det], role_box))

    def entries(self, slot: int) -> np.ndarray:
        """Entry indices of ``slot`` whose detection is not assigned to an ignored person."""
        e = self.slot_sorted[self.slot_bounds[slot]:self.slot_bounds[slot + 1]]
        return e[~self.ignored[self.dets.entry_det[e]]]

    def ap(self, e: np.ndarray, action: int, role_ok: np.ndarray) -> float:
        """All-point AP of entries ``e`` given each entry's role correctness [len(e)] bool."""
        if self.npos[action] == 0:
            return float("nan")  # vsrl_eval stops on an assertion here
        det = self.dets.entry_det[e]
        person = self.person[det]
        does = np.zeros(len(e), dtype=bool)
        has = person >= 0
        does[has] = self.gt.person_actions[person[has], action] == 1
        qualifies = does & self.person_ok[det] & role_ok
        order = rank_order(self.dets.entry_score[e], None if self.tie is None else self.tie.subset(e))
        tp = first_come_true_positives(order, person, qualifies)[order]
        if len(tp) == 0:
            return 0.0
        ctp = np.cumsum(tp, dtype=np.float32)  # exact below 2**24
        recall = (ctp / np.float32(self.npos[action])).astype(np.float64)  # rounded to float32, as vsrl_eval
        return all_point_ap(recall, ctp.astype(np.float64) / np.arange(1, len(tp) + 1))


def _role_ok(ctx: _Context, e: np.ndarray, action: int, role: int, scenario: str) -> np.ndarray:
    """[len(e)] bool: the role box is right for the detection's assigned person."""
    det = ctx.dets.entry_det[e]
    person = np.clip(ctx.person[det], 0, None)
    gt_box = ctx.gt.role_box[person, action, role] if len(ctx.gt.role_box) else np.full((len(e), 4), np.nan, np.float32)
    pred = ctx.dets.entry_box[e]
    no_gt_role = np.isnan(gt_box[:, 0])
    if scenario == "scenario1":
        empty = np.all(pred == 0, axis=1) | np.all(np.isnan(pred), axis=1)
        missing_ok = empty
    else:
        missing_ok = np.ones(len(e), dtype=bool)
    overlap = iou_np(gt_box, pred, plus_one=True, clip_areas=False)  # NaN boxes overlap nothing
    return np.where(no_gt_role, missing_ok, overlap >= IOU_THRESHOLD)


def evaluate_vcoco(dets: VcocoDetections, gt: VcocoGroundTruth,
                   scenarios: tuple[str, ...] = ("scenario1", "scenario2"),
                   ties: TieRule = "input_order") -> VcocoResult:
    """Agent AP for the 26 actions and role AP for the 25 action-roles, per scenario.
    ``ties``: order of equal scores, "input_order" (entries in the order given) or "image_box"."""
    ctx = _Context(dets, gt, ties)
    n_act = len(gt.actions)
    agent = np.array([ctx.ap(ctx.entries(a), a, np.ones(len(ctx.entries(a)), bool)) for a in range(n_act)])
    role = {sc: np.full((n_act, 2), np.nan) for sc in scenarios}
    rows = []
    for a in range(n_act):
        for r, name in enumerate(gt.roles[a]):
            e = ctx.entries(role_slot(n_act, a, r))
            for sc in scenarios:
                role[sc][a, r] = ctx.ap(e, a, _role_ok(ctx, e, a, r, sc))
            rows.append({"action": gt.actions[a], "role": name, "npos": int(ctx.npos[a]), "agent_ap": agent[a],
                         **{f"role_ap_{sc}": role[sc][a, r] for sc in scenarios}})
        if not gt.roles[a]:
            rows.append({"action": gt.actions[a], "role": None, "npos": int(ctx.npos[a]), "agent_ap": agent[a],
                         **{f"role_ap_{sc}": np.nan for sc in scenarios}})
    return VcocoResult(agent, role, ctx.npos, pd.DataFrame(rows))
