"""Simulated pose-estimator output in AlphaPose's result format, with realistic faults.

AlphaPose (``--format default``) writes one JSON list for a run: per detected person
``{"image_id": file name, "category_id": 1, "keypoints": [x, y, s] * 17 (COCO-17 order, flat),
"score": float, "box": [x, y, w, h]}``. Its ``score`` is the pose NMS proposal score
``mean(kp scores) + detector score + 1.25 * max(kp scores)``, so it is NOT in [0, 1]; keypoint
scores are. Faults simulated here: keypoint jitter, low-score keypoints (with more noise),
occluded keypoints (low score, more noise), keypoints missing as (0, 0, 0), missed persons
(more often tiny ones) and spurious persons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.synth.config import PoseFaults
from pipeline.synth.scene import Scene


@dataclass
class PoseCounts:
    """What the simulation did, for the summary and the tests."""

    persons: int = 0  # ground-truth persons drawn
    detected: int = 0
    missed: int = 0
    spurious: int = 0
    keypoints: int = 0  # keypoints of detected real persons
    low_score: int = 0  # visible keypoints given a low score
    missing: int = 0  # keypoints written as (0, 0, 0)

    def add(self, other: PoseCounts) -> None:
        for name in ("persons", "detected", "missed", "spurious", "keypoints", "low_score", "missing"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def detect(scene: Scene, file_name: str, rng: np.random.Generator,
           faults: PoseFaults) -> tuple[list[dict], PoseCounts]:
    """AlphaPose result entries for one image (best score first) and what went wrong.

    Needs each person's ``visible`` keypoints (set by the renderer). Coordinates are pixels of
    the image, keypoint scores in [0, 1].
    """
    counts = PoseCounts(persons=len(scene.persons))
    found: list[tuple[np.ndarray, np.ndarray, float]] = []  # (keypoints 17x3, box xyxy, det score)
    for person in scene.persons:
        tiny = person.body.height < faults.tiny_below * scene.height
        if rng.random() < (faults.tiny_miss_rate if tiny else faults.miss_rate):
            counts.missed += 1
            continue
        visible = person.visible if person.visible is not None else np.ones(17, dtype=bool)
        kps, low, missing = _noisy_keypoints(person.body.keypoints, visible, person.body.height, rng, faults)
        counts.keypoints += 17
        counts.low_score += low
        counts.missing += missing
        box = _noisy_box(person.box, rng, faults.box_jitter)
        found.append((kps, box, float(rng.uniform(0.3, 0.8) if tiny else rng.uniform(0.6, 1.0))))
        counts.detected += 1
    for _ in range(int(rng.poisson(faults.spurious_rate))):
        found.append(_ghost(scene, rng))
        counts.spurious += 1
    entries = [_entry(file_name, kps, box, det, scene.width, scene.height) for kps, box, det in found]
    entries.sort(key=lambda e: -e["score"])
    return entries, counts


def _noisy_keypoints(gt: np.ndarray, visible: np.ndarray, height: float, rng: np.random.Generator,
                     faults: PoseFaults) -> tuple[np.ndarray, int, int]:
    """(17, 3) keypoints with noise and scores; returns also the low-score and missing counts."""
    sigma = np.full(17, faults.jitter * height)
    score = rng.uniform(0.55, 0.95, 17)
    low = visible & (rng.random(17) < faults.low_score_rate)
    hard = ~visible | low  # occluded or mis-scored: the estimator guesses
    score[hard] = rng.uniform(0.02, 0.3, int(hard.sum()))
    sigma[hard] *= 3.0
    kps = np.empty((17, 3))
    kps[:, :2] = gt + rng.normal(0, 1, (17, 2)) * sigma[:, None]
    kps[:, 2] = score
    missing = rng.random(17) < faults.missing_keypoint_rate
    kps[missing] = 0.0
    return kps, int(low.sum()), int(missing.sum())


def _noisy_box(box: np.ndarray, rng: np.random.Generator, jitter: float) -> np.ndarray:
    size = np.tile(box[2:] - box[:2], 2)
    return box + rng.normal(0, jitter, 4) * size


def _ghost(scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """A spurious person: a person-sized box anywhere, scattered low-score keypoints."""
    h = rng.uniform(0.15, 0.5) * scene.height
    w = rng.uniform(0.3, 0.6) * h
    x, y = rng.uniform(0, scene.width - w), rng.uniform(0, scene.height - h)
    kps = np.empty((17, 3))
    kps[:, 0] = rng.uniform(x, x + w, 17)
    kps[:, 1] = np.sort(rng.uniform(y, y + h, 17))
    kps[:, 2] = rng.uniform(0.03, 0.35, 17)
    return kps, np.array([x, y, x + w, y + h]), float(rng.uniform(0.1, 0.5))


def _entry(file_name: str, kps: np.ndarray, box: np.ndarray, det: float, w: int, h: int) -> dict:
    kps = kps.copy()
    present = kps[:, 2] > 0
    kps[present, 0] = np.clip(kps[present, 0], 0, w - 1)
    kps[present, 1] = np.clip(kps[present, 1], 0, h - 1)
    x1, y1 = np.clip(box[:2], 0, [w - 1, h - 1])
    x2, y2 = np.clip(box[2:], [x1 + 1, y1 + 1], [w, h])
    scores = kps[present, 2] if present.any() else np.zeros(1)
    proposal = float(scores.mean() + det + 1.25 * scores.max())
    flat = [round(float(v), 2) if i % 3 < 2 else round(float(v), 4) for i, v in enumerate(kps.ravel())]
    return {"image_id": file_name, "category_id": 1, "keypoints": flat, "score": round(proposal, 4),
            "box": [round(float(x1), 2), round(float(y1), 2), round(float(x2 - x1), 2), round(float(y2 - y1), 2)]}
