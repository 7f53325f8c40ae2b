"""Drawings and JSON records of ``predict`` results.

Turns the predictions rows of one image (pipeline/tables.py ``predictions`` schema; boxes
``hx1, hy1, hx2, hy2`` / ``ox1, oy1, ox2, oy2`` in px of the displayed original) into the
per-image PNG (the top triplets grouped by pair, drawn on the working copy with boxes scaled
to it), the Fig. 4 attention grid (body-part saliency maps and masked decoder attention on the
network's feature grid) and the JSON-ready entry of ``predictions.json`` (names resolved, boxes
rounded to 0.01 px, scores to 6 decimals, NaN -> null).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from pipeline import tables
from pipeline import visualize as vis
from pipeline.inputs.images import LoadedImage, Source


@dataclass
class Attention:
    """Fig. 4 material of one image (numpy, CPU): ``part_masks`` Bool[6, h, w]; ``weights`` /
    ``visible`` [L, passes, Q1, h, w] of the masked decoder; ``match`` [Q2] stage-1 query of
    each stage-2 query; ``part_scores`` [Q1, 6]; ``selected`` Bool[Q1, 6] | None;
    ``interactiveness`` [Q1]; ``input_hw`` network input (h, w) px."""

    part_masks: np.ndarray
    weights: np.ndarray
    visible: np.ndarray
    match: np.ndarray
    part_scores: np.ndarray
    selected: np.ndarray | None
    interactiveness: np.ndarray
    input_hw: tuple[int, int]


@dataclass
class ImageResult:
    """One input file's outcome: status ok | no_person | error."""

    source: Source
    status: str
    message: str = ""
    orig_hw: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)
    persons: int = 0
    detections: pd.DataFrame | None = None


def names(frame: pd.DataFrame, fmt: str) -> tuple[list[str], list[str]]:
    """Verb and object names of predictions rows (V-COCO verbs with their role)."""
    from model.common import labels

    cats = frame["category_id"].astype("Int64")
    objects = ["no object" if pd.isna(c) else labels.coco_category_name(int(c)) for c in cats]
    if fmt == "hico-det":
        verbs = [labels.hico().verb_names[int(v)].replace("_", " ") for v in frame["verb_id"]]
    else:
        acts = labels.vcoco().actions
        verbs = [acts[int(v)] + ("" if pd.isna(r) else f" ({r})") for v, r in zip(frame["verb_id"], frame["role"])]
    return verbs, objects


def score_text(x: float) -> str:
    return f"{x:.3f}" if x >= 0.001 else f"{x:.1e}"


def pair_drawings(dets: pd.DataFrame, fmt: str, top: int) -> list[vis.PairDrawing]:
    """The best ``top`` triplets of one image (sorted by score) grouped by pair (stage-2
    query), one colour and one legend entry per pair, in order of their best triplet."""
    best = dets.head(top)
    if best.empty:
        return []
    verbs, objects = names(best, fmt)
    best = best.assign(_verb=verbs, _obj=objects)
    out = []
    for rank, (_, g) in enumerate(best.groupby("query", sort=False), start=1):
        r = g.iloc[0]
        obj = None if pd.isna(r["ox1"]) else r[["ox1", "oy1", "ox2", "oy2"]].to_numpy(np.float64)
        more = f" (+{len(g) - 1} verb{'s' if len(g) > 2 else ''})" if len(g) > 1 else ""
        tag = f"{rank} {r['_verb']} {r['_obj']} {score_text(r['score'])}{more}"
        lines = [(f"{rank}. " if i == 0 else "     ") + f"{v} {r['_obj']}  {score_text(s)}"
                 for i, (v, s) in enumerate(zip(g["_verb"], g["score"]))]
        lines.append(_interactiveness_line(r))
        out.append(vis.PairDrawing(r[["hx1", "hy1", "hx2", "hy2"]].to_numpy(np.float64), obj, tag, lines,
                                   vis.PAIR_COLOURS[(rank - 1) % len(vis.PAIR_COLOURS)]))
    return out


def _interactiveness_line(row: pd.Series) -> str:
    from pipeline.tables import PART_GROUP_NAMES

    if pd.isna(row["interactiveness"]):
        return "interactiveness: n/a"
    parts = np.asarray(row["part_scores"], np.float32) if row["part_scores"] is not None else np.zeros(0)
    order = np.argsort(-parts, kind="stable")[:2]
    best = ", ".join(f"{PART_GROUP_NAMES[k]} {parts[k]:.2f}" for k in order)
    return f"interactiveness {row['interactiveness']:.2f}" + (f"; parts: {best}" if best else "")


def detection_png(li: LoadedImage, result: ImageResult, fmt: str, top: int) -> Image.Image:
    """The per-image PNG: the original-frame image (working copy, boxes scaled to it)."""
    dets = result.detections if result.detections is not None else tables.empty("predictions")
    pairs = pair_drawings(dets, fmt, top)
    k = 1.0 / li.scale  # working px per original px
    for p in pairs:  # figure draws on the working copy
        p.human = p.human * np.tile(k, 2)
        p.obj = None if p.obj is None else p.obj * np.tile(k, 2)
    h, w = li.orig_hw
    title = (f"{li.source.image_id}  ({w}x{h})  {result.persons} person(s), {len(dets)} triplet(s), "
             f"top {len(pairs)} pair(s) drawn")
    note = "the pose backend found no person: no detections" if result.status == "no_person" else None
    if result.status == "ok" and dets.empty:
        note = "persons found, but no triplet survived NIS and pair NMS"
    info = "; ".join(li.notes) if li.notes else None
    return vis.detection_figure(li.image, pairs, title, note, info=info)


def attention_png(li: LoadedImage, att: Attention, dets: pd.DataFrame, fmt: str, top: int,
                  max_pairs: int = 3, tile_long: int = 300) -> Image.Image:
    """Fig. 4 grid: row 1 the six body-part saliency maps m_part^k (all persons, on the
    feature grid); then per top pair its boxes, the attention of each masked decoder layer
    (grey: tokens its mask hides) and its part scores (filled: parts kept by filtering)."""
    from pipeline.tables import PART_GROUP_NAMES

    base = vis.scaled(li.image, tile_long / max(li.image.size))
    grid = lambda g: vis.cell_map(g, att.input_hw, (base.height, base.width))  # noqa: E731
    rows = [[vis.titled(vis.overlay_cells(base, grid(att.part_masks[k]), vis.GROUP_COLOURS[k]), f"m_part: {name}")
             for k, name in enumerate(PART_GROUP_NAMES)]]
    pairs = pair_drawings(dets, fmt, top)[:max_pairs]
    queries = dets.head(top)["query"].drop_duplicates().to_numpy()[:max_pairs]
    for rank, (pair, q2) in enumerate(zip(pairs, queries), start=1):
        j = int(att.match[q2])  # the stage-1 query that gave this pair its interactiveness
        scores = att.part_scores[j]
        p = 0 if att.weights.shape[1] == 1 else 1 + int(np.argmax(scores))  # six passes: best part's
        tile = vis.draw_pairs(base.copy(), [replace(pair, tag=str(rank))], base.width / li.orig_hw[1])
        row = [vis.titled(tile, pair.legend[0][:44])]
        row += [vis.titled(vis.overlay_heat(base, grid(att.weights[l, p, j]), grid(att.visible[l, p, j])),
                           f"masked layer {l + 1} attention") for l in range(att.weights.shape[0])]
        chosen = None if att.selected is None else att.selected[j]
        bars = vis.bar_tile(scores, vis.GROUP_COLOURS, PART_GROUP_NAMES, chosen, (base.width, base.height))
        row.append(vis.titled(bars, f"p_int {att.interactiveness[j]:.2f}; p_part"))
        rows.append(row)
    title = (f"{li.source.image_id}: body-part saliency maps (row 1); attention of the masked decoder layers "
             f"for the top {len(pairs)} pair(s), grey = masked tokens")
    return vis.grid_figure(rows, title)


def detection_records(dets: pd.DataFrame, fmt: str) -> list[dict]:
    """Predictions rows of one image as JSON-ready dicts with names (NaN -> null)."""
    from pipeline.tables import PART_GROUP_NAMES

    if dets.empty:
        return []
    verbs, objects = names(dets, fmt)
    opt = lambda x, f: None if pd.isna(x) else f(x)  # noqa: E731
    out = []
    for r, verb, obj in zip(dets.to_dict("records"), verbs, objects):
        parts = r["part_scores"]
        out.append({
            "query": int(r["query"]), "verb_id": int(r["verb_id"]), "verb": verb,
            "category_id": opt(r["category_id"], int), "object": obj, "hoi_id": opt(r["hoi_id"], int),
            "role": opt(r["role"], str), "score": round(float(r["score"]), 6),
            "interactiveness": opt(r["interactiveness"], lambda x: round(float(x), 6)),
            "part_scores": None if parts is None else dict(zip(PART_GROUP_NAMES, (round(float(x), 6) for x in parts))),
            "human_box": [round(float(r[c]), 2) for c in ("hx1", "hy1", "hx2", "hy2")],
            "object_box": None if pd.isna(r["ox1"]) else [round(float(r[c]), 2) for c in ("ox1", "oy1", "ox2", "oy2")],
        })
    return out


def result_entry(res: ImageResult, fmt: str) -> dict:
    h, w = res.orig_hw or (None, None)
    dets = res.detections if res.detections is not None else tables.empty("predictions")
    return {"image_id": res.source.image_id, "file": str(res.source.path), "status": res.status,
            "message": res.message, "width": w, "height": h, "conversions": res.notes, "persons": res.persons,
            "detections": detection_records(dets, fmt)}


def save_png(img: Image.Image, path: Path) -> Path:
    return tables.atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))
