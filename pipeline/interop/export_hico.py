"""Predictions ⇄ the official HICO-DET MATLAB evaluation input (ho-rcnn ``eval_one.m``, object
mode): one ``detections_XX.mat`` per object category, XX = 01..80 in COCO-id order (01 =
person), holding ``all_boxes``: a cell array (HOIs of that object, in HOI-id order) x (test
images, in ``list_test`` order), each cell an N x 9 double matrix [human x1 y1 x2 y2, object x1
y1 x2 y2, score].

What the usual conversion route (iCAN ``Generate_HICO_detection.py`` + ``Generate_detection.m``,
copied by TIN, PPDM, GEN-VLKT) does, and our defaults:
* keeps the top 19,999 detections per HOI class (``cap``; 0 = no cap);
* rounds both boxes to integers with MATLAB's ``round`` (half away from zero) (``round_boxes``);
* ``eval_one.m`` then adds 1 to every detection coordinate ("zero-based to one-based"). Our
  boxes are already in the dataset's 1-based frame, so the conventional route shifts them one
  pixel right/down (``shift='none'``, the default, for comparability with numbers obtained that
  way); ``shift='minus-one'`` writes x - 1 so that the evaluator sees our exact boxes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from model.common import labels
from pipeline import tables
from model.common.errors import UserError
from pipeline.interop import mat_cells
from pipeline.interop import predictions as preds
from pipeline.interop.image_keys import codes

DEFAULT_CAP = 19_999
SHIFTS = {"none": 0.0, "minus-one": -1.0}


def object_blocks() -> list[tuple[int, list[int]]]:
    """(COCO id, HOI ids ascending) per object, in COCO-id order (file 01 .. 80)."""
    lab = labels.hico()
    blocks = []
    for coco_id in lab.object_coco_ids:
        hois = sorted(h for h, o in lab.hoi_object.items() if o == coco_id)
        if hois != list(range(hois[0], hois[-1] + 1)):
            raise AssertionError(f"HOI ids of object {coco_id} are not contiguous")
        blocks.append((coco_id, hois))
    return blocks


def matlab_round(x: np.ndarray) -> np.ndarray:
    """MATLAB ``round``: halves go away from zero (numpy rounds them to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def detection_rows(frame: pd.DataFrame, image_ids: list[str], cap: int = DEFAULT_CAP, round_boxes: bool = True,
                   shift: str = "none") -> tuple[pd.DataFrame, dict[str, int]]:
    """The rows that go into the files: hoi, col (image position), 8 box values, score; sorted by
    HOI, then score descending (stable), capped per HOI. Plus counts of what was left out."""
    col = codes(frame["image_id"], image_ids)
    hoi = preds.int_column(frame, "hoi_id")
    keep = (col >= 0) & (hoi > 0)
    box = np.concatenate([preds.boxes(frame, preds.HUMAN), preds.boxes(frame, preds.OBJECT)], axis=1)[keep]
    box = box + SHIFTS[shift]
    box = matlab_round(box) if round_boxes else box
    rows = pd.DataFrame(box, columns=[*preds.HUMAN, *preds.OBJECT])
    rows.insert(0, "col", col[keep])
    rows.insert(0, "hoi", hoi[keep])
    rows["score"] = frame["score"].to_numpy(np.float64)[keep]
    rows = rows.sort_values(["hoi", "score"], ascending=[True, False], kind="stable", ignore_index=True)
    rank = rows.groupby("hoi").cumcount().to_numpy()
    capped = rank >= cap if cap > 0 else np.zeros(len(rows), dtype=bool)
    counts = {"rows_in": len(frame), "rows_without_hoi": int((hoi <= 0).sum()),
              "rows_outside_image_list": int(((col < 0) & (hoi > 0)).sum()), "rows_capped": int(capped.sum())}
    rows = rows[~capped].reset_index(drop=True)
    counts["rows_written"] = len(rows)
    return rows, counts


def object_cells(rows: pd.DataFrame, hois: list[int], n_images: int) -> tuple[np.ndarray, np.ndarray]:
    """The detections of one object's HOIs: (row-major cell index hoi_row * n_images + image
    column [N], values [N, 9] human box, object box, score), in score order within a cell."""
    mine = rows[rows["hoi"].between(hois[0], hois[-1])]
    values = mine[[*preds.HUMAN, *preds.OBJECT, "score"]].to_numpy(np.float64)
    return (mine["hoi"].to_numpy(np.int64) - hois[0]) * n_images + mine["col"].to_numpy(np.int64), values


def write_mat(path: Path, hois: list[int], n_images: int, cell: np.ndarray, values: np.ndarray) -> Path:
    """``all_boxes`` of one object ([len(hois), n_images] cells of N x 9 doubles, empty cells
    ``[]``), compressed; time proportional to the detections (pipeline/interop/mat_cells.py)."""
    return mat_cells.write_cell_array(path, "all_boxes", (len(hois), n_images), cell, values)


def export(frame: pd.DataFrame, image_ids: list[str], out_dir: Path, cap: int = DEFAULT_CAP,
           round_boxes: bool = True, shift: str = "none", progress: bool = False) -> dict[str, int]:
    """Write the 80 ``detections_XX.mat`` files; return the counts. ``progress``: a progress bar
    over the files (on a terminal, not with -q)."""
    if shift not in SHIFTS:
        raise UserError(f"shift must be one of {sorted(SHIFTS)}, not '{shift}'")
    rows, counts = detection_rows(frame, image_ids, cap, round_boxes, shift)
    from model.common.progress import bar

    done = 0
    for k, (_, hois) in enumerate(bar(object_blocks(), desc="export: detections_XX.mat", unit="file", leave=False,
                                      disable=not progress),
                                  start=1):
        cell, values = object_cells(rows, hois, len(image_ids))
        write_mat(out_dir / f"detections_{k:02d}.mat", hois, len(image_ids), cell, values)
        done += len(cell)
    if progress:
        print(f"  {k}/{k} files written ({done} of {len(rows)} detections)", flush=True)
    counts["images"] = len(image_ids)
    return counts


def read_mats(mat_dir: Path, image_ids: list[str], shift: str = "none") -> pd.DataFrame:
    """The inverse: every detection of the 80 files as ``predictions`` rows (``shift`` undone;
    rounding cannot be)."""
    hoi_parts, col_parts, value_parts = [], [], []
    for k, (_, hois) in enumerate(object_blocks(), start=1):
        flat = _load_cells(mat_dir / f"detections_{k:02d}.mat", (len(hois), len(image_ids)))
        sizes = np.fromiter((c.size // 9 for c in flat), dtype=np.int64, count=len(flat))
        filled = np.flatnonzero(sizes)
        if len(filled):
            value_parts.append(np.concatenate([np.asarray(flat[i], dtype=np.float64).reshape(-1, 9) for i in filled]))
            cell = np.repeat(filled, sizes[filled])
            hoi_parts.append(hois[0] + cell // len(image_ids))
            col_parts.append(cell % len(image_ids))
    m = np.concatenate(value_parts) if value_parts else np.zeros((0, 9))
    m[:, :8] -= SHIFTS[shift]  # the boxes only; column 8 is the score
    hoi = np.concatenate(hoi_parts) if hoi_parts else np.zeros(0, dtype=np.int64)
    col = np.concatenate(col_parts) if col_parts else np.zeros(0, dtype=np.int64)
    lab = labels.hico()
    verb_of = np.zeros(max(lab.hoi_verb) + 1, dtype=np.int32)
    object_of = np.zeros_like(verb_of)
    for h, v in lab.hoi_verb.items():
        verb_of[h], object_of[h] = v, lab.hoi_object[h]
    return preds.conform({
        "image_id": np.asarray(image_ids, dtype=object)[col], "query": preds.nullable_int(col, np.zeros(len(col), dtype=bool)),  # the files keep no query index
        **{c: m[:, i].astype(np.float32) for i, c in enumerate((*preds.HUMAN, *preds.OBJECT))},
        "category_id": object_of[hoi], "verb_id": verb_of[hoi], "hoi_id": hoi.astype(np.int32),
        "score": m[:, 8].astype(np.float32),
    })


def _load_cells(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """The ``all_boxes`` cells of one file, flattened row-major (HOI-major)."""
    from scipy.io import loadmat

    if not path.exists():
        raise UserError(f"{path}: file not found (expected detections_01.mat .. detections_80.mat)")
    try:
        all_boxes = loadmat(str(path))["all_boxes"]
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{path}: not a detections file with an all_boxes cell array ({exc})") from None
    if all_boxes.shape != shape:
        raise UserError(f"{path}: all_boxes is {all_boxes.shape}, expected {shape} (HOIs x test images)")
    return all_boxes.ravel()


def run(predictions_path: Path, image_ids: list[str], out_dir: Path, cap: int = DEFAULT_CAP,
        round_boxes: bool = True, shift: str = "none") -> dict[str, int]:
    """Command entry point: read the predictions table, write the files, print the counts."""
    print(f"export-hico-mat: {predictions_path} -> {out_dir}/detections_01..80.mat", flush=True)
    counts = export(preds.read(predictions_path), image_ids, out_dir, cap, round_boxes, shift, progress=True)
    print(f"  cap {cap or 'none'}, {'rounded' if round_boxes else 'unrounded'}, shift {shift}")
    for key, value in counts.items():
        print(f"  {key:<28}{value:>10}")
    if counts["images"] != 9658:
        print(f"  note: {counts['images']} images; the official test list (anno.mat list_test) has 9,658")
    return counts
