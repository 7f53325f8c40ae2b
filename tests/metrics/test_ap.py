"""AP arithmetic: hand-computed curves and the grouped (vectorised) forms against loops."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.metrics.ap import ELEVEN_POINT_THRESHOLDS, all_point_ap, eleven_point_ap, interpolated_precision, ranked_pr


def _single(tp: list[int], npos: int):
    return ranked_pr(np.zeros(len(tp), np.int64), np.array(tp, bool), np.array([npos], float))


def test_eleven_point_vs_all_point_on_a_hand_computed_curve():
    # TP, FP, TP, FP, FP with 4 positives: precision 1, 1/2, 2/3, 1/2, 2/5; recall .25, .25, .5, .5, .5
    pr = _single([1, 0, 1, 0, 0], 4)
    np.testing.assert_allclose(pr.precision, [1, 0.5, 2 / 3, 0.5, 0.4])
    np.testing.assert_allclose(pr.recall, [0.25, 0.25, 0.5, 0.5, 0.5])
    # 11-point: t = 0, .1, .2 -> 1; t = .3, .4, .5 -> 2/3; t >= .6 -> 0
    assert eleven_point_ap(pr)[0] == pytest.approx((3 * 1 + 3 * 2 / 3) / 11)
    # all-point: envelope at the two recall steps, 1 and 2/3, each worth 1/4 of recall
    assert all_point_ap(pr.recall, pr.precision) == pytest.approx((1 + 2 / 3) / 4)


def test_eleven_point_thresholds_are_computed_like_the_references():
    # k * 0.1 in floating point: recall exactly 3/10 does not reach the "0.3" threshold
    assert ELEVEN_POINT_THRESHOLDS[3] == 0.1 * 3 > 0.3
    pr = _single([1, 1, 1], 10)
    assert eleven_point_ap(pr)[0] == pytest.approx(3 / 11)


def test_perfect_and_empty_rankings():
    assert eleven_point_ap(_single([1, 1], 2))[0] == 1.0
    assert all_point_ap(*(_single([1, 1], 2).recall, _single([1, 1], 2).precision)) == 1.0
    assert eleven_point_ap(_single([], 3))[0] == 0.0  # no detections: AP 0
    assert np.isnan(eleven_point_ap(_single([0], 0))[0])  # no ground truth: undefined


def _loop_interpolated(tp, npos, thresholds):
    ctp = np.cumsum(tp)
    rec, prec = ctp / npos, ctp / np.arange(1, len(tp) + 1)
    return np.array([prec[rec >= t].max() if (rec >= t).any() else 0.0 for t in thresholds])


def test_grouped_interpolation_equals_a_loop_per_group():
    rng = np.random.default_rng(3)
    sizes = rng.integers(0, 30, 40)
    tps = [rng.random(s) < 0.4 for s in sizes]
    npos = np.array([max(int(t.sum()) + int(rng.integers(0, 4)), 1) for t in tps], float)
    group = np.concatenate([np.full(s, g) for g, s in enumerate(sizes)]).astype(np.int64)
    pr = ranked_pr(group, np.concatenate(tps), npos)
    grid = np.linspace(0, 1, 21)
    got = interpolated_precision(pr, grid)
    for g, tp in enumerate(tps):
        want = _loop_interpolated(tp, npos[g], grid) if len(tp) else np.zeros(len(grid))
        np.testing.assert_array_equal(got[g], want)  # exact, no offsets added
