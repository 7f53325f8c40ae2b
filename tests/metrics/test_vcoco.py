"""Official V-COCO role AP: small files in the official formats, hand-checked cases, and a
per-image loop written like vsrl_eval.py as the oracle on random detections."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from model.common import labels
from pipeline.metrics.ap import all_point_ap
from pipeline.metrics.vcoco import evaluate_vcoco
from pipeline.metrics.vcoco_data import (detections_from_official, detections_from_predictions, detections_to_official,
                                         load_vcoco_ground_truth)

# COCO annotations: (ann id, image id, category, x, y, w, h)
ANNS = [(101, 1, 1, 10, 10, 50, 100), (102, 1, 1, 200, 10, 50, 100), (103, 1, 1, 400, 10, 50, 100),
        (201, 1, 47, 70, 50, 20, 20), (104, 2, 1, 10, 10, 50, 100)]
IN_VCOCO = [101, 102, 104]  # 103 is a COCO person without V-COCO labels: ignored
# (action, ann id) -> role object ann ids (0 = no role object)
LABELS = {("hold", 101): [201], ("stand", 101): [], ("eat", 102): [0, 0], ("stand", 104): [], ("point", 101): [201]}


def box(ann_id: int) -> list[float]:
    a = next(a for a in ANNS if a[0] == ann_id)
    return [a[3], a[4], a[3] + a[5] - 1.0, a[4] + a[6] - 1.0]


def write_vcoco(root, anns=ANNS, in_vcoco=IN_VCOCO, labelled=LABELS, images=(1, 2)):
    (root / "data" / "vcoco").mkdir(parents=True)
    (root / "data" / "splits").mkdir(parents=True)
    vc = labels.vcoco()
    actions = []
    for aid in sorted(vc.actions):
        name = vc.actions[aid]
        roles = list(vc.action_roles[name])
        rows = [(a, labelled.get((name, a))) for a in in_vcoco]
        role_ids = [[a for a, _ in rows]] + [[(r[j] if r else 0) for _, r in rows] for j in range(len(roles) - 1)]
        img_of = {a[0]: a[1] for a in anns}
        actions.append({"action_name": name, "role_name": roles, "ann_id": [a for a, _ in rows],
                        "image_id": [img_of[a] for a, _ in rows], "label": [int(r is not None) for _, r in rows],
                        "role_object_id": [x for col in role_ids for x in col], "include": [[]] * len(roles)})
    (root / "data" / "vcoco" / "vcoco_test.json").write_text(json.dumps(actions))
    (root / "data" / "splits" / "vcoco_test.ids").write_text("".join(f"{i}\n" for i in images))
    coco = {"images": [{"id": i, "file_name": f"COCO_val2014_{i:012d}.jpg", "width": 640, "height": 480} for i in images],
            "annotations": [{"id": a, "image_id": i, "category_id": c, "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}
                            for a, i, c, x, y, w, h in anns],
            "categories": [{"id": 1, "name": "person"}, {"id": 47, "name": "cup"}]}
    (root / "data" / "instances_vcoco_all_2014.json").write_text(json.dumps(coco))
    return load_vcoco_ground_truth(root)


def det(image_id, person, **entries) -> dict:
    """One official detection dict; unspecified scores NaN (skipped), role boxes NaN."""
    d = {"image_id": image_id, "person_box": person}
    vc = labels.vcoco()
    for name, roles in vc.action_roles.items():
        for r in roles:
            d[f"{name}_{r}"] = np.nan if r == "agent" else [np.nan] * 5
    d.update(entries)
    return d


@pytest.fixture
def gt(tmp_path):
    return write_vcoco(tmp_path)


def result(gt, dets, ties="input_order"):
    return evaluate_vcoco(detections_from_official(dets, gt), gt, ties=ties)


def ap_of(res, action, role=None, scenario="scenario1"):
    rows = res.table[res.table.action == action]
    if role is None:
        return rows.iloc[0]["agent_ap"]
    return rows[rows.role == role].iloc[0][f"role_ap_{scenario}"]


def perfect(gt):
    return [det(1, box(101), hold_agent=0.9, hold_obj=[*box(201), 0.9], stand_agent=0.9, point_agent=0.8,
                point_instr=[*box(201), 0.8]),
            det(1, box(102), eat_agent=0.8, eat_obj=[0, 0, 0, 0, 0.8], eat_instr=[np.nan] * 4 + [0.8]),
            det(2, box(104), stand_agent=0.7)]


def test_ground_truth_is_prepared_like_vsrl_eval(gt):
    assert gt.person_box.tolist()[0] == box(101)  # x2 = x + w - 1
    assert gt.person_actions[2].max() == -1  # 103: not in V-COCO
    hold = gt.actions.index("hold")
    np.testing.assert_array_equal(gt.role_box[0, hold, 0], box(201))
    assert np.isnan(gt.role_box[1, gt.actions.index("eat")]).all()
    assert gt.coco_id("COCO_val2014_000000000002") == 2


def test_perfect_detector_scores_one(gt):
    res = result(gt, perfect(gt))
    assert ap_of(res, "hold") == ap_of(res, "stand") == ap_of(res, "eat") == 1.0
    assert ap_of(res, "hold", "obj") == ap_of(res, "eat", "obj", "scenario2") == 1.0
    assert ap_of(res, "eat", "obj") == 1.0 and ap_of(res, "eat", "instr") == 1.0  # zeros and NaN both "empty"
    assert np.isnan(ap_of(res, "ride", "instr"))  # no positive: undefined (vsrl_eval asserts)
    m = res.means()
    assert m["agent_map"] == pytest.approx(4 / 26)  # nansum / 26 as vsrl_eval prints
    assert m["scenario1/role_map_25"] == 1.0


def test_scenario_1_and_2_differ_on_role_less_ground_truth(gt):
    dets = [det(1, box(102), eat_agent=0.8, eat_obj=[*box(201), 0.8])]  # a role box where none is annotated
    res = result(gt, dets)
    assert ap_of(res, "eat", "obj", "scenario1") == 0.0
    assert ap_of(res, "eat", "obj", "scenario2") == 1.0


def test_wrong_role_box_is_a_false_positive_and_does_not_cover_the_person(gt):
    dets = [det(1, box(101), hold_obj=[300, 300, 310, 310, 0.9]), det(1, box(101), hold_obj=[*box(201), 0.5])]
    assert ap_of(result(gt, dets), "hold", "obj") == pytest.approx(0.5)


def test_detection_on_an_ignored_person_is_skipped(gt):
    base = perfect(gt)
    skipped = base + [det(1, box(103), hold_agent=0.99, hold_obj=[*box(201), 0.99])]
    assert ap_of(result(gt, skipped), "hold") == 1.0 and ap_of(result(gt, skipped), "hold", "obj") == 1.0
    counted = base + [det(1, box(102), hold_agent=0.99)]  # a V-COCO person not holding: FP
    assert ap_of(result(gt, counted), "hold") == pytest.approx(0.5)


def test_24_role_mean_omits_point_instr(gt):
    dets = [d for d in perfect(gt)]
    dets[0]["point_instr"] = [300, 300, 310, 310, 0.8]  # wrong instrument: point-instr AP 0
    m = result(gt, dets).means()
    assert m["scenario1/role_map_25"] == pytest.approx(3 / 4)  # hold-obj, eat-obj, eat-instr 1, point-instr 0
    assert m["scenario1/role_map_24"] == 1.0


def test_official_dicts_round_trip(gt):
    dets = detections_from_official(perfect(gt) + [det(3, box(101), hold_agent=0.5)], gt)  # image 3 not in split
    assert len(dets.image) == 3
    again = detections_from_official(detections_to_official(dets, gt), gt)
    for f in ("image", "entry_slot", "entry_score"):
        np.testing.assert_array_equal(getattr(dets, f), getattr(again, f))


def test_missing_key_is_a_clear_error(gt):
    from model.common.errors import UserError

    bad = det(1, box(101))
    del bad["hold_obj"]
    with pytest.raises(UserError, match="hold_obj"):
        detections_from_official([bad], gt)


def test_predictions_table_converter(gt):
    vc = labels.vcoco()
    rows = [("COCO_val2014_000000000001", 0, box(101), box(201), 47, vc.action_id("hold"), "obj", 0.9),
            ("COCO_val2014_000000000001", 0, box(101), box(201), 47, vc.action_id("stand"), None, 0.9),
            ("COCO_val2014_000000000001", 1, box(102), [np.nan] * 4, None, vc.action_id("eat"), "obj", 0.8),
            ("COCO_val2014_000000000001", 1, box(102), [np.nan] * 4, None, vc.action_id("eat"), "instr", 0.7),
            ("COCO_val2014_000000000002", 0, box(104), box(104), 1, vc.action_id("stand"), None, 0.7)]
    df = pd.DataFrame([{"image_id": i, "query": q, **dict(zip(("hx1", "hy1", "hx2", "hy2"), h)),
                        **dict(zip(("ox1", "oy1", "ox2", "oy2"), o)), "category_id": c, "verb_id": v, "role": r,
                        "score": s} for i, q, h, o, c, v, r, s in rows])
    res = evaluate_vcoco(detections_from_predictions(df, gt), gt)
    assert ap_of(res, "hold") == 1.0  # the agent score comes from the role score
    assert ap_of(res, "eat") == 1.0 and ap_of(res, "eat", "obj") == 1.0  # NaN box = no role: S1 correct
    assert ap_of(res, "stand") == 1.0


def _vsrl_like(gt, dets: list[dict], scenario: str, ties: str = "input_order") -> dict[tuple[str, str], float]:
    """Role AP written like vsrl_eval._do_role_eval: per image, per action-role, per detection,
    then one global ranking by score (float32 recall). Ties: ``input_order`` = stable sorts (per
    image in list order, then over the images' concatenation), ``image_box`` = boxes."""
    out = {}
    for a, name in enumerate(gt.actions):
        for r, role in enumerate(gt.roles[a]):
            tp, sc = [], []
            npos = int((gt.person_actions[:, a] == 1).sum())
            for code, img in enumerate(gt.image_ids):
                sel = gt.person_image == code
                boxes, acts, rbox = gt.person_box[sel], gt.person_actions[sel], gt.role_box[sel]
                covered = np.zeros(len(boxes), bool)
                mine = [d for d in dets if d["image_id"] == img and not np.isnan(d[f"{name}_{role}"][4])]
                if ties == "input_order":
                    mine.sort(key=lambda d: -np.float32(d[f"{name}_{role}"][4]))
                else:
                    mine.sort(key=lambda d: (-np.float32(d[f"{name}_{role}"][4]), d["person_box"], d[f"{name}_{role}"][:4]))
                for d in mine:
                    pb, rb = np.float32(d["person_box"]), np.float32(d[f"{name}_{role}"][:4])
                    ov = _iou1(boxes, pb)
                    j = int(ov.argmax())
                    if acts[j, 0] == -1:
                        continue
                    if np.isnan(rbox[j, a, r, 0]):
                        ok_role = scenario == "scenario2" or np.all(rb == 0) or np.all(np.isnan(rb))
                    else:
                        ok_role = _iou1(rbox[j, a, r][None], rb)[0] >= 0.5
                    hit = acts[j, a] == 1 and ov[j] >= 0.5 and ok_role and not covered[j]
                    covered[j] |= hit
                    tp.append(hit)
                    sc.append(np.float32(d[f"{name}_{role}"][4]))
            rank = np.argsort(-np.asarray(sc, np.float64), kind="stable")  # image codes follow sorted ids
            ctp = np.cumsum(np.asarray(tp, bool)[rank], dtype=np.float32)
            rec = (ctp / np.float32(npos)).astype(np.float64)  # vsrl_eval: float32 cumsum / npos
            out[(name, role)] = all_point_ap(rec, ctp / np.arange(1, len(tp) + 1)) if npos and tp else (np.nan if not npos else 0.0)
    return out


def _iou1(boxes, b):
    iw = np.maximum(np.minimum(boxes[:, 2], b[2]) - np.maximum(boxes[:, 0], b[0]) + 1, 0)
    ih = np.maximum(np.minimum(boxes[:, 3], b[3]) - np.maximum(boxes[:, 1], b[1]) + 1, 0)
    inter = iw * ih
    return inter / ((b[2] - b[0] + 1) * (b[3] - b[1] + 1) + (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1) - inter)


@pytest.mark.parametrize("ties", ["input_order", "image_box"])
def test_agrees_with_a_vsrl_eval_like_loop_on_random_detections(gt, ties):
    rng = np.random.default_rng(0)
    people = [box(a) for a in (101, 102, 103, 104)]
    imgs = [1, 1, 1, 2]
    dets = []
    for _ in range(60):
        k = int(rng.integers(4))
        pb = (np.array(people[k]) + rng.normal(0, 8, 4)).round(1).tolist()
        d = det(imgs[k], pb)
        for name in ("hold", "eat", "point"):
            for role in labels.vcoco().action_roles[name][1:]:
                choice = rng.integers(3)
                rb = box(201) if choice == 0 else ([0, 0, 0, 0] if choice == 1 else [300, 300, 320, 330])
                d[f"{name}_{role}"] = [*(np.array(rb, float) + (rng.normal(0, 3, 4) if choice != 1 else 0)), float(rng.choice([0.2, 0.5, 0.8]))]
        dets.append(d)
    dets.sort(key=lambda d: d["image_id"])  # input order = vsrl_eval's image-by-image collection order
    if ties == "image_box":
        shuffled = result(gt, [dets[k] for k in rng.permutation(len(dets))], ties)
        pd.testing.assert_frame_equal(result(gt, dets, ties).table, shuffled.table)  # content order, not input order
    if ties == "input_order":  # the same through data import-preds' converter and the table route
        from pipeline.interop import vcoco_pickle
        from pipeline.interop.image_keys import KeyMap

        table = vcoco_pickle.from_detections(dets, KeyMap(["COCO_val2014_000000000001", "COCO_val2014_000000000002"]), "t")
        imported = evaluate_vcoco(detections_from_predictions(table, gt), gt)
        pd.testing.assert_frame_equal(imported.table, result(gt, dets).table, check_exact=False, rtol=0, atol=1e-12)
    for scenario in ("scenario1", "scenario2"):
        res = result(gt, dets, ties)
        want = _vsrl_like(gt, dets, scenario, ties)
        for (name, role), ap in want.items():
            got = ap_of(res, name, role, scenario)
            assert (np.isnan(got) and np.isnan(ap)) or got == pytest.approx(ap, abs=1e-9), (name, role, scenario)


def test_evaluate_on_vcoco_tables_and_official_files(tmp_path):
    from pipeline.evaluate_core import EvaluateConfig, evaluate

    write_vcoco(tmp_path)
    stem = "COCO_val2014_{:012d}".format
    vc = labels.vcoco()
    images = pd.DataFrame({"image_id": [stem(1), stem(2)], "split": "test", "file": "", "width": 640, "height": 480,
                           "annotated": True})
    inst = pd.DataFrame([(stem(i), k, c, *box(a)) for k, (a, i, c, *_) in enumerate(ANNS)],
                        columns=["image_id", "index", "category_id", "x1", "y1", "x2", "y2"])
    pairs = pd.DataFrame([(stem(1), 0, 3, vc.action_id("hold"), None, "obj"), (stem(1), 1, None, vc.action_id("eat"), None, None)],
                         columns=["image_id", "subject", "object", "verb_id", "hoi_id", "role"])
    pred = pd.DataFrame([{"image_id": stem(1), "query": 0, **dict(zip(("hx1", "hy1", "hx2", "hy2"), box(101))),
                          **dict(zip(("ox1", "oy1", "ox2", "oy2"), box(201))), "category_id": 47,
                          "verb_id": vc.action_id("hold"), "hoi_id": None, "role": "obj", "score": 0.9,
                          "interactiveness": 0.8, "part_scores": np.full(6, 0.5, np.float32)}])
    metrics, curves = evaluate(pred, images, inst, pairs, None, "v-coco", EvaluateConfig(), dataset_root=tmp_path)
    assert metrics["vcoco/scenario1/role_map_25"] == pytest.approx(1 / 4)  # hold-obj 1; eat-obj, eat-instr, point 0
    assert metrics["interactiveness/ap"] == 1.0 and metrics["interactiveness/n_gt"] == 1
    assert "vcoco_per_role" in curves
