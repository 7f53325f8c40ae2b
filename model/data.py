"""Torch dataset over the parquet tables (images, instances, pairs, parts) and the image files.

One target per image, built once at construction (vectorised over the tables):

- one entry per unique (subject, object) pair of the pairs table, QPIC-style: ``sub_boxes``,
  ``obj_boxes`` (zeros without object), ``has_obj``, ``obj_labels`` (contiguous index of
  :mod:`model.label_space`; V-COCO's missing object -> the extra class), ``verbs`` (multi-hot
  over the label space's verbs), ``interactive``, ``part_labels`` [G, 6] (the pairs table's
  part-level labels, any verb row's 1 wins, NaN = unknown; Sec. 5.3's supervision);
- ``part_boxes`` [P, 10, 4] of every person the pose stage found, ``part_valid`` Bool[P, 10];
- ``orig_size`` (h, w) of the file, ``image_id``, ``index``.

``interactive`` = the pair has a verb other than no_interaction (ARCHITECTURE decision 11;
every V-COCO pair). The released code labels every ground-truth pair 1, also HICO-DET's
no_interaction pairs; with this rule the stage-1 target agrees with the interactiveness AP
ground truth. Boxes are clamped to the image; pairs with a degenerate human or object box are
dropped (as QPIC does), and the count is reported.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from model.label_space import LabelSpace
from model.transforms import Compose, part_box_valid
from model.common.errors import UserError

BOX = ["x1", "y1", "x2", "y2"]
PART_GROUPS = 6  # foot, leg, hip, hand, arm, head (model.common.body_parts.PART_GROUP_NAMES)


@dataclass
class ImageRecord:
    """Everything known about one image before augmentation (numpy, original pixels)."""

    image_id: str
    path: Path
    size: tuple[int, int]  # (h, w) of the original image
    target: dict[str, np.ndarray]


def _box_lookup(inst: pd.DataFrame, image_id: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes [N, 4], category ids [N] and a found-flag [N] of instance (image_id, index)."""
    left = pd.DataFrame({"image_id": image_id, "index": index.astype(np.int64)})
    right = inst[["image_id", "index", "category_id", *BOX]].astype({"index": np.int64})
    right = right.drop_duplicates(["image_id", "index"])
    hit = left.merge(right, on=["image_id", "index"], how="left")
    found = hit["category_id"].notna().to_numpy()
    return hit[BOX].to_numpy(np.float32), hit["category_id"].to_numpy(np.float64), found


def pair_targets(pairs: pd.DataFrame, inst: pd.DataFrame, sizes: pd.DataFrame,
                 space: LabelSpace) -> tuple[pd.DataFrame, np.ndarray, int]:
    """Unique (subject, object) pairs with their boxes, labels and verbs.

    Returns (frame with image_id, sub/obj boxes, has_obj, obj_label, interactive; verbs
    multi-hot [G, V] aligned with the frame; number of pairs dropped as degenerate)."""
    obj = pairs["object"].astype("Int64").fillna(-1).to_numpy(np.int64)
    keys = pd.DataFrame({"image_id": pairs["image_id"].to_numpy(),
                         "subject": pairs["subject"].to_numpy(np.int64), "object": obj})
    group = keys.groupby(["image_id", "subject", "object"], sort=True).ngroup().to_numpy()
    verbs = np.zeros((group.max() + 1 if len(group) else 0, space.num_verbs), dtype=np.float32)
    verbs[group, space.verb_index(pairs)] = 1.0
    uniq = keys.groupby(group).first()
    img = uniq["image_id"].to_numpy()
    sub, _, sub_found = _box_lookup(inst, img, uniq["subject"].to_numpy())
    has_obj = uniq["object"].to_numpy() >= 0
    obj_box, obj_cat, obj_found = _box_lookup(inst, img, uniq["object"].to_numpy())
    wh = sizes.reindex(img)[["width", "height"]].to_numpy(np.float32)
    hi = np.concatenate([wh, wh], 1)
    sub, obj_box = np.clip(sub, 0, hi), np.where(has_obj[:, None], np.clip(obj_box, 0, hi), 0)
    ok = sub_found & _nonempty(sub) & (~has_obj | (obj_found & _nonempty(obj_box)))
    obj_cat = np.where(has_obj, obj_cat, np.nan)
    if space.no_interaction is None:
        interactive = np.ones(len(uniq), dtype=np.float32)
    else:
        interactive = (verbs.sum(1) - verbs[:, space.no_interaction] > 0).astype(np.float32)
    frame = pd.DataFrame({"image_id": img, "has_obj": has_obj, "interactive": interactive})
    frame[["sx1", "sy1", "sx2", "sy2"]] = sub
    frame[["ox1", "oy1", "ox2", "oy2"]] = obj_box.astype(np.float32)
    obj_label = np.full(len(uniq), -1, dtype=np.int64)
    obj_label[ok] = space.object_index(obj_cat[ok])
    frame["obj_label"] = obj_label
    labels = pair_part_labels(pairs, group, len(uniq))
    frame[[f"part_{k}" for k in range(PART_GROUPS)]] = labels
    return frame[ok].reset_index(drop=True), verbs[ok], int((~ok).sum())


def pair_part_labels(pairs: pd.DataFrame, group: np.ndarray, n: int) -> np.ndarray:
    """[n, 6] float32 part-level interactiveness labels of the unique pairs (foot, leg, hip,
    hand, arm, head; 1 = involved), NaN where unknown: a part is involved when any verb row of
    the pair says so; rows with a null label are ignored; a pair without any labelled row (or a
    pairs table without the ``part_labels`` column) is unknown."""
    out = np.full((n, PART_GROUPS), np.nan, dtype=np.float32)
    if "part_labels" not in pairs.columns or not len(pairs):
        return out
    col = pairs["part_labels"].to_numpy()
    known = np.array([v is not None and not (np.isscalar(v) and pd.isna(v)) for v in col], dtype=bool)
    if known.any():
        rows = np.stack([np.asarray(v, dtype=np.float32) for v in col[known]])  # [K, 6]
        np.fmax.at(out, group[known], rows)  # fmax: NaN (unknown so far) loses to any label
    return out


def _nonempty(b: np.ndarray) -> np.ndarray:
    return (b[..., 2] > b[..., 0]) & (b[..., 3] > b[..., 1])


def part_arrays(parts: pd.DataFrame, sizes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image ids [P], part boxes [P, 10, 4] clipped to the image, and valid flags [P, 10] of
    every person of the parts table (ten rows per person, in part order)."""
    p = parts.sort_values(["image_id", "person", "part"], kind="stable")
    counts = p.groupby(["image_id", "person"], sort=False).size()
    if len(p) and ((counts != 10).any() or (p["part"].to_numpy() != np.tile(np.arange(10), len(counts))).any()):
        raise UserError("parts table: every person needs exactly the ten parts 0..9")
    boxes = p[BOX].to_numpy(np.float32).reshape(-1, 10, 4)
    ids = p["image_id"].to_numpy()[::10]
    wh = sizes.reindex(ids)[["width", "height"]].to_numpy(np.float32)
    valid = part_box_valid(boxes, wh[:, 0, None], wh[:, 1, None])  # zero-size parts inside stay valid
    boxes = np.clip(np.nan_to_num(boxes), 0, np.concatenate([wh, wh], 1)[:, None, :])
    return ids, boxes, valid


def _split_by_image(ids: np.ndarray, image_ids: list[str]) -> dict[str, np.ndarray]:
    """Row positions of ``ids`` grouped by image (every image of ``image_ids`` present)."""
    order = np.argsort(ids, kind="stable")
    uniq, start = np.unique(ids[order], return_index=True)
    groups = dict(zip(uniq, np.split(order, start[1:]))) if len(order) else {}
    empty = np.zeros(0, dtype=np.int64)
    return {i: groups.get(i, empty) for i in image_ids}


def build_records(root: Path, images: pd.DataFrame, instances: pd.DataFrame, pairs: pd.DataFrame,
                  parts: pd.DataFrame, space: LabelSpace, image_ids: list[str]) -> tuple[list[ImageRecord], int]:
    """One :class:`ImageRecord` per image of ``image_ids`` (in that order), and the number of
    pairs dropped as degenerate."""
    sizes = images.drop_duplicates("image_id").set_index("image_id")
    missing = sorted(set(image_ids) - set(sizes.index))
    if missing:
        raise UserError(f"images table: no row for image(s) {missing[:5]}")
    wanted = set(image_ids)
    frame, verbs, dropped = pair_targets(pairs[pairs["image_id"].isin(wanted)], instances, sizes, space)
    part_ids, part_boxes, part_valid = part_arrays(parts[parts["image_id"].isin(wanted)], sizes)
    by_pair = _split_by_image(frame["image_id"].to_numpy(), image_ids)
    by_part = _split_by_image(part_ids, image_ids)
    sub = frame[["sx1", "sy1", "sx2", "sy2"]].to_numpy(np.float32)
    obj = frame[["ox1", "oy1", "ox2", "oy2"]].to_numpy(np.float32)
    cols = {"has_obj": frame["has_obj"].to_numpy(bool), "obj_labels": frame["obj_label"].to_numpy(np.int64),
            "interactive": frame["interactive"].to_numpy(np.float32),
            "part_labels": frame[[f"part_{k}" for k in range(PART_GROUPS)]].to_numpy(np.float32)}
    records = []
    for image_id in image_ids:
        r, q = by_pair[image_id], by_part[image_id]
        target = {"sub_boxes": sub[r], "obj_boxes": obj[r], "verbs": verbs[r],
                  **{k: v[r] for k, v in cols.items()},
                  "part_boxes": part_boxes[q], "part_valid": part_valid[q]}
        row = sizes.loc[image_id]
        records.append(ImageRecord(image_id, root / row["file"], (int(row["height"]), int(row["width"])), target))
    return records, dropped


class HOIDataset(torch.utils.data.Dataset):
    """Map-style dataset; an item key is an index or ``(index, seed)``: the seed drives the
    sample's augmentation, so that the data seen at a step never depends on workers or ranks."""

    def __init__(self, records: list[ImageRecord], transforms: Compose) -> None:
        self.records, self.transforms = records, transforms

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, dict]:
        index, seed = key if isinstance(key, tuple) else (key, key)
        rec = self.records[index]
        with Image.open(rec.path) as im:
            img = im.convert("RGB")
        if (img.height, img.width) != rec.size:
            raise UserError(f"{rec.path}: image is {img.width}x{img.height}, the images table says "
                            f"{rec.size[1]}x{rec.size[0]}")
        target = {k: v.copy() for k, v in rec.target.items()}
        target["size"] = rec.size
        x, target = self.transforms(img, target, np.random.default_rng(seed))
        target["orig_size"] = torch.tensor(rec.size)
        target["image_id"], target["index"] = rec.image_id, index
        return x, target


def split_validation(image_ids: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Carve a validation split from the training images: the ``ceil(fraction * N)`` images with
    the smallest seeded hash of their id (stable whatever the order or the other images)."""
    if fraction <= 0:
        return list(image_ids), []
    n_val = min(len(image_ids) - 1, int(np.ceil(fraction * len(image_ids))))
    rank = sorted(image_ids, key=lambda i: hashlib.sha1(f"{seed}:{i}".encode()).hexdigest())
    val = set(rank[:max(n_val, 0)])
    return [i for i in image_ids if i not in val], [i for i in image_ids if i in val]
