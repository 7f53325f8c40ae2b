"""Stage ``parts``: the persons table -> ten HAKE body-part boxes per person (the ``parts`` table).

The rule is HAKE's part-box generator (reference notes §3.7; HAKE-Action-Torch,
``part_box_generation.py``), vectorised over all persons:

1. COCO-17 -> MPII-like joints J (x, y, score): J0 r_ankle, J1 r_knee, J2 r_hip, J3 l_hip,
   J4 l_knee, J5 l_ankle, J6 pelvis = mean(hips), J7 neck = mean(shoulders), J9 head =
   mean(eyes), J8 thorax = 0.75 J7 + 0.25 J9, J10 r_wrist, J11 r_elbow, J12 r_shoulder,
   J13 l_shoulder, J14 l_elbow, J15 l_wrist (averages average the scores too).
2. Part i is a square centred on joint CENTRE[i] (ankles, knees, pelvis, head, wrists and, for
   the arms, the shoulders).
3. Centre score < ``score_threshold``: the whole-body box (fallback).
   Torso reliable (scores of J6 and J8 >= ``score_threshold``): side = torso length ‖J6 − J8‖ ×
   ``part_size[i]``.
   Torso unreliable: when the mean score of the part's limb group (head J7-J9, right arm
   J10-J12, left arm J13-J15, right leg J0-J2, left leg J3-J5) is > ``group_threshold``, the
   half-side is the group's full end-to-end length (‖J7−J9‖, ‖J10−J12‖, ‖J13−J15‖, ‖J0−J2‖,
   ‖J3−J5‖; not halved, as in HAKE); otherwise, and always for the hip, the whole-body box.
4. Persons without keypoints get the whole-body box for all ten parts (a single joint with a
   NaN or infinite value is treated as undetected, score 0, and affects only the parts that use
   it); persons whose source
   supplied part boxes (official files) keep them unchanged (fallback False). Boxes from the
   rule are clipped to the image (HAKE leaves them unclipped; BPM clips on the mask grid).

Boxes are x1, y1, x2, y2 float32 in original-image pixels; parts in ``PART_NAMES`` order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import Field, field_validator

from pipeline import tables
from model.common.errors import UserError, quote_name
from pipeline.params import DEFAULT_PARAMS, Section, section
from pipeline.tables import NUM_KEYPOINTS, NUM_PARTS, PART_NAMES, PART_TO_GROUP

# MPII-like joint j is COCO keypoint _DIRECT[j] (the rest are averages, see _mpii_rows)
_DIRECT = {0: 16, 1: 14, 2: 12, 3: 11, 4: 13, 5: 15, 10: 10, 11: 8, 12: 6, 13: 5, 14: 7, 15: 9}
CENTRE = np.array([0, 1, 4, 5, 6, 9, 10, 12, 13, 15])  # centre joint of each part
# limb groups of the bad-torso rule: three joints (score mean) and the two ends (length)
_GROUPS = np.array([[0, 1, 2], [3, 4, 5], [7, 8, 9], [10, 11, 12], [13, 14, 15]])  # r/l leg, head, r/l arm
_PART_GROUP = np.array([0, 0, 1, 1, 0, 2, 3, 3, 4, 4])  # group of each part (hip: unused)
_HIP = np.array([name == "hip" for name in PART_NAMES])

# how each part box was obtained (the report counts them)
RULES = ("torso", "group", "fallback_low_score_centre", "fallback_bad_torso_and_group",
         "fallback_hip_bad_torso", "fallback_no_keypoints", "given")
TORSO, GROUP, LOW_CENTRE, BAD_GROUP, HIP_BAD_TORSO, NO_KEYPOINTS, GIVEN = range(len(RULES))


class PartsConfig(Section):
    """params ``parts``: HAKE's thresholds and relative part sizes (defaults are HAKE's)."""

    score_threshold: float = Field(0.2, ge=0, le=1)  # centre and torso joints usable at >= this
    group_threshold: float = Field(0.2, ge=0, le=1)  # limb-group mean score must be > this
    part_size: tuple[float, ...] = (1.2, 1.0, 1.0, 1.2, 1.2, 1.2, 0.9, 1.0, 1.0, 0.9)  # × torso length

    @field_validator("part_size")
    @classmethod
    def _ten_positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if len(value) != NUM_PARTS or min(value) <= 0:
            raise ValueError(f"expected {NUM_PARTS} positive sizes in PART_NAMES order {PART_NAMES}")
        return value


_BLOCK = 4096  # persons per block of the layout transposes (fits in cache)
PARAMS = ("parts",)  # the params keys this stage reads (dvc.yaml lists exactly these)


def to_rows(a: np.ndarray) -> np.ndarray:
    """[N, ...] -> [..., N] float32 contiguous (axes reversed), e.g. keypoints [N, 17, 3] ->
    [3, 17, N]: each joint's x, y and score become contiguous rows over all persons.

    The rule works in this layout: numpy handles [N, 17, 3]'s 3-float inner runs slowly, and a
    plain transpose copy is cache-hostile, so the copy goes block by block.
    """
    out = np.empty(a.shape[::-1], np.float32)
    for i in range(0, a.shape[0], _BLOCK):
        out[..., i:i + _BLOCK] = a[i:i + _BLOCK].T
    return out


def from_rows(a: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_rows`: [..., N] -> [N, ...] contiguous."""
    out = np.empty(a.shape[::-1], a.dtype)
    for i in range(0, a.shape[-1], _BLOCK):
        out[i:i + _BLOCK] = a[..., i:i + _BLOCK].T
    return out


def mpii_joints(keypoints: np.ndarray) -> np.ndarray:
    """COCO-17 keypoints ``[N, 17, 3]`` (x, y, score) -> MPII-like joints ``[N, 16, 3]``."""
    return from_rows(_mpii_rows(to_rows(keypoints)))


def _mpii_rows(kp: np.ndarray) -> np.ndarray:
    """COCO rows [3, 17, N] -> MPII-like joint rows [3, 16, N] (averages average scores too)."""
    joints = np.empty((3, 16, kp.shape[2]), np.float32)
    for mpii, coco in _DIRECT.items():
        joints[:, mpii] = kp[:, coco]
    joints[:, 6] = (kp[:, 11] + kp[:, 12]) * np.float32(0.5)  # pelvis: hips
    joints[:, 7] = (kp[:, 5] + kp[:, 6]) * np.float32(0.5)  # neck: shoulders
    joints[:, 9] = (kp[:, 1] + kp[:, 2]) * np.float32(0.5)  # head: eyes
    joints[:, 8] = joints[:, 7] * np.float32(0.75) + joints[:, 9] * np.float32(0.25)  # thorax, 1:3
    return joints


def _rule_rows(kp: np.ndarray, body: np.ndarray, cfg: PartsConfig) -> tuple[np.ndarray, np.ndarray]:
    """The rule in row layout: keypoints [3, 17, N], body [4, N] -> boxes [4, 10, N] (x1, y1,
    x2, y2 rows, unclipped), rule [10, N] int8."""
    j = _mpii_rows(kp)
    x, y, score = j[0], j[1], j[2]
    t = np.float32(cfg.score_threshold)
    centre_ok = score[CENTRE] >= t  # [10, N]
    torso_ok = (score[8] >= t) & (score[6] >= t)  # [N]
    torso = np.hypot(x[6] - x[8], y[6] - y[8])  # [N], pixels
    a, b = _GROUPS[:, 0], _GROUPS[:, 2]
    group_len = np.hypot(x[a] - x[b], y[a] - y[b])  # [5, N], the group's end-to-end length
    group_ok = (score[_GROUPS].sum(1) / np.float32(3)) > np.float32(cfg.group_threshold)  # [5, N]

    size = np.asarray(cfg.part_size, np.float32)[:, None] / np.float32(2)
    half = np.where(torso_ok, torso * size, group_len[_PART_GROUP])  # [10, N]
    rule = np.full(half.shape, BAD_GROUP, np.int8)
    rule[_HIP[:, None] & ~torso_ok] = HIP_BAD_TORSO
    rule[group_ok[_PART_GROUP] & ~_HIP[:, None] & ~torso_ok] = GROUP
    rule[np.broadcast_to(torso_ok, rule.shape)] = TORSO
    rule[~centre_ok] = LOW_CENTRE
    cx, cy = x[CENTRE], y[CENTRE]
    boxes = np.stack([cx - half, cy - half, cx + half, cy + half])  # [4, 10, N]
    whole = rule >= LOW_CENTRE
    for c in range(4):
        np.copyto(boxes[c], body[c], where=whole)
    return boxes, rule


def part_boxes_from_keypoints(
    keypoints: np.ndarray, body: np.ndarray, cfg: PartsConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """HAKE part boxes (unclipped) for every person.

    keypoints: [N, 17, 3] COCO-17 (x, y, score); body: [N, 4] whole-body boxes x1, y1, x2, y2.
    Returns (boxes [N, 10, 4] float32, rule [N, 10] int8, index into RULES).
    """
    boxes, rule = _rule_rows(to_rows(keypoints), to_rows(body), cfg)
    return from_rows(boxes), from_rows(rule)


def person_parts(
    keypoints: np.ndarray, given: np.ndarray, body: np.ndarray, width: np.ndarray, height: np.ndarray,
    cfg: PartsConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Part boxes of every person from whatever they have.

    keypoints: [N, 17, 3], all-NaN rows = no keypoints (a non-finite joint = score 0); given: [N, 10, 4], NaN rows = no given
    part boxes; body: [N, 4]; width, height: [N] image size in pixels.
    Returns (boxes [N, 10, 4] float32, rule [N, 10] int8 into RULES).
    """
    no_kp = np.isnan(keypoints).all(axis=(1, 2))
    has_given = ~np.isnan(given).any(axis=(1, 2))
    kp, body_rows = to_rows(keypoints), to_rows(body)
    # A joint with a non-finite value is an undetected joint (x = y = score = 0, as HAKE's zero
    # scores): only the parts that need it fall back, not the whole person.
    kp[:, ~np.isfinite(kp).all(axis=0)] = 0
    boxes, rule = _rule_rows(kp, body_rows, cfg)
    rule[:, no_kp] = NO_KEYPOINTS
    boxes[..., no_kp] = body_rows[:, None, no_kp]
    limit = np.asarray([width, height, width, height], np.float32)[:, None, :]  # [4, 1, N]
    np.clip(boxes, 0, limit, out=boxes)
    boxes, rule = from_rows(boxes), from_rows(rule)
    rule[has_given] = GIVEN
    boxes[has_given] = given[has_given]  # the source's boxes, unchanged
    return boxes, rule


@dataclass
class PersonArrays:
    """The persons table as arrays. ``names``: the distinct image ids; ``image``: [N] index into
    ``names``; ``person``: [N]; ``body``: [N, 4] boxes; ``keypoints``: [N, 17, 3] and ``given``:
    [N, 10, 4] part boxes, NaN rows for nulls."""

    names: pa.Array
    image: np.ndarray
    person: np.ndarray
    body: np.ndarray
    keypoints: np.ndarray
    given: np.ndarray

    @classmethod
    def from_arrow(cls, table: pa.Table) -> PersonArrays:
        ids = table.column("image_id").combine_chunks().dictionary_encode()
        return cls(
            names=ids.dictionary, image=ids.indices.to_numpy(zero_copy_only=False),
            person=table.column("person").to_numpy().astype(np.int32),
            body=np.stack([table.column(c).to_numpy() for c in ("x1", "y1", "x2", "y2")], 1).astype(np.float32),
            keypoints=fixed_list(table.column("keypoints")).reshape(-1, NUM_KEYPOINTS, 3),
            given=fixed_list(table.column("part_boxes")).reshape(-1, NUM_PARTS, 4),
        )

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> PersonArrays:
        return cls.from_arrow(tables.to_arrow(df, "persons"))


def fixed_list(column: pa.ChunkedArray) -> np.ndarray:
    """A fixed-size list column -> float32 [N, width], NaN rows for nulls (no per-row objects)."""
    arr = column.combine_chunks()
    width = arr.type.list_size
    values = arr.values.slice(arr.offset * width, len(arr) * width)
    out = values.to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(arr), width)
    out[arr.is_null().to_numpy(zero_copy_only=False)] = np.nan
    return out


def parts_table(p: PersonArrays, boxes: np.ndarray, rule: np.ndarray) -> pa.Table:
    """Persons [N] and their part boxes [N, 10, 4] -> the parts table (10 rows per person),
    built in arrow: image ids are taken from the distinct names, not from N * 10 strings."""
    n = len(p.image)
    flat = boxes.reshape(n * NUM_PARTS, 4)
    rule = rule.reshape(-1)
    return pa.table({
        "image_id": p.names.take(pa.array(np.repeat(p.image, NUM_PARTS))),
        "person": np.repeat(p.person, NUM_PARTS),
        "part": np.tile(np.arange(NUM_PARTS, dtype=np.int8), n),
        "group": np.tile(np.asarray(PART_TO_GROUP, np.int8), n),
        "x1": flat[:, 0], "y1": flat[:, 1], "x2": flat[:, 2], "y2": flat[:, 3],
        "fallback": (rule >= LOW_CENTRE) & (rule != GIVEN),
    })


def compute(p: PersonArrays, images: pd.DataFrame, cfg: PartsConfig) -> tuple[pa.Table, dict[str, int]]:
    """The parts table of persons ``p`` (image sizes from ``images``) and counts per rule."""
    size = images.set_index("image_id")[["width", "height"]]
    if not size.index.is_unique:
        dup = size.index[size.index.duplicated()][0]
        raise UserError(f"images table: image_id {quote_name(dup)} appears more than once: every image_id must be unique")
    where = size.index.get_indexer(p.names.to_pandas())
    if (where < 0).any():
        raise UserError(f"persons table names image(s) not in the images table (e.g. "
                        f"{p.names[int(np.flatnonzero(where < 0)[0])]}): rerun the pose stage")
    wh = size.to_numpy(np.float32)[where][p.image]
    boxes, rule = person_parts(p.keypoints, p.given, p.body, wh[:, 0], wh[:, 1], cfg)
    counts = {"persons": len(p.image), "parts": int(rule.size),
              "joints_non_finite_as_undetected": int((~np.isfinite(p.keypoints).all(2)
                                                      & ~np.isnan(p.keypoints).all((1, 2))[:, None]).sum())}
    counts |= {f"rule/{name}": int(n) for name, n in zip(RULES, np.bincount(rule.reshape(-1), minlength=len(RULES)))}
    counts["parts_empty_after_clipping"] = int(((boxes[..., 2] <= boxes[..., 0]) | (boxes[..., 3] <= boxes[..., 1])).sum())
    return parts_table(p, boxes, rule), counts


def parts(persons: pd.DataFrame, images: pd.DataFrame, cfg: PartsConfig) -> tuple[pd.DataFrame, dict[str, int]]:
    """:func:`compute` on a persons DataFrame, returning a DataFrame."""
    table, counts = compute(PersonArrays.from_frame(persons), images, cfg)
    return table.to_pandas(), counts


def run(params_path: str | Path, persons_path: str | Path, images_path: str | Path,
        out_path: str | Path, report_path: str | Path) -> dict[str, int]:
    """Stage entry point: read params (parts), the persons and images tables; write the parts
    table and the summary JSON; print the summary."""
    cfg = section("parts", PartsConfig, params_path, keys=PARAMS)
    persons = PersonArrays.from_arrow(tables.read_arrow(persons_path, "persons"))
    images = tables.read(images_path, "images")
    table, counts = compute(persons, images, cfg)
    tables.write_arrow(table, "parts", out_path)
    tables.write_json(counts, report_path)
    print(f"parts: {counts['persons']} persons from {persons_path} -> {table.num_rows} part boxes in {out_path}")
    for key, value in counts.items():
        print(f"  {key}: {value}")
    return counts


def main() -> None:
    """The DVC stage's command (``python -m pipeline.stage parts``): default paths."""
    run(DEFAULT_PARAMS, Path("data/processed/persons.parquet"), Path("data/processed/images.parquet"),
        Path("data/processed/parts.parquet"), Path("reports/parts.json"))
