"""pipeline/validation.py: the training-time validation AP, computed with pipeline/metrics'
matching and AP (hand-computed example)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.validation import pair_ap, pair_match

G = np.array([[0, 0, 10, 10, 20, 20, 30, 30],  # a pair with an object
              [50, 50, 60, 60, 0, 0, 0, 0]], dtype=np.float32)  # no object: human box alone
P = np.array([G[0], G[0], [50, 50, 60, 60, 0, 0, 1, 1], [80, 80, 90, 90, 80, 80, 90, 90]], dtype=np.float32)


def test_a_pair_without_object_is_matched_on_the_human_box() -> None:
    m = pair_match(np.zeros(4, np.int64), P, np.zeros(2, np.int64), G)
    assert m.gt.tolist() == [0, 0, 1, 0] and m.overlap.tolist() == [1.0, 1.0, 1.0, 0.0]


def test_eleven_point_ap_of_the_ranked_pairs() -> None:
    # ranked TP 1 0 1 0 of 2: precision 1, 1/2, 2/3, 1/2 at recall 1/2, 1/2, 1, 1
    ap = pair_ap(np.array([0.9, 0.8, 0.7, 0.6]), np.zeros(4, np.int64), P, np.zeros(2, np.int64), G)
    assert ap == pytest.approx((6 * 1.0 + 5 * 2 / 3) / 11)


def test_other_images_and_no_ground_truth() -> None:
    assert pair_ap(np.array([0.9]), np.array([1]), P[:1], np.zeros(2, np.int64), G) == 0.0
    assert np.isnan(pair_ap(np.array([0.9]), np.array([0]), P[:1], np.zeros(0, np.int64), G[:0]))
