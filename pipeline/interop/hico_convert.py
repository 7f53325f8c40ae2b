"""``data convert-hico``: HICO-DET's official ``anno_bbox.mat`` (and ``anno.mat``) → the
PPDM/QPIC files the pipeline ingests, so that nobody depends on third-party conversions.

Writes, under ``annotations/``:
* ``trainval_hico.json`` / ``test_hico.json``: one record per image with at least one visible
  HOI box pair, in the ``.mat`` order: ``{"file_name", "img_id" (train only), "annotations":
  [{"bbox": [x1, y1, x2, y2], "category_id": COCO id}], "hoi_annotation": [{"subject_id",
  "object_id", "category_id": verb id 1..117, "hoi_category_id": 1..600 (train only)}]}``, as
  PPDM's files are laid out. Boxes keep the ``.mat`` values (1-based pixel indices). One entry
  per connection row of every HOI annotation not flagged ``invis``; identical boxes of the same
  category within an image share one ``annotations`` entry; ground-truth pairs are never merged.
* ``corre_hico.npy``: the 117 x 80 verb-object validity matrix.
* ``image_labels.parquet`` (from ``anno.mat``): image_id, split, hoi_id, label (1 / 0 / -1),
  the image-level labels of the Known Object setting (ARCHITECTURE decision 10).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from model.common import labels
from pipeline import tables
from model.common.errors import UserError
from pipeline.interop.hico_mat import HicoBoxes, load_mat, read_actions, read_image_labels, read_split

OUTPUTS = {"train": "trainval_hico.json", "test": "test_hico.json"}
IMAGE_LABELS_SCHEMA = pa.schema([("image_id", pa.string()), ("split", pa.string()),
                                 ("hoi_id", pa.int32()), ("label", pa.int8())])


def check_actions(actions: list[tuple[str, str]], source: str) -> None:
    """``list_action`` must be the 600 classes of data/labels/hicodet.json, in that order."""
    lab = labels.hico()
    if len(actions) != len(lab.hoi_verb):
        raise UserError(f"{source}: list_action has {len(actions)} entries, expected {len(lab.hoi_verb)}")
    for hoi_id, (verb, obj) in enumerate(actions, start=1):
        ours = (lab.verb_names[lab.hoi_verb[hoi_id]], lab.object_names[lab.hoi_object[hoi_id]])
        if (verb.replace(" ", "_"), obj.replace(" ", "_")) != ours:
            raise UserError(f"{source}: list_action({hoi_id}) is ({verb}, {obj}), expected {ours} "
                            "(not HICO-DET's official class list)")


def image_number(file_name: str) -> int:
    """The number in a HICO file name (``HICO_train2015_00000001.jpg`` -> 1)."""
    match = re.search(r"(\d+)\D*$", file_name)
    if match is None:
        raise UserError(f"{file_name}: no image number in the file name")
    return int(match.group(1))


def ppdm_records(split: HicoBoxes, train: bool) -> list[dict]:
    """PPDM/QPIC records of one split (images without a visible pair are left out)."""
    lab = labels.hico()
    names = split.images.set_index("pos")["file_name"]
    records = []
    for pos, rows in split.pairs.groupby("pos", sort=True):
        annotations: list[dict] = []
        index: dict[tuple, int] = {}

        def box(category: int, coords: tuple) -> int:
            key = (category, *coords)
            if key not in index:
                index[key] = len(annotations)
                annotations.append({"bbox": list(coords), "category_id": category})
            return index[key]

        hois = []
        for r in rows.itertuples(index=False):
            subject = box(labels.PERSON_COCO_ID, (r.hx1, r.hy1, r.hx2, r.hy2))
            obj = box(lab.hoi_object[r.hoi_id], (r.ox1, r.oy1, r.ox2, r.oy2))
            hoi = {"subject_id": subject, "object_id": obj, "category_id": lab.hoi_verb[r.hoi_id]}
            hois.append(hoi | ({"hoi_category_id": int(r.hoi_id)} if train else {}))
        name = str(names[pos])
        head = {"file_name": name} | ({"img_id": image_number(name)} if train else {})
        records.append(head | {"annotations": annotations, "hoi_annotation": hois})
    return records


def _native(frame: pd.DataFrame) -> pd.DataFrame:
    # object columns yield plain Python ints/floats, which json can write (numpy's cannot)
    return frame.astype(object)


def convert(anno_bbox: Path) -> tuple[dict[str, list[dict]], dict[str, int]]:
    """Records per split and a summary (counts) from ``anno_bbox.mat``."""
    mat = load_mat(anno_bbox)
    check_actions(read_actions(mat, str(anno_bbox)), str(anno_bbox))
    records, summary = {}, {}
    for split in OUTPUTS:
        boxes = read_split(mat, split, str(anno_bbox))
        boxes = HicoBoxes(boxes.images, _native(boxes.pairs), boxes.invisible, boxes.malformed)
        records[split] = ppdm_records(boxes, train=split == "train")
        summary |= {
            f"{split}_images": len(boxes.images), f"{split}_records": len(records[split]),
            f"{split}_images_without_visible_pair": len(boxes.images) - len(records[split]),
            f"{split}_pairs": len(boxes.pairs), f"{split}_invisible_hois": len(boxes.invisible),
            f"{split}_malformed_hois_skipped": len(boxes.malformed),
        }
        if len(boxes.malformed):
            print(f"convert-hico: left out {len(boxes.malformed)} malformed HOI annotation(s), first: "
                  f"{boxes.malformed['reason'].iloc[0]}")
    return records, summary


def write_json_compact(obj: object, path: Path) -> Path:
    text = json.dumps(obj, separators=(",", ":"))
    return tables.atomic_write(path, lambda tmp: tmp.write_text(text))


def write_npy(array: np.ndarray, path: Path) -> Path:
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object, so np.save adds no '.npy' to the temp name
            np.save(f, array)
    return tables.atomic_write(path, save)


def write_image_labels(frame: pd.DataFrame, path: Path) -> Path:
    table = pa.Table.from_pandas(frame, schema=IMAGE_LABELS_SCHEMA, preserve_index=False)
    return tables.atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def run(anno_bbox: Path, anno: Path | None, out_dir: Path) -> dict[str, int]:
    """Command entry point: convert, write the outputs under ``out_dir``, print the summary."""
    records, summary = convert(anno_bbox)
    for split, name in OUTPUTS.items():
        write_json_compact(records[split], out_dir / name)
    write_npy(labels.hico().correspondence(), out_dir / "corre_hico.npy")
    if anno is not None:
        image_labels = read_image_labels(load_mat(anno), str(anno))
        write_image_labels(image_labels, out_dir / "image_labels.parquet")
        summary["image_labels"] = len(image_labels)
        summary["image_labels_positive"] = int((image_labels["label"] == 1).sum())
    print(f"convert-hico: {anno_bbox} -> {out_dir}")
    for key, value in summary.items():
        print(f"  {key:<40}{value:>10}")
    return summary
