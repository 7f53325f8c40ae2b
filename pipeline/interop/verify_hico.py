"""``data verify hico-det``: a HICO-DET folder as the pipeline reads it (PPDM/QPIC files under
``annotations/``, images under ``images/{train2015,test2015}``), against the official release.

Official figures: 38,118 train and 9,658 test images; PPDM's ``test_hico.json`` lists the 9,546
test images with a visible HOI pair, ``trainval_hico.json`` 37,633 train images (this last
figure is reported by users of the file, hence only a warning when it differs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from model.common import labels
from model.common.errors import UserError
from pipeline.interop import verify_common as vc
from pipeline.interop.hico_mat import load_mat, read_split
from pipeline.interop.verify_report import Report
from pipeline.readers.layout import layouts
from pipeline.readers.annotation_json import RawSplit

IMAGES = {"train": 38_118, "test": 9_658}
RECORDS = {"train": (37_633, "warning"), "test": (9_546, "error")}
TARBALL = "get hico_20160224_det.tar.gz (see `python cli.py data fetch --list`) and unpack it here"


def _convert_fix(root: Path) -> str:
    if (root / "anno_bbox.mat").is_file():
        return f"python cli.py data convert-hico {root}"
    return f"{TARBALL}, then run python cli.py data convert-hico {root}"


def _official_files(report: Report, root: Path) -> None:
    for name, use in (("anno_bbox.mat", "can rebuild the annotation JSON (data convert-hico)"),
                      ("anno.mat", "gives the image-level labels of the Known Object setting")):
        if (root / name).is_file():
            report.add("ok", name, f"present: {use}")
        elif name == "anno.mat":
            report.add("warning", name, "missing: Known Object falls back to the box-based approximation",
                       f"copy anno.mat from hico_20160224_det.tar.gz into {root}, then run "
                       f"python cli.py data convert-hico {root}")
    if (root / "annotations/image_labels.parquet").is_file():
        report.add("ok", "annotations/image_labels.parquet", "image-level labels present (Known Object)")


def _corre(report: Report, root: Path) -> None:
    rel = "annotations/corre_hico.npy"
    if not vc.required_file(report, root, rel, _convert_fix(root)):
        return
    try:
        corre = np.load(root / rel)
    except (OSError, ValueError) as exc:
        report.add("error", rel, f"unreadable ({exc})", _convert_fix(root))
        return
    if corre.shape != (117, 80) or not np.array_equal(corre != 0, labels.hico().correspondence() != 0):
        report.add("error", rel, f"not HICO-DET's verb-object matrix (shape {corre.shape})", _convert_fix(root))
    else:
        report.add("ok", rel, "the 600 verb-object classes of data/labels/hicodet.json")


def _mat_sizes(report: Report, root: Path) -> pd.DataFrame | None:
    """file, width, height of every image in anno_bbox.mat (None when absent or unreadable)."""
    if not (root / "anno_bbox.mat").is_file():
        return None
    try:
        mat = load_mat(root / "anno_bbox.mat")
        frames = [read_split(mat, s, "anno_bbox.mat").images.assign(split=s) for s in ("train", "test")]
    except UserError as exc:
        report.add("error", "anno_bbox.mat", str(exc), TARBALL)
        return None
    sizes = pd.concat(frames, ignore_index=True)
    sizes["file"] = "images/" + sizes["split"] + "2015/" + sizes["file_name"]
    return sizes[["file", "width", "height"]]


def _box_bounds(report: Report, rel: str, raw: RawSplit, sizes: pd.DataFrame, folder: str) -> None:
    """Boxes of the checked images must lie in the image (1-based pixel indices: x2 <= width)."""
    if raw.boxes.empty or sizes.empty:
        return
    boxes = raw.boxes.merge(raw.records[["rec", "file_name"]], on="rec")
    boxes["file"] = folder + "/" + boxes["file_name"]
    joined = boxes.merge(sizes[sizes["error"].isna()], on="file")
    outside = joined[(joined["x2"] > joined["width"] + 1) | (joined["y2"] > joined["height"] + 1)
                     | (joined["x1"] < 0) | (joined["y1"] < 0)]
    if len(outside):
        report.add("warning", rel, f"{len(outside)} box(es) of the checked images lie outside their image by more "
                   f"than 1 px (e.g. {outside['file'].iloc[0]})", "check that the images match the annotations")
    elif len(joined):
        report.add("ok", rel, f"the {len(joined)} boxes of the checked images lie inside their images")


def verify(root: Path, sample: int = 200, official: bool = True, decode: bool = False) -> Report:
    """All HICO-DET checks; ``sample`` images per split get their headers read (0 = all)."""
    report = Report()
    if not root.is_dir():
        report.add("error", str(root), "folder not found", "pass the folder that holds images/ and annotations/ "
                   "(e.g. data/raw/hico_20160224_det)")
        return report
    vc.synthetic_hint(report, root, official)
    _official_files(report, root)
    mat_sizes = _mat_sizes(report, root)
    ids: dict[str, set[str]] = {}
    for layout in layouts("hico-det"):
        split = layout.split
        files = vc.folder_files(root, layout.default_dir)
        if files is not None:
            vc.count(report, layout.default_dir, "image files", len(files), IMAGES[split], official,
                     fix=f"{TARBALL} (a partial copy gives different numbers)")
            ids[split] = {Path(f).stem for f in files}
        if not vc.required_file(report, root, layout.annotation, _convert_fix(root)):
            continue
        raw = vc.annotation(report, root, layout.annotation)
        if raw is None:
            continue
        if raw.records.empty:
            report.add("error", layout.annotation, "lists no image record", _convert_fix(root))
            continue
        expected, level = RECORDS[split]
        vc.count(report, layout.annotation, "image records", len(raw.records), expected, official, level,
                 _convert_fix(root))
        names = raw.records["file_name"].tolist()
        ids[split] = ids.get(split, set()) | {Path(n).stem for n in names}
        present = vc.named_images(report, root, layout, names, f"{TARBALL} (images/{split}2015)")
        vc.empty_or_truncated(report, root, layout.default_dir, present)
        if files is not None:
            report.add("info", layout.default_dir, f"{len(files - set(names)):,} image files without annotation "
                       "(listed by ingest, scored as in the official evaluation)")
        checked = vc.image_sizes(root, vc.sample(present, sample), decode)
        vc.report_unreadable(report, layout.default_dir, checked)
        if mat_sizes is not None:
            vc.report_sizes(report, layout.default_dir, checked, mat_sizes, "anno_bbox.mat")
        _box_bounds(report, layout.annotation, raw, checked, layout.default_dir)
    vc.shared_ids(report, ids, "each image belongs to one split: remove it from the other split's folder and annotation file")
    _corre(report, root)
    vc.catalog_content(report, root, "hico-det", official)
    return report
