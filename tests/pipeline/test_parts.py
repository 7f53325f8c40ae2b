"""The parts stage: HAKE's part-box rule (reference notes §3.7) on hand-computed persons, every
fallback path, horizontal-flip symmetry, agreement with a plain per-person reading of the rule,
and the stage's tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import parts as P
from pipeline import tables
from pipeline.tables import FLIP_PARTS, PART_TO_GROUP

W, H = 200.0, 300.0  # image size of the hand-computed person
BODY = np.array([50, 30, 150, 270], np.float32)

# A person facing the camera (its right side on the image's left), all scores 0.9.
# COCO index: (x, y)
POINTS = {
    0: (100, 45), 1: (104, 40), 2: (96, 40), 3: (110, 42), 4: (90, 42),  # nose, eyes, ears
    5: (120, 80), 6: (80, 80),  # l/r shoulder
    7: (130, 100), 8: (70, 100),  # l/r elbow
    9: (150, 120), 10: (50, 120),  # l/r wrist: 50 px from the shoulder (30-40-50 triangle)
    11: (110, 150), 12: (90, 150),  # l/r hip
    13: (110, 205), 14: (90, 205),  # l/r knee
    15: (110, 260), 16: (90, 260),  # l/r ankle
}

# By hand: head J9 = eye midpoint (100, 40); neck J7 = shoulder midpoint (100, 80);
# thorax J8 = 0.75 J7 + 0.25 J9 = (100, 70); pelvis J6 = hip midpoint (100, 150);
# torso = |J6 - J8| = 80. Half-side = 80 * size / 2: 48 (size 1.2), 40 (1.0), 36 (0.9).
# Then clipped to [0, 200] x [0, 300].
GOOD_TORSO = np.array([
    [42, 212, 138, 300],  # right_foot: r_ankle (90, 260) ± 48, y2 308 -> 300
    [50, 165, 130, 245],  # right_leg: r_knee (90, 205) ± 40
    [70, 165, 150, 245],  # left_leg: l_knee (110, 205) ± 40
    [62, 212, 158, 300],  # left_foot: l_ankle (110, 260) ± 48, y2 308 -> 300
    [52, 102, 148, 198],  # hip: pelvis (100, 150) ± 48
    [52, 0, 148, 88],  # head: eye midpoint (100, 40) ± 48, y1 -8 -> 0
    [14, 84, 86, 156],  # right_hand: r_wrist (50, 120) ± 36
    [40, 40, 120, 120],  # right_arm: r_shoulder (80, 80) ± 40
    [80, 40, 160, 120],  # left_arm: l_shoulder (120, 80) ± 40
    [114, 84, 186, 156],  # left_hand: l_wrist (150, 120) ± 36
], np.float32)


def keypoints(scores: dict[int, float] | None = None) -> np.ndarray:
    """The hand-made person as [1, 17, 3], score 0.9 unless overridden."""
    kp = np.zeros((1, 17, 3), np.float32)
    for i, (x, y) in POINTS.items():
        kp[0, i] = (x, y, (scores or {}).get(i, 0.9))
    return kp


def run_rule(kp: np.ndarray, body: np.ndarray = BODY[None], given: np.ndarray | None = None):
    n = kp.shape[0]
    given = np.full((n, 10, 4), np.nan, np.float32) if given is None else given
    return P.person_parts(kp, given, body, np.full(n, W, np.float32), np.full(n, H, np.float32), P.PartsConfig())


def test_mpii_joints_hand_computed() -> None:
    j = P.mpii_joints(keypoints())[0]
    np.testing.assert_allclose(j[9], (100, 40, 0.9), atol=1e-6)  # head = eyes
    np.testing.assert_allclose(j[7], (100, 80, 0.9), atol=1e-6)  # neck = shoulders
    np.testing.assert_allclose(j[8], (100, 70, 0.9), atol=1e-5)  # thorax
    np.testing.assert_allclose(j[6], (100, 150, 0.9), atol=1e-6)  # pelvis = hips
    np.testing.assert_allclose(j[[0, 1, 2, 3, 4, 5]][:, 0], [90, 90, 90, 110, 110, 110])


def test_good_torso_hand_computed() -> None:
    boxes, rule = run_rule(keypoints())
    np.testing.assert_allclose(boxes[0], GOOD_TORSO, atol=1e-4)
    assert (rule == P.TORSO).all()


def test_bad_torso_paths_hand_computed() -> None:
    # Shoulders 0.05, eyes 0.3: neck 0.05, head 0.3, thorax 0.75*0.05 + 0.25*0.3 = 0.1125 < 0.2
    # -> torso unreliable (pelvis is fine, 0.9).
    boxes, rule = run_rule(keypoints({5: 0.05, 6: 0.05, 1: 0.3, 2: 0.3}))
    b, r = boxes[0], rule[0]
    # right_hand: centre r_wrist 0.9 ok; right-arm group mean (0.9 + 0.9 + 0.05) / 3 = 0.617 > 0.2
    # -> half-side = |r_wrist - r_shoulder| = 50 (full length): (50, 120) ± 50 -> x1 0 (clipped)
    assert r[6] == P.GROUP
    np.testing.assert_allclose(b[6], [0, 70, 100, 170], atol=1e-4)
    # right_foot: right-leg group (0.9 each) -> half = |r_ankle - r_hip| = 110:
    # (90, 260) ± 110 -> [-20, 150, 200, 370] -> clipped [0, 150, 200, 300]
    assert r[0] == P.GROUP
    np.testing.assert_allclose(b[0], [0, 150, 200, 300], atol=1e-4)
    # right_leg: r_knee (90, 205) ± 110 -> [-20, 95, 200, 315] -> [0, 95, 200, 300]
    np.testing.assert_allclose(b[1], [0, 95, 200, 300], atol=1e-4)
    # right_arm / left_arm: centre = shoulder, score 0.05 < 0.2 -> whole body
    assert r[7] == r[8] == P.LOW_CENTRE
    np.testing.assert_allclose(b[7], BODY)
    # head: centre J9 0.3 ok; head group mean (0.05 + 0.1125 + 0.3) / 3 = 0.154 <= 0.2 -> body
    assert r[5] == P.BAD_GROUP
    np.testing.assert_allclose(b[5], BODY)
    # hip: centre pelvis 0.9 ok but torso unreliable -> always whole body
    assert r[4] == P.HIP_BAD_TORSO
    np.testing.assert_allclose(b[4], BODY)


def test_low_score_centre_with_good_torso() -> None:
    boxes, rule = run_rule(keypoints({10: 0.1}))  # right wrist unseen
    assert rule[0, 6] == P.LOW_CENTRE
    np.testing.assert_allclose(boxes[0, 6], BODY)
    np.testing.assert_allclose(boxes[0, 9], GOOD_TORSO[9], atol=1e-4)  # others unaffected


def test_thresholds_are_inclusive_and_strict_as_hake() -> None:
    # centre score exactly 0.2 is usable (>=); group mean exactly 0.2 is not (> 0.2)
    boxes, rule = run_rule(keypoints({10: 0.2}))
    assert rule[0, 6] == P.TORSO
    kp = keypoints({5: 0.05, 6: 0.05, 1: 0.3, 2: 0.3, 0: 0.9})
    kp[0, [16, 14, 12], 2] = 0.2  # right-leg group mean exactly 0.2
    _, rule = run_rule(kp)
    assert rule[0, 0] == P.BAD_GROUP


def test_null_keypoints_and_given_boxes() -> None:
    kp = np.concatenate([keypoints(), np.full((2, 17, 3), np.nan, np.float32)])
    given = np.full((3, 10, 4), np.nan, np.float32)
    given[2] = np.arange(40, dtype=np.float32).reshape(10, 4) * 10 - 50  # partly outside: kept as is
    body = np.stack([BODY, BODY + 1, BODY + 2])
    boxes, rule = run_rule(kp, body, given)
    assert (rule[1] == P.NO_KEYPOINTS).all()
    np.testing.assert_allclose(boxes[1], np.broadcast_to(body[1], (10, 4)))
    assert (rule[2] == P.GIVEN).all()
    np.testing.assert_array_equal(boxes[2], given[2])


def flip_keypoints(kp: np.ndarray, width: float) -> np.ndarray:
    swap = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    out = kp[:, swap].copy()
    out[..., 0] = width - out[..., 0]
    return out


def flip_boxes(boxes: np.ndarray, width: float) -> np.ndarray:
    return np.stack([width - boxes[..., 2], boxes[..., 1], width - boxes[..., 0], boxes[..., 3]], -1)


def random_persons(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    kp = np.empty((n, 17, 3), np.float32)
    kp[..., 0] = rng.uniform(-20, W + 20, (n, 17))
    kp[..., 1] = rng.uniform(-20, H + 20, (n, 17))
    kp[..., 2] = rng.choice([0.0, 0.1, 0.19, 0.25, 0.5, 0.9], (n, 17))  # hit every rule
    x = np.sort(rng.uniform(0, W, (n, 2)), 1)
    y = np.sort(rng.uniform(0, H, (n, 2)), 1)
    return kp, np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], 1).astype(np.float32)


def test_horizontal_flip_swaps_left_and_right() -> None:
    kp, body = random_persons(2000)
    boxes, rule = run_rule(kp, body)
    fboxes, frule = run_rule(flip_keypoints(kp, W), flip_boxes(body, W))
    flip = list(FLIP_PARTS)
    np.testing.assert_array_equal(frule[:, flip], rule)
    np.testing.assert_allclose(fboxes[:, flip], flip_boxes(boxes, W), atol=1e-3)
    assert set(np.unique(rule)) >= {P.TORSO, P.GROUP, P.LOW_CENTRE, P.BAD_GROUP, P.HIP_BAD_TORSO}


def reference_rule(kp17: np.ndarray, body: np.ndarray) -> np.ndarray:
    """The rule of reference notes §3.7 for one person, step by step (unclipped)."""
    j = P.mpii_joints(kp17[None])[0]
    size = [1.2, 1, 1, 1.2, 1.2, 1.2, 0.9, 1, 1, 0.9]
    group = {0: (0, 2), 1: (0, 2), 2: (3, 5), 3: (3, 5), 5: (7, 9), 6: (10, 12), 7: (10, 12), 8: (13, 15), 9: (13, 15)}
    dist = lambda a, b: float(np.hypot(*(j[a, :2] - j[b, :2])))  # noqa: E731
    out = np.zeros((10, 4), np.float32)
    for i, c in enumerate(P.CENTRE):
        half = None
        if j[c, 2] >= 0.2:
            if j[8, 2] >= 0.2 and j[6, 2] >= 0.2:
                half = dist(6, 8) * size[i] / 2
            elif i in group and j[group[i][0]: group[i][1] + 1, 2].mean() > 0.2:
                half = dist(*group[i])
        out[i] = body if half is None else (j[c, 0] - half, j[c, 1] - half, j[c, 0] + half, j[c, 1] + half)
    return out


def test_vectorised_rule_matches_per_person_reading() -> None:
    kp, body = random_persons(300, seed=1)
    boxes, _ = P.part_boxes_from_keypoints(kp, body, P.PartsConfig())
    expected = np.stack([reference_rule(kp[i], body[i]) for i in range(len(kp))])
    np.testing.assert_allclose(boxes, expected, rtol=1e-5, atol=1e-3)


def test_part_size_param_validated() -> None:
    with pytest.raises(ValueError):
        P.PartsConfig(part_size=(1.0,) * 9)


def images_frame(ids: list[str], width: float = W, height: float = H) -> pd.DataFrame:
    return pd.DataFrame({"image_id": ids, "split": "train", "file": [f"images/{i}.jpg" for i in ids],
                         "width": np.int32(width), "height": np.int32(height), "annotated": True})


def persons_frame(kp: np.ndarray, ids: list[str], given: np.ndarray | None = None) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame({
        "image_id": ids, "person": pd.Series(ids).groupby(ids).cumcount().to_numpy(np.int32),
        "x1": BODY[0], "y1": BODY[1], "x2": BODY[2], "y2": BODY[3], "score": np.float32(0.9),
        "keypoints": [None if np.isnan(k).all() else k.reshape(-1) for k in kp],
        "part_boxes": [None] * n if given is None else [None if np.isnan(g).all() else g.reshape(-1) for g in given],
        "backend": "test",
    })


def test_parts_table_rows_and_flags() -> None:
    kp = np.concatenate([keypoints({10: 0.1}), np.full((1, 17, 3), np.nan, np.float32)])
    persons = persons_frame(kp, ["a", "a"])
    table, counts = P.parts(persons, images_frame(["a"]), P.PartsConfig())
    tables.to_arrow(table, "parts")  # schema holds
    assert len(table) == 20
    assert table["part"].tolist() == list(range(10)) * 2
    assert table["group"].tolist() == list(PART_TO_GROUP) * 2
    assert table["person"].tolist() == [0] * 10 + [1] * 10
    assert table["fallback"].tolist() == [False] * 6 + [True] + [False] * 3 + [True] * 10
    assert counts["rule/fallback_no_keypoints"] == 10 and counts["rule/fallback_low_score_centre"] == 1


def test_run_writes_tables(tmp_path) -> None:
    (tmp_path / "params.yaml").write_text("parts:\n  score_threshold: 0.2\n")
    given = np.full((2, 10, 4), np.nan, np.float32)
    given[1] = GOOD_TORSO
    tables.write(persons_frame(np.concatenate([keypoints(), keypoints()]), ["a", "b"], given), "persons", tmp_path / "persons.parquet")
    tables.write(images_frame(["a", "b"]), "images", tmp_path / "images.parquet")
    counts = P.run(tmp_path / "params.yaml", tmp_path / "persons.parquet", tmp_path / "images.parquet",
                   tmp_path / "parts.parquet", tmp_path / "parts.json")
    out = tables.read(tmp_path / "parts.parquet", "parts")
    assert len(out) == 20 and counts["rule/given"] == 10 and counts["rule/torso"] == 10
    assert not out["fallback"].any()


def test_unknown_image_is_a_user_error() -> None:
    from model.common.errors import UserError

    with pytest.raises(UserError, match="rerun the pose stage"):
        P.parts(persons_frame(keypoints(), ["zzz"]), images_frame(["a"]), P.PartsConfig())
