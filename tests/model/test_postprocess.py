"""Post-processing: boxes, scores and the correspondence mask, stage-1 matching, NIS, pair NMS,
top-K, and the predictions table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from model.label_space import for_format
from model.postprocess import (Candidates, OutputSpace, PostprocessConfig, apply_nis, boxes_to_pixels,
                               build_candidates, concat_candidates, finalize, match_stage1, pair_nms, postprocess,
                               stage1_pairs, top_k_per_image)
from model.common import labels
from pipeline import tables

HICO = OutputSpace.of(for_format("hico-det"))
VCOCO = OutputSpace.of(for_format("v-coco"))


def cxcywh(x1, y1, x2, y2, w=100.0, h=100.0):
    return [(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h]


def outputs(space: OutputSpace, subs, objs, obj_class, verb_logit=None, q_pad=0):
    """Stage-2 outputs for one image: queries with given boxes, a confident object class."""
    q = len(subs)
    logits = torch.full((1, q, len(space.object_ids) + 1), -10.0)
    logits[0, torch.arange(q), torch.as_tensor(obj_class)] = 10.0
    verbs = torch.full((1, q, len(space.verb_ids)), -10.0) if verb_logit is None else torch.as_tensor(verb_logit)[None]
    return {"pred_obj_logits": logits, "pred_sub_boxes": torch.tensor([subs]), "pred_obj_boxes": torch.tensor([objs]),
            "pred_verb_logits": verbs}


def test_boxes_become_absolute_pixels_of_the_original_image():
    b = torch.tensor([[[0.5, 0.5, 0.2, 0.4]]])
    out = boxes_to_pixels(b, torch.tensor([[200, 400]]))  # h = 200, w = 400
    torch.testing.assert_close(out, torch.tensor([[[160.0, 60.0, 240.0, 140.0]]]))


def test_score_is_verb_times_object_probability_on_valid_pairs_only():
    col = {c: i for i, c in enumerate(HICO.object_ids)}
    bicycle = col[2]
    verbs = torch.full((1, 117), -30.0)
    index = {n: v - 1 for v, n in labels.hico().verb_names.items()}
    ride, fly = index["ride"], index["fly"]
    verbs[0, ride], verbs[0, fly] = 0.0, 5.0  # "fly bicycle" is not a HICO-DET class
    s2 = outputs(HICO, [cxcywh(0, 0, 10, 10)], [cxcywh(20, 20, 30, 30)], [bicycle], verbs)
    c = build_candidates(s2, None, torch.tensor([[100, 100]]), ["img"], HICO)
    assert fly not in c.verb.tolist()
    row = np.flatnonzero(c.verb == ride)[0]
    obj_prob = torch.softmax(s2["pred_obj_logits"][0, 0], -1)[bicycle].item()
    assert c.score[row] == pytest.approx(0.5 * obj_prob, rel=1e-5)
    assert len(c.score) == int(HICO.valid[:, bicycle].sum())
    assert np.isnan(c.interactiveness).all()


def test_each_stage2_pair_takes_the_stage1_pair_with_the_best_min_iou():
    h2 = torch.tensor([[[0, 0, 10, 10], [50, 50, 60, 60]]], dtype=torch.float)
    o2 = torch.tensor([[[20, 20, 30, 30], [70, 70, 80, 80]]], dtype=torch.float)
    # stage-1 pair 0 matches query 1's human exactly but not its object; pair 2 matches both well
    h1 = torch.tensor([[[50, 50, 60, 60], [0, 0, 10, 10], [51, 51, 60, 60], [0, 0, 10, 10]]], dtype=torch.float)
    o1 = torch.tensor([[[0, 0, 5, 5], [20, 20, 30, 30], [70, 70, 80, 80], [20, 20, 30, 30]]], dtype=torch.float)
    assert match_stage1(h2, o2, h1, o1).tolist() == [[1, 2]]  # exact tie 1 vs 3: the lower index


def test_interactiveness_and_part_scores_come_from_the_matched_stage1_pair():
    col = {c: i for i, c in enumerate(HICO.object_ids)}
    s2 = outputs(HICO, [cxcywh(0, 0, 10, 10)], [cxcywh(20, 20, 30, 30)], [col[2]])
    s1 = {"pred_sub_boxes": torch.tensor([[cxcywh(50, 50, 60, 60), cxcywh(0, 0, 10, 10)]]),
          "pred_obj_boxes": torch.tensor([[cxcywh(20, 20, 30, 30), cxcywh(21, 20, 30, 30)]]),
          "pred_int_logits": torch.tensor([[5.0, 0.0]]), "pred_part_scores": torch.tensor([[[0.1] * 6, [0.7] * 6]])}
    c = build_candidates(s2, s1, torch.tensor([[100, 100]]), ["img"], HICO)
    assert np.allclose(c.interactiveness, 0.5) and np.allclose(c.parts, 0.7)


def _cands(score, inter, image=None, verb=None, human=None):
    n = len(score)
    return Candidates(("a", "b"), np.zeros(n, np.int64) if image is None else np.array(image), np.arange(n),
                      np.zeros(n, np.int64) if verb is None else np.array(verb), np.zeros(n, np.int64),
                      np.array(human if human is not None else [[0, 0, 10, 10]] * n, np.float32),
                      np.array([[20, 20, 30, 30]] * n, np.float32), np.array(score, np.float32),
                      np.array(inter, np.float32), np.full((n, 6), 0.5, np.float32))


def test_nis_threshold_and_product():
    c = _cands([0.8, 0.6, 0.4], [0.9, 0.2, np.nan])
    keep, score = apply_nis(c, PostprocessConfig(nis="threshold", nis_threshold=0.3))
    assert keep.tolist() == [True, False, True]  # NaN (no stage 1) passes
    keep, score = apply_nis(c, PostprocessConfig(nis="product"))
    assert keep.all() and score.tolist() == pytest.approx([0.72, 0.12, 0.4])
    keep, score = apply_nis(c, PostprocessConfig(nis="off", nis_threshold=0.99))
    assert keep.all() and score.tolist() == pytest.approx([0.8, 0.6, 0.4])


def test_pair_nms_suppresses_only_when_both_ious_exceed_the_threshold():
    h = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 7]], float)  # last: human IoU 0.7
    o = np.array([[20, 20, 30, 30], [20, 20, 30, 30], [50, 50, 60, 60], [20, 20, 30, 30]], float)
    score = np.array([0.9, 0.8, 0.7, 0.6])
    keep = pair_nms(np.zeros(4, np.int64), score, h, o, 0.6)
    assert keep.tolist() == [True, False, True, False]  # 2: object IoU 0 -> kept
    assert pair_nms(np.zeros(4, np.int64), score, h, o, 0.7).tolist() == [True, False, True, True]  # 0.7 is not > 0.7
    assert pair_nms(np.array([0, 1, 0, 0]), score, h, o, 0.6).tolist() == [True, True, True, False]  # other class


def test_pair_nms_is_greedy_a_suppressed_pair_does_not_suppress():
    # 0 suppresses 1; 1 would suppress 2, but 1 is gone, and 0 and 2 barely overlap
    h = np.array([[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10]], float)
    o = h + 100
    assert pair_nms(np.zeros(3, np.int64), np.array([0.9, 0.8, 0.7]), h, o, 0.5).tolist() == [True, False, True]


def test_pair_nms_matches_a_loop_on_random_groups():
    rng = np.random.default_rng(1)
    n = 400
    group = rng.integers(0, 30, n)
    xy = rng.uniform(0, 20, (n, 2))
    h = np.concatenate([xy, xy + 10], 1)
    o = h + rng.uniform(0, 4, (n, 1))
    score = rng.choice([0.2, 0.4, 0.6], n)
    got = pair_nms(group, score, h, o, 0.6)
    want = np.zeros(n, bool)
    for g in np.unique(group):
        idx = sorted(np.flatnonzero(group == g), key=lambda i: (-score[i], i))
        kept: list[int] = []
        for i in idx:
            if all(not (_iou(h[i], h[k]) > 0.6 and _iou(o[i], o[k]) > 0.6) for k in kept):
                kept.append(i)
        want[kept] = True
    np.testing.assert_array_equal(got, want)


def _iou(a, b):
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_top_k_per_image_with_stable_ties():
    image = np.array([0, 0, 0, 1, 1])
    score = np.array([0.5, 0.9, 0.5, 0.1, 0.2])
    assert top_k_per_image(image, score, 2, np.arange(5)).tolist() == [True, True, False, True, True]


def test_finalize_applies_nis_then_nms_then_top_k():
    far = [[0, 0, 10, 10], [0, 0, 10, 10], [200, 0, 210, 10], [400, 0, 410, 10]]
    c = _cands([0.9, 0.8, 0.7, 0.6], [0.1, 0.9, 0.9, 0.9], human=far)
    df = finalize(c, HICO, PostprocessConfig(nis="threshold", nis_threshold=0.5, top_k=2))
    # query 0 dropped by NIS, so query 1 survives NMS; top-2 keeps queries 1 and 2
    assert df["query"].tolist() == [1, 2]
    df = finalize(c, HICO, PostprocessConfig(nis="off", top_k=None))
    assert df["query"].tolist() == [0, 2, 3]


def test_predictions_table_round_trips_through_parquet(tmp_path):
    torch.manual_seed(0)
    for space in (HICO, VCOCO):
        b, q = 2, 8
        s2 = {"pred_obj_logits": torch.randn(b, q, len(space.object_ids) + 1), "pred_sub_boxes": torch.rand(b, q, 4) * 0.5 + 0.2,
              "pred_obj_boxes": torch.rand(b, q, 4) * 0.5 + 0.2, "pred_verb_logits": torch.randn(b, q, len(space.verb_ids))}
        s2["pred_obj_logits"][0, 0, -2] = 50.0  # V-COCO: missing object; HICO: some object
        s1 = {**{k: s2[k] for k in ("pred_sub_boxes", "pred_obj_boxes", "pred_obj_logits")},
              "pred_int_logits": torch.randn(b, q), "pred_part_scores": torch.rand(b, q, 6)}
        sizes = torch.tensor([[480, 640], [300, 200]])
        df = postprocess(s2, s1, sizes, ["x", "y"], space, PostprocessConfig(top_k=10))
        assert len(df) == 20 and df.groupby("image_id").size().tolist() == [10, 10]
        back = tables.read(tables.write(df, "predictions", tmp_path / "p.parquet"), "predictions")
        assert len(back) == 20
        pairs = stage1_pairs(s1, sizes, ["x", "y"], space)
        assert len(tables.read(tables.write(pairs, "pair_predictions", tmp_path / "pp.parquet"), "pair_predictions")) == 16
        if space is VCOCO:
            missing = df[df["category_id"].isna()]
            assert missing["ox1"].isna().all() and missing["hoi_id"].isna().all()
            assert set(df["role"].dropna()) <= {"obj", "instr"}
        else:
            assert df["hoi_id"].notna().all() and df["role"].isna().all()


def test_concat_candidates_rebases_images():
    a, b = _cands([0.5], [0.5]), _cands([0.4], [0.5])
    joined = concat_candidates([a, b])
    assert joined.image_ids == ("a", "b", "a", "b") and joined.image.tolist() == [0, 2]


def test_a_bundle_prescribes_one_postprocessing_for_evaluate_and_predict() -> None:
    """model.bundle_file.postprocess_config: the chosen NIS mode and tau over the bundle's section;
    tau only where the mode thresholds; no chosen mode keeps the section's settings."""
    from model.bundle_file import postprocess_config

    section = {"nis": "auto", "nis_threshold": 0.0, "unmatched": "one", "top_k": 50}
    chosen = postprocess_config({"postprocess": section, "nis": {"mode": "both", "threshold": 0.3}})
    assert (chosen.nis, chosen.nis_threshold, chosen.unmatched, chosen.top_k) == ("both", 0.3, "one", 50)
    product = postprocess_config({"postprocess": section, "nis": {"mode": "product", "threshold": 0.3}})
    assert (product.nis, product.nis_threshold) == ("product", 0.0)
    off = postprocess_config({"postprocess": section, "nis": {"mode": "off", "threshold": None}})
    assert off.nis == "off"
    older = postprocess_config({"postprocess": {"nis": "threshold", "nis_threshold": 0.2}, "nis": {}})
    assert (older.nis, older.nis_threshold) == ("threshold", 0.2)
