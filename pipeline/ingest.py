"""Stage ``ingest``: a HICO-DET or V-COCO directory (PPDM/QPIC JSON files, real or synthetic)
→ the ``images``, ``instances`` and ``pairs`` tables, plus a summary of what was read,
written and skipped, and why.

Boxes are kept exactly as the files give them (HICO-DET's are 1-based pixel indices,
ARCHITECTURE decision 8); instance ``index`` is the position in the record's ``annotations``
list, so a skipped box leaves a gap and pairs keep pointing at the right box. A pair whose
subject or object box was skipped is skipped too (reason ``box_skipped``). Every image file of a
HICO-DET split folder is listed, annotated or not (decision 9).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from model.common import labels
from pipeline import tables
from model.common.errors import UserError, quote_name
from pipeline.params import DEFAULT_PARAMS, DatasetConfig, Section, section
from pipeline.readers import checks
from pipeline.readers.images import list_images, read_sizes
from pipeline.readers.layout import SplitLayout, layouts
from pipeline.readers.annotation_json import RawSplit, read_split
from pipeline.readers.verbs import PairLabeler, labeler

Policy = Literal["fail", "skip"]
IMAGE_REASONS = ("missing", "corrupt")
PARAMS = ("dataset", "ingest")  # the params keys this stage reads (dvc.yaml lists exactly these)


class IngestConfig(Section):
    """Params section ``ingest``: what to do with each kind of bad record.

    'fail' stops with a one-line error naming the file and record; 'skip' drops the row and
    counts it in the summary; 'keep' (outside boxes only) keeps it as given and counts it.
    Structural errors (invalid JSON, wrong types, missing keys, repeated file names) always fail.
    """

    on_bad_pair: Policy = "skip"  # subject/object index out of range, subject not a person
    on_bad_box: Policy = "skip"  # non-finite or degenerate box (x2 <= x1 or y2 <= y1), too small
    on_box_outside: Literal["fail", "skip", "keep"] = "keep"  # box beyond the image + margin
    on_unknown_id: Policy = "fail"  # category, verb or HOI id the label tables do not know
    on_missing_image: Policy = "fail"  # the JSON names a file that is not in the image folder
    on_corrupt_image: Policy = "fail"  # a file whose header (or pixels) cannot be read
    box_margin_px: float = Field(1.0, ge=0)  # tolerance of the outside-image test, pixels
    min_box_size_px: float = Field(0.0, ge=0)  # boxes narrower or shorter are 'too_small'
    decode_images: bool = True  # decode every image (catches truncated pixel data), in parallel threads

    def box_policies(self) -> dict[str, str]:
        return {
            "image": "skip", "unknown_category": self.on_unknown_id, "degenerate": self.on_bad_box,
            "too_small": self.on_bad_box, "outside": self.on_box_outside,
        }

    def pair_policies(self) -> dict[str, str]:
        return {
            "image": "skip", "index_out_of_range": self.on_bad_pair, "box_skipped": "skip",
            "subject_not_person": self.on_bad_pair, "unknown_verb": self.on_unknown_id,
            "unknown_hoi": self.on_unknown_id, "hoi_mismatch": self.on_unknown_id,
        }


# the params key that decides each reason, quoted in error messages
POLICY_KEY = {
    "missing": "on_missing_image", "corrupt": "on_corrupt_image", "unknown_category": "on_unknown_id",
    "degenerate": "on_bad_box", "too_small": "on_bad_box", "outside": "on_box_outside",
    "index_out_of_range": "on_bad_pair", "subject_not_person": "on_bad_pair",
    "unknown_verb": "on_unknown_id", "unknown_hoi": "on_unknown_id", "hoi_mismatch": "on_unknown_id",
}


@dataclass(frozen=True)
class IngestResult:
    """The three tables (pipeline.tables schemas) and the flat summary (name -> count)."""

    images: pd.DataFrame
    instances: pd.DataFrame
    pairs: pd.DataFrame
    summary: dict[str, int]


def _located(source: str, row: pd.Series, what: str, reason: str) -> str:
    """The one-line error for a failing row: file, record, what is wrong, and the policy."""
    where = f"{checks.record_prefix(source, int(row['rec']), row['file_name'])}: " if row["rec"] >= 0 else ""
    return f"{where}{what} (policy ingest.{POLICY_KEY[reason]}: fail)"


def check_images(listing: pd.DataFrame, source: str, cfg: IngestConfig) -> np.ndarray:
    """Reason per listed image ('' | missing | corrupt), after applying the image policies.
    ``listing`` comes from ``list_images`` plus width, height, error."""
    reasons = np.select([~listing["exists"].to_numpy(), listing["error"].notna().to_numpy()], IMAGE_REASONS, "")

    def describe(i: int) -> str:
        row = listing.iloc[i]
        what = "not found" if reasons[i] == "missing" else f"is not a readable image ({row['error']})"
        return _located(source, row, f"image file {quote_name(row['file'])} {what}", str(reasons[i]))

    checks.enforce(reasons, {"missing": cfg.on_missing_image, "corrupt": cfg.on_corrupt_image}, describe)
    return reasons


def check_boxes(
    raw: RawSplit, rec_info: pd.DataFrame, cfg: IngestConfig
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Boxes joined with their record (file_name, width, height, image_skipped), their
    reasons, and the keep mask; raises on a failing reason."""
    frame = raw.boxes.join(rec_info, on="rec")
    valid = labels.hico().object_coco_ids
    reasons = checks.box_reasons(frame, valid, cfg.min_box_size_px, cfg.box_margin_px)

    def describe(i: int) -> str:
        row = frame.iloc[i]
        what = checks.describe_box(row, str(reasons[i]), cfg.min_box_size_px, cfg.box_margin_px)
        return _located(raw.source, row, what, str(reasons[i]))

    keep = checks.enforce(reasons, cfg.box_policies(), describe)
    return frame, reasons, keep


def check_pairs(
    raw: RawSplit, rec_info: pd.DataFrame, boxes: pd.DataFrame, box_keep: np.ndarray,
    lab: PairLabeler, cfg: IngestConfig,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Pairs joined with their boxes and labels (verb_id, hoi_id, role), their reasons and the
    keep mask; raises on a failing reason."""
    frame = checks.attach_boxes(
        raw.hois, raw.records["n_ann"].to_numpy(), boxes["category_id"].to_numpy(), box_keep, lab.allows_no_object
    ).join(rec_info, on="rec")
    ids = lab.label(*(frame[c].to_numpy() for c in ("verb", "obj_cat", "hoi", "has_hoi")))
    frame = pd.concat([frame, ids.set_index(frame.index)], axis=1)
    reasons = checks.pair_reasons(frame, ids["reason"].to_numpy())

    def describe(i: int) -> str:
        row = frame.iloc[i]
        return _located(raw.source, row, checks.describe_pair(row, str(reasons[i]), lab), str(reasons[i]))

    keep = checks.enforce(reasons, cfg.pair_policies(), describe)
    return frame, reasons, keep


def ingest_split(root: Path, layout: SplitLayout, lab: PairLabeler, cfg: IngestConfig) -> IngestResult:
    """Read one split (its annotation file and image folder) into the three tables; the
    summary keys are unprefixed here."""
    raw = read_split(root / layout.annotation)
    listing = list_images(root, layout, raw.records["file_name"].tolist())
    sizes = read_sizes(root, listing.loc[listing["exists"], "file"].tolist(), cfg.decode_images)
    listing = listing.join(sizes.set_index(listing.index[listing["exists"]]))
    image_reasons = check_images(listing, raw.source, cfg)

    in_json = listing.assign(reason=image_reasons).query("rec >= 0").set_index("rec").sort_index()
    rec_info = pd.DataFrame({
        "file_name": in_json["file_name"], "image_id": in_json["image_id"],
        "width": in_json["width"].fillna(-1), "height": in_json["height"].fillna(-1),
        "image_skipped": in_json["reason"] != "",
    })
    boxes, box_reasons, box_keep = check_boxes(raw, rec_info, cfg)
    pairs, pair_reasons, pair_keep = check_pairs(raw, rec_info, boxes, box_keep, lab, cfg)

    scene = raw.records.set_index("rec")["scene"]
    listing = listing.assign(scene=listing["rec"].map(scene).where(listing["rec"] >= 0, None))
    images = _images_table(listing[image_reasons == ""], layout.split)
    instances = _instances_table(boxes[box_keep])
    pair_table = _pairs_table(pairs[pair_keep])
    summary = {
        **_image_counts(listing, image_reasons, images),
        "records_read": len(raw.records),
        **_row_counts("instances", box_reasons, box_keep, checks.BOX_REASONS),
        "instances_outside_kept": int(np.count_nonzero((box_reasons == "outside") & box_keep)),
        "instances_duplicate": int(instances.duplicated(["image_id", "category_id", "x1", "y1", "x2", "y2"]).sum()),
        **_row_counts("pairs", pair_reasons, pair_keep, checks.PAIR_REASONS),
        "pairs_without_object": int(pair_table["object"].isna().sum()),
        "pairs_duplicate": int(pair_table.duplicated(["image_id", "subject", "object", "verb_id", "role"]).sum()),
    }
    return IngestResult(images, instances, pair_table, summary)


def _images_table(listing: pd.DataFrame, split: str) -> pd.DataFrame:
    return pd.DataFrame({
        "image_id": listing["image_id"], "split": split, "file": listing["file"],
        "width": listing["width"].astype(np.int32), "height": listing["height"].astype(np.int32),
        "annotated": listing["rec"] >= 0,
        "scene_kind": pd.array(listing["scene"].to_numpy(dtype=object), dtype="str"),
    }).sort_values("image_id", kind="stable", ignore_index=True)


def _instances_table(boxes: pd.DataFrame) -> pd.DataFrame:
    out = boxes[["image_id", "index", "category_id", "x1", "y1", "x2", "y2"]].astype({
        "index": np.int32, "category_id": np.int32,
        "x1": np.float32, "y1": np.float32, "x2": np.float32, "y2": np.float32,
    })
    return out.sort_values(["image_id", "index"], kind="stable", ignore_index=True)


def _pairs_table(pairs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({
        "image_id": pairs["image_id"],
        "subject": pairs["subject"].astype(np.int32),
        "object": pd.array(pairs["object"].where(pairs["has_object"]), dtype="Int32"),
        "verb_id": pairs["verb_id"].astype(np.int32),
        "hoi_id": pd.array(pairs["hoi_id"].where(pairs["hoi_id"] > 0), dtype="Int32"),
        # pandas' string dtype, as tables.read returns it (missing = NaN)
        "role": pd.array(pairs["role"].to_numpy(dtype=object), dtype="str"),
        "part_labels": pd.Series(pairs["part_labels"].to_numpy(dtype=object), index=pairs.index, dtype=object),
        "pos": pairs["pos"],
    })
    return out.sort_values(["image_id", "pos"], kind="stable", ignore_index=True).drop(columns="pos")


def _image_counts(listing: pd.DataFrame, reasons: np.ndarray, images: pd.DataFrame) -> dict[str, int]:
    return {
        "images_written": len(images),
        "images_annotated": int(images["annotated"].sum()),
        "images_unannotated": int((~images["annotated"]).sum()),
        "images_skipped_missing": int(np.count_nonzero(reasons == "missing")),
        "images_skipped_corrupt": int(np.count_nonzero(reasons == "corrupt")),
    }


def _row_counts(table: str, reasons: np.ndarray, keep: np.ndarray, names: tuple[str, ...]) -> dict[str, int]:
    skipped = checks.counts(np.where(keep, "", reasons), names)
    return {
        f"{table}_read": len(reasons),
        f"{table}_written": int(np.count_nonzero(keep)),
        **{f"{table}_skipped_{name}": n for name, n in skipped.items()},
    }


def ingest(dataset: DatasetConfig, cfg: IngestConfig) -> IngestResult:
    """Read every split of ``dataset`` (format and root) into the three tables, train rows
    first; summary keys are prefixed with the split (``train_pairs_written``, ...)."""
    root = Path(dataset.root)
    if not root.is_dir():
        raise UserError(f"{root}: dataset root not found (params dataset.root)")
    lab = labeler(dataset.format)
    parts: list[IngestResult] = []
    summary: dict[str, int] = {}
    for layout in layouts(dataset.format):
        if layout.split not in dataset.splits:
            continue  # e.g. a test-only dataset (dataset.splits: [test])
        part = ingest_split(root, layout, lab, cfg)
        _check_nothing_left(part, root, layout)
        _check_disjoint(parts, part, layout)
        parts.append(part)
        summary.update({f"{layout.split}_{k}": v for k, v in part.summary.items()})
    return IngestResult(
        images=pd.concat([p.images for p in parts], ignore_index=True),
        instances=pd.concat([p.instances for p in parts], ignore_index=True),
        pairs=pd.concat([p.pairs for p in parts], ignore_index=True),
        summary=summary,
    )


def _check_nothing_left(part: IngestResult, root: Path, layout: SplitLayout) -> None:
    """Skipping every image, or every annotated one, is an error, never empty tables: a
    wrong dataset.root or image folder under ``on_missing_image: skip`` looks like this."""
    s = part.summary
    folder = root / layout.default_dir
    if s["records_read"] > 0 and s["images_annotated"] == 0:
        raise UserError(f"{folder}: none of the {s['records_read']} images that {layout.annotation} names was "
                        f"ingested ({s['images_skipped_missing']} missing, {s['images_skipped_corrupt']} unreadable, "
                        "all skipped by ingest.on_missing_image / on_corrupt_image); check dataset.root and "
                        "that the images lie in this folder")
    if s["images_written"] == 0:
        raise UserError(f"{folder}: the {layout.split} split has no image ({layout.annotation} names none and "
                        "the folder holds none); check dataset.root, or leave the split out of dataset.splits")


def _check_disjoint(done: list[IngestResult], part: IngestResult, layout: SplitLayout) -> None:
    for other in done:
        both = part.images["image_id"].isin(other.images["image_id"])
        if both.any():
            row = part.images[both].iloc[0]
            raise UserError(
                f"{layout.annotation}: image id '{quote_name(row['image_id'])}' ({quote_name(row['file'])}) is also in the "
                f"{other.images['split'].iloc[0]} split; image ids must be unique across splits"
            )


def format_summary(summary: dict[str, int], splits: tuple[str, ...]) -> str:
    """A text table of the summary: one row per count, one column per split; skip and
    warning counts that are zero in every split are left out."""
    keys = list(dict.fromkeys(k.split("_", 1)[1] for k in summary))
    always = ("_read", "_written", "images_annotated", "images_unannotated")
    lines = [f"{'ingest':<34}" + "".join(f"{s:>10}" for s in splits)]
    for key in keys:
        values = [summary.get(f"{s}_{key}", 0) for s in splits]
        if any(values) or key.endswith(always):
            lines.append(f"  {key:<32}" + "".join(f"{v:>10}" for v in values))
    return "\n".join(lines)


def empty_split_warnings(summary: dict[str, int], splits: tuple[str, ...]) -> list[str]:
    """One warning per split that ends up without images, or without any annotated pair."""
    out = []
    for s in splits:
        if summary.get(f"{s}_images_written", 0) == 0:
            out.append(f"WARNING: the {s} split has no images ({summary.get(f'{s}_records_read', 0)} records "
                       f"read): {'training' if s == 'train' else 'evaluation'} on it will fail")
        elif summary.get(f"{s}_pairs_written", 0) == 0:
            out.append(f"WARNING: the {s} split has no annotated pair: nothing to "
                       f"{'train on' if s == 'train' else 'evaluate against'}")
    return out


def run(params_path: str | Path, out_dir: str | Path, report_path: str | Path) -> dict[str, int]:
    """Stage entry point: read params (dataset, ingest), ingest, write OUT/images.parquet,
    OUT/instances.parquet, OUT/pairs.parquet and the summary JSON; print the summary."""
    dataset = section("dataset", DatasetConfig, params_path, keys=PARAMS)
    cfg = section("ingest", IngestConfig, params_path, keys=PARAMS)
    result = ingest(dataset, cfg)
    out = Path(out_dir)
    for name in ("images", "instances", "pairs"):
        tables.write(getattr(result, name), name, out / f"{name}.parquet")
    tables.write_json(result.summary, report_path)
    splits = tuple(layout.split for layout in layouts(dataset.format) if layout.split in dataset.splits)
    print(f"ingest: {dataset.format} dataset at {dataset.root} -> {out}")
    print(format_summary(result.summary, splits))
    for warning in empty_split_warnings(result.summary, splits):
        print(f"ingest: {warning}", file=sys.stderr)
    return result.summary


def main() -> None:
    """The DVC stage's command (``python -m pipeline.stage ingest``): default paths."""
    run(DEFAULT_PARAMS, Path("data/processed"), Path("reports/ingest.json"))
