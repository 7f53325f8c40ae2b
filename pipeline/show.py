"""``show``: one dataset image drawn as the training data path sees it, the tool that makes data
bugs (misaligned part boxes, flipped masks, wrong verbs) visible.

Panels, left to right: (1) the image with its training pairs (model.data's targets: unique
(subject, object) pairs, clamped, degenerate ones dropped; person box solid, object dashed,
verb names); (2) the pose persons' COCO skeletons and their ten HAKE part boxes, coloured by
part group; (3) the network input after the transforms (``augment``: the training chain drawn
with ``seed``; otherwise the evaluation chain) with the transformed pair and part boxes on the
stride-32 cell grid. Row 2: the six part masks the model receives (model.collate ->
rasterize_part_masks), each with its group's part boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw

from model.collate import Collate
from model.config import ModelConfig
from model.data import HOIDataset, ImageRecord, build_records
from model.label_space import MISSING_OBJECT, LabelSpace, for_format
from model.transforms import make_transforms
from model.common import labels
from pipeline import tables
from pipeline import params as P
from pipeline import visualize as vis
from model.common.errors import UserError
from pipeline.tables import PART_GROUP_NAMES, PART_TO_GROUP

PANEL_LONG = 420  # px, longer side of each top panel
TILE_LONG = 210  # px, longer side of each mask tile


def image_row(images: pd.DataFrame, image_id: str, split: str | None) -> pd.Series:
    """The images-table row of ``image_id``; a clear error when it is absent or in another split."""
    rows = images[images["image_id"] == image_id]
    if rows.empty:
        some = ", ".join(images["image_id"].head(3))
        raise UserError(f"image id {image_id!r} is not in the images table (ids are file stems, e.g. {some})")
    row = rows.iloc[0]
    if split is not None and row["split"] != split:
        raise UserError(f"image id {image_id!r} is in split {row['split']!r}, not {split!r}")
    return row


@dataclass
class Sample:
    """One image through model.data's code path. ``record``: targets before the transforms
    (original px); ``x`` uint8 [3, H, W] network input before normalisation; ``target``: after the transforms
    (pair boxes relative cx, cy, w, h; part boxes in input px); ``masks`` Bool[6, h, w] as
    collated; ``row`` its images-table row; ``persons`` the pose persons of the image (None
    without a persons table); ``fallbacks`` part boxes that are whole-body fallbacks;
    ``dropped`` degenerate pairs left out."""

    record: ImageRecord
    x: torch.Tensor
    target: dict
    masks: np.ndarray
    row: pd.Series
    persons: pd.DataFrame | None
    fallbacks: int
    dropped: int
    space: LabelSpace
    stride: int


def load_sample(image_id: str, split: str | None, augment: bool, seed: int, params_path: Path,
                data: Path) -> Sample:
    """Read the tables and params, and run ``image_id`` through the dataset, the transforms
    (training chain with ``seed`` when ``augment``) and the collate function."""
    from pipeline.train import TrainConfig  # the train section's own validation

    ds = P.section("dataset", P.DatasetConfig, params_path)
    aug = P.section("train", TrainConfig, params_path).augment
    mcfg = P.section("model", ModelConfig, params_path)
    t = {n: tables.read(data / f"{n}.parquet", n) for n in ("images", "instances", "pairs", "parts")}
    row = image_row(t["images"], image_id, split)
    space = for_format(ds.format)
    recs, dropped = build_records(Path(ds.root), t["images"], t["instances"], t["pairs"], t["parts"], space, [image_id])
    if not recs[0].path.exists():
        raise UserError(f"{recs[0].path}: image file not found (params dataset.root = {ds.root})")
    x, target = HOIDataset(recs, make_transforms(aug, train=augment))[(0, seed)]
    masks = Collate(mcfg.stride, mcfg.mask_rule)([(x, target)]).part_masks[0].numpy()
    persons = None
    if (data / "persons.parquet").exists():
        persons = tables.read(data / "persons.parquet", "persons").query("image_id == @image_id")
    parts = t["parts"]
    fallbacks = int((parts["fallback"] & (parts["image_id"] == image_id)).sum())
    return Sample(recs[0], x, target, masks, row, persons, fallbacks, dropped, space, mcfg.stride)


def pair_names(verbs: np.ndarray, obj_labels: np.ndarray, has_obj: np.ndarray,
               space: LabelSpace) -> list[tuple[str, str]]:
    """(verb names joined, object name) of each pair from multi-hot verbs [T, V] and labels [T]."""
    if space.format == "v-coco":  # verb-role classes: "kick (obj)"
        verb_names = [a if r is None else f"{a} ({r})" for a, r in labels.vcoco().verb_roles]
    else:
        verb_names = [n.replace("_", " ") for n in space.verb_names]
    out = []
    for v, o, h in zip(np.asarray(verbs), np.asarray(obj_labels), np.asarray(has_obj)):
        names = [verb_names[i] for i in np.flatnonzero(v > 0)]
        coco = space.object_ids[int(o)] if h and 0 <= int(o) < len(space.object_ids) else MISSING_OBJECT
        obj = "no object" if coco == MISSING_OBJECT else labels.coco_category_name(coco)
        out.append((", ".join(names) or "?", obj))
    return out


def pair_drawings(sub: np.ndarray, obj: np.ndarray, has_obj: np.ndarray,
                  named: list[tuple[str, str]]) -> list[vis.PairDrawing]:
    """Pairs (boxes in px of the image drawn) as drawings, colour by pair index."""
    out = []
    for i, (s, o, h, (verb, name)) in enumerate(zip(sub, obj, has_obj, named)):
        tag = f"{i + 1} {verb} {name}"
        tag = tag if len(tag) <= 40 else tag[:38] + "..."
        out.append(vis.PairDrawing(np.asarray(s, np.float64), np.asarray(o, np.float64) if h else None, tag,
                                   [f"{i + 1}. {verb} | {name}"], vis.PAIR_COLOURS[i % len(vis.PAIR_COLOURS)]))
    return out


def cxcywh_pixels(boxes: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
    """[T, 4] relative cx, cy, w, h -> x1, y1, x2, y2 px of an image of ``hw`` = (H, W)."""
    b = boxes.numpy().astype(np.float64).reshape(-1, 4)
    h, w = hw
    return np.stack([(b[:, 0] - b[:, 2] / 2) * w, (b[:, 1] - b[:, 3] / 2) * h,
                     (b[:, 0] + b[:, 2] / 2) * w, (b[:, 1] + b[:, 3] / 2) * h], 1)


def network_image(x: torch.Tensor) -> Image.Image:
    """The transformed input tensor (uint8 [3, H, W], before normalisation) as an RGB image."""
    return Image.fromarray(x.permute(1, 2, 0).contiguous().numpy())


def draw_grid(canvas: Image.Image, scale: float, stride: int) -> None:
    """Faint lines of the stride cell grid (display px = input px x ``scale``)."""
    draw = ImageDraw.Draw(canvas)
    step = stride * scale
    for x in np.arange(step, canvas.width, step):
        draw.line([(x, 0), (x, canvas.height)], fill=(255, 255, 255), width=1)
    for y in np.arange(step, canvas.height, step):
        draw.line([(0, y), (canvas.width, y)], fill=(255, 255, 255), width=1)


def original_panels(sample: Sample, image: Image.Image) -> tuple[Image.Image, Image.Image]:
    """Panels 1 (training pairs) and 2 (pose skeletons + part boxes) on the original image."""
    tg = sample.record.target
    scale = PANEL_LONG / max(image.size)
    named = pair_names(tg["verbs"], tg["obj_labels"], tg["has_obj"], sample.space)
    drawings = pair_drawings(tg["sub_boxes"], tg["obj_boxes"], tg["has_obj"], named)
    pairs = vis.draw_pairs(vis.scaled(image, scale), drawings, scale)
    pose = vis.scaled(image, scale)
    if sample.persons is not None:
        kp = [np.asarray(k, np.float32).reshape(17, 3) for k in sample.persons["keypoints"] if k is not None]
        if kp:
            vis.draw_skeletons(pose, np.stack(kp), scale)
    vis.draw_part_boxes(pose, tg["part_boxes"], PART_TO_GROUP, scale, tg["part_valid"])
    return pairs, pose


def input_panels(sample: Sample) -> tuple[Image.Image, list[Image.Image]]:
    """Panel 3 (network input with transformed boxes and the cell grid) and the six mask tiles."""
    img, tg, stride = network_image(sample.x), sample.target, sample.stride
    hw = (img.height, img.width)
    has_obj = tg["has_obj"].numpy()
    named = pair_names(tg["verbs"].numpy(), tg["obj_labels"].numpy(), has_obj, sample.space)
    drawings = pair_drawings(cxcywh_pixels(tg["sub_boxes"], hw), cxcywh_pixels(tg["obj_boxes"], hw), has_obj, named)
    scale = PANEL_LONG / max(img.size)
    panel = vis.scaled(img, scale)
    draw_grid(panel, scale, stride)
    part_boxes, valid = tg["part_boxes"].numpy(), tg["part_valid"].numpy()
    vis.draw_part_boxes(panel, part_boxes, PART_TO_GROUP, scale, valid)
    vis.draw_pairs(panel, drawings, scale)
    tile_scale = TILE_LONG / max(img.size)
    base = vis.scaled(img, tile_scale)
    tiles = []
    for k, name in enumerate(PART_GROUP_NAMES):
        cells = vis.cell_map(sample.masks[k], hw, (base.height, base.width), stride)
        tile = vis.overlay_cells(base, cells, vis.GROUP_COLOURS[k])
        in_group = valid & (np.asarray(PART_TO_GROUP) == k)[None, :]
        vis.draw_part_boxes(tile, part_boxes, PART_TO_GROUP, tile_scale, in_group)
        tiles.append(vis.titled(tile, f"mask {k + 1}: {name} ({int(sample.masks[k].sum())} cells)"))
    return panel, tiles


def key_strip(width: int) -> Image.Image:
    """Colour key: part groups; box and skeleton conventions."""
    rows = [(vis.GROUP_COLOURS[k], [f"{name}"]) for k, name in enumerate(PART_GROUP_NAMES)]
    strip = Image.new("RGB", (width, 34), vis.BACKGROUND)
    draw = ImageDraw.Draw(strip)
    x = 8
    for colour, (label,) in rows:
        draw.rectangle([x, 10, x + 14, 24], fill=colour, outline=vis.INK)
        draw.text((x + 20, 9), label, font=vis.font(14), fill=vis.INK)
        x += 30 + int(draw.textlength(label, font=vis.font(14)))
    text = ("part groups  |  pairs: person solid, object dashed  |  skeleton: red dot = keypoint score >= 0.2, "
            "hollow = low")
    draw.text((x + 10, 9), text, font=vis.font(14), fill=vis.INK)
    return strip


def figure(sample: Sample, augment: bool, seed: int) -> Image.Image:
    """The whole ``show`` figure of one sample."""
    with Image.open(sample.record.path) as im:
        image = im.convert("RGB")
    pairs, pose = original_panels(sample, image)
    panel, tiles = input_panels(sample)
    n_pairs, kept = len(sample.record.target["sub_boxes"]), len(sample.target["sub_boxes"])
    n_pose = 0 if sample.persons is None else len(sample.persons)
    dropped = f" ({sample.dropped} degenerate dropped)" if sample.dropped else ""
    h, w = sample.x.shape[1:]
    fallbacks = f"{sample.fallbacks} whole-body fallbacks"
    top = [vis.titled(pairs, f"1. training pairs: {n_pairs}{dropped}"),
           vis.titled(pose, f"2. pose: {n_pose} person(s); 10 part boxes each ({fallbacks})"),
           vis.titled(panel, f"3. network input {w}x{h}: {kept} of {n_pairs} pairs kept")]
    body = vis.stack([vis.stack(top, horizontal=True, gap=6), vis.stack(tiles, horizontal=True, gap=6)], gap=6)
    how = f"training transforms, seed {seed}" if augment else "evaluation transforms"
    r = sample.row
    title = f"{r['image_id']} ({r['split']}, {r['width']}x{r['height']}): data as the model sees it, {how}"
    return vis.stack([vis.banner(title, body.width), body, key_strip(body.width)], gap=4)


def run(image_id: str, split: str | None = None, augment: bool = True, seed: int = 0,
        params_path: Path = Path("params.yaml"), data: Path = Path("data/processed"), out: Path | None = None) -> Path:
    """Draw ``image_id`` and write the PNG (default reports/show/IMAGE_ID.png); returns its path."""
    fig = figure(load_sample(image_id, split, augment, seed, Path(params_path), Path(data)), augment, seed)
    path = Path(out) if out is not None else Path("reports/show") / f"{image_id}.png"
    tables.atomic_write(path, lambda tmp: fig.save(tmp, format="PNG"))
    print(f"show: wrote {path} ({fig.width}x{fig.height})")
    return path
