"""Helpers of the training tests: a tiny on-disk HICO-DET-like dataset (images + the five
tables) and a tiny stand-in pair network with the model's forward contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn

from pipeline import tables

BOX = ["x1", "y1", "x2", "y2"]
HOLD, NO_INTERACTION = 37, 58  # HICO verb ids (hold, no_interaction)
CUP, BALL = 47, 37  # COCO ids


def person_parts(box: np.ndarray) -> np.ndarray:
    """Ten part boxes [10, 4] laid out inside a person box (feet low, head high, right = image
    left as for a person facing the camera)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx = lambda f: x1 + f * w  # noqa: E731
    cy = lambda f: y1 + f * h  # noqa: E731
    centres = [(cx(.3), cy(.95)), (cx(.3), cy(.75)), (cx(.7), cy(.75)), (cx(.7), cy(.95)), (cx(.5), cy(.55)),
               (cx(.5), cy(.1)), (cx(.1), cy(.5)), (cx(.2), cy(.3)), (cx(.8), cy(.3)), (cx(.9), cy(.5))]
    s = 0.08 * h
    return np.array([[x - s, y - s, x + s, y + s] for x, y in centres], dtype=np.float32)


def make_dataset(root: Path, n: int = 12, size: tuple[int, int] = (96, 80), seed: int = 0) -> dict[str, pd.DataFrame]:
    """``n`` images (w, h = ``size``) with 1-2 persons each, a cup held by the first and, in
    odd images, a ball next to the second (no_interaction). Images are written under ``root``;
    the tables are returned."""
    rng = np.random.default_rng(seed)
    W, H = size
    images, inst, pairs, parts, scenes = [], [], [], [], []
    (root / "images").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image_id = f"img_{i:03d}"
        arr = np.full((H, W, 3), 200, dtype=np.uint8)
        persons = 1 + i % 2
        boxes = []
        for p in range(persons):
            x1 = 4 + p * W // 2 + rng.integers(0, 6)
            box = np.array([x1, 10, x1 + W // 3, H - 6], dtype=np.float32)
            boxes.append(box)
            arr[int(box[1]):int(box[3]), int(box[0]):int(box[2])] = (30, 30, 30)
        cup = np.array([boxes[0][0], 40, boxes[0][0] + 14, 54], dtype=np.float32)
        arr[40:54, int(cup[0]):int(cup[0]) + 14] = (220, 20, 20)
        objs = [(CUP, cup)]
        if persons == 2:
            ball = np.array([boxes[1][2] - 10, 60, boxes[1][2] + 4, 74], dtype=np.float32)
            objs.append((BALL, ball))
        Image.fromarray(arr).save(root / "images" / f"{image_id}.png")
        images.append({"image_id": image_id, "split": "train", "file": f"images/{image_id}.png",
                       "width": W, "height": H, "annotated": True})
        for k, b in enumerate(boxes):
            inst.append({"image_id": image_id, "index": k, "category_id": 1, **dict(zip(BOX, b))})
            for part, pb in enumerate(person_parts(b)):
                parts.append({"image_id": image_id, "person": k, "part": part, "group": tables.PART_TO_GROUP[part],
                              **dict(zip(BOX, pb)), "fallback": False})
        for k, (cat, b) in enumerate(objs):
            inst.append({"image_id": image_id, "index": persons + k, "category_id": cat, **dict(zip(BOX, b))})
        pairs.append({"image_id": image_id, "subject": 0, "object": persons, "verb_id": HOLD, "hoi_id": 1, "role": None})
        if persons == 2:
            pairs.append({"image_id": image_id, "subject": 1, "object": persons + 1, "verb_id": NO_INTERACTION,
                          "hoi_id": 2, "role": None})
        scenes.append({"image_id": image_id, "split": "train", "crowded": persons > 1,
                       "sample_weight": 3.0 if persons > 1 else 1.0})
    df = lambda rows: pd.DataFrame(rows)  # noqa: E731
    return {"images": df(images), "instances": df(inst), "pairs": df(pairs), "parts": df(parts), "scenes": df(scenes)}


def write_tables(t: dict[str, pd.DataFrame], processed: Path) -> None:
    """Write the tables as parquet with the project's schemas (scenes padded with nulls)."""
    processed.mkdir(parents=True, exist_ok=True)
    persons = t["parts"].groupby(["image_id", "person"])[BOX].agg({"x1": "min", "y1": "min", "x2": "max", "y2": "max"})
    persons = persons.reset_index().assign(score=1.0, keypoints=None, part_boxes=None, backend="test")
    scenes = t["scenes"].copy()
    for f in tables.SCHEMAS["scenes"]:
        if f.name not in scenes:
            scenes[f.name] = 0 if str(f.type).startswith("int") else (False if str(f.type) == "bool" else np.nan)
    for name, frame in {**t, "persons": persons, "scenes": scenes}.items():
        tables.write(frame, name, processed / f"{name}.parquet")


class TinyPairNet(nn.Module):
    """A few hundred parameters with the model's forward contract (stage 1 or 2)."""

    def __init__(self, num_obj: int = 80, num_verbs: int = 117, stage: int = 1, queries: int = 4,
                 dropout: float = 0.1, d: int = 16) -> None:
        super().__init__()
        self.stage = stage
        self.backbone = nn.Conv2d(3, d, 8, stride=8)
        self.query = nn.Parameter(torch.randn(queries, d) * 0.5)
        self.drop = nn.Dropout(dropout)
        self.cls = nn.Linear(d, num_obj + 1)
        self.sub, self.obj = nn.Linear(d, 4), nn.Linear(d, 4)
        self.head = nn.Linear(d, 1 if stage == 1 else num_verbs)

    def _boxes(self, h: torch.Tensor) -> dict:
        return {"pred_obj_logits": self.cls(h), "pred_sub_boxes": self.sub(h).sigmoid(),
                "pred_obj_boxes": self.obj(h).sigmoid()}

    def forward(self, images, pixel_mask, part_masks=None) -> dict:
        f = self.backbone(images).relu().mean((2, 3))  # [B, d]
        h = self.drop(f[:, None, :] + self.query[None])  # [B, Q, d]
        out = self._boxes(h)
        out["aux_outputs"] = [self._boxes(0.5 * h)]
        if self.stage == 1:
            out["pred_int_logits"] = self.head(h)[..., 0]
            out["pred_part_scores"] = torch.sigmoid(h[..., :6])
        else:
            out["pred_verb_logits"] = self.head(h)
        return out
