"""Sparsity-adaptive sampler: frequencies follow alpha, determinism, DDP slices, resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.sampler import WeightedEpochSampler, scene_weights


@pytest.mark.parametrize("alpha", [1.0, 3.0, 5.0])
def test_crowded_images_drawn_alpha_times_as_often(alpha):
    crowded = np.arange(200) % 4 == 0  # a quarter of the images crowded
    s = WeightedEpochSampler(np.where(crowded, alpha, 1.0), epoch_size=100_000, seed=3)
    idx = np.array([i for i, _ in s])
    counts = np.bincount(idx, minlength=200)
    ratio = counts[crowded].mean() / counts[~crowded].mean()
    # 100k draws: the per-group means have ~1 % relative noise
    assert abs(ratio - alpha) < 0.05 * alpha
    share = crowded.sum() * alpha / (crowded.sum() * alpha + (~crowded).sum())
    assert abs(crowded[idx].mean() - share) < 0.01


def test_draw_is_a_function_of_seed_and_epoch():
    w = np.ones(50)
    a, b = WeightedEpochSampler(w, 64, seed=1), WeightedEpochSampler(w, 64, seed=1)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)
    assert list(WeightedEpochSampler(w, 64, seed=2)) != list(a)


def test_ranks_take_disjoint_slices_that_rebuild_the_global_batches():
    w, batch, world = np.linspace(1, 3, 40), 8, 2
    single = list(WeightedEpochSampler(w, 64, seed=5))
    ranks = [list(WeightedEpochSampler(w, 64, seed=5, rank=r, world_size=world)) for r in range(world)]
    assert sum(len(r) for r in ranks) == len(single)
    per = batch // world
    for step in range(64 // batch):
        global_batch = sorted(single[step * batch:(step + 1) * batch])
        dist_batch = sorted(x for r in ranks for x in r[step * per:(step + 1) * per])
        assert global_batch == dist_batch


def test_start_resumes_in_the_middle_of_an_epoch():
    w = np.ones(30)
    full = list(WeightedEpochSampler(w, 32, seed=0, rank=1, world_size=2))
    s = WeightedEpochSampler(w, 32, seed=0, rank=1, world_size=2)
    s.set_epoch(0, start=6)
    assert list(s) == full[6:] and len(s) == len(full) - 6
    state = s.state_dict()
    t = WeightedEpochSampler(w, 32, seed=0, rank=1, world_size=2)
    t.load_state_dict(state)
    assert list(t) == full[6:]


def test_items_carry_augmentation_seeds():
    items = list(WeightedEpochSampler(np.ones(5), 10, seed=0))
    assert all(isinstance(i, int) and isinstance(s, int) for i, s in items)
    assert len({s for _, s in items}) == 10


def test_bad_weights_refused():
    with pytest.raises(ValueError):
        WeightedEpochSampler(np.zeros(3), 4, seed=0)
    with pytest.raises(ValueError):
        WeightedEpochSampler(np.ones(3), 5, seed=0, world_size=2)


def test_scene_weights_from_table():
    scenes = pd.DataFrame({"image_id": ["a", "b", "c"], "crowded": [True, False, True],
                           "sample_weight": [3.0, 1.0, 3.0]})
    assert scene_weights(["c", "b", "z"], scenes).tolist() == [3.0, 1.0, 1.0]
    assert scene_weights(["a", "b"], scenes, alpha=2.0).tolist() == [2.0, 1.0]
