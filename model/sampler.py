"""Sparsity-adaptive sampling (paper Sec. 4): images are drawn with replacement, crowded ones
α times more likely than sparse ones (weights from the scenes table's ``sample_weight``, which
is α for crowded training images and 1 otherwise; α = 1 is uniform sampling).

The draw of an epoch is a pure function of (seed, epoch): the same on every DDP rank, which
then takes the disjoint slice ``rank::world_size``. Consecutive per-rank batches of size b
therefore cover exactly the positions that one process with batch b x world_size would see,
so DDP and single-process training consume the same global batches. Every item is
``(image index, augmentation seed)``; the seed is drawn with the index, so a sample's
augmentation does not depend on workers, ranks or resumption. ``start`` skips the samples a
rank already consumed in the epoch (resume in the middle of an epoch).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch


class WeightedEpochSampler(torch.utils.data.Sampler):
    """Yields ``(index, seed)`` pairs for one epoch; call :meth:`set_epoch` before each."""

    def __init__(self, weights: np.ndarray, epoch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1) -> None:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or len(w) == 0 or (w < 0).any() or w.sum() <= 0:
            raise ValueError("sampler weights must be a non-empty, non-negative vector with a positive sum")
        if epoch_size % world_size:
            raise ValueError(f"epoch size {epoch_size} is not a multiple of the world size {world_size}")
        self.p = w / w.sum()
        self.epoch_size, self.seed = epoch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch's draw; skip the first ``start`` items of this rank's slice."""
        self.epoch, self.start = epoch, start

    def draw(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """The global draw of ``epoch``: image indices and augmentation seeds, [epoch_size] each."""
        rng = np.random.default_rng([self.seed, epoch])
        idx = rng.choice(len(self.p), size=self.epoch_size, replace=True, p=self.p)
        seeds = rng.integers(0, 2**31 - 1, size=self.epoch_size)
        return idx, seeds

    def __iter__(self) -> Iterator[tuple[int, int]]:
        idx, seeds = self.draw(self.epoch)
        mine = slice(self.rank + self.start * self.world_size, None, self.world_size)
        return iter(zip(idx[mine].tolist(), seeds[mine].tolist()))

    def __len__(self) -> int:
        return self.epoch_size // self.world_size - self.start

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "start": self.start}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.set_epoch(int(state["epoch"]), int(state["start"]))


def scene_weights(image_ids: list[str], scenes: pd.DataFrame, alpha: float | None = None) -> np.ndarray:
    """Sampling weight of each image: the scenes table's ``sample_weight`` (α for crowded
    training images); with ``alpha`` given, recomputed from the ``crowded`` flag instead (a
    missing image weighs 1)."""
    s = scenes.drop_duplicates("image_id").set_index("image_id").reindex(image_ids)
    if alpha is not None or "sample_weight" not in s.columns:
        a = 3.0 if alpha is None else alpha
        return np.where(s["crowded"].fillna(False).to_numpy(bool), a, 1.0)
    return s["sample_weight"].fillna(1.0).to_numpy(np.float64)
