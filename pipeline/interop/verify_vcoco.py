"""``data verify v-coco``: a V-COCO folder as the pipeline and the official evaluation read it:
QPIC files under ``annotations/``, the official ``data/vcoco/*.json``, ``data/splits/*.ids`` and
``data/instances_vcoco_all_2014.json``, COCO 2014 images under ``images/{train2014,val2014}``.

Official figures: 4,946 test images (``vcoco_test.ids``), 5,400 trainval images (2,533 train +
2,867 val).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from model.common import labels
from model.common.errors import UserError
from pipeline.interop import verify_common as vc
from pipeline.interop.vcoco_official import load_actions, read_ids, read_json
from pipeline.interop.verify_report import Report
from pipeline.readers.layout import layouts

TEST_IDS = 4_946
RECORDS = {"train": (5_400, "warning"), "test": (TEST_IDS, "warning")}
INSTANCES = "data/instances_vcoco_all_2014.json"
IMAGES_FIX = ("put the COCO 2014 images in images/train2014 and images/val2014 (links work): python cli.py "
              "data fetch coco_train2014.zip coco_val2014.zip --root {root}")


def _fetch_fix(root: Path, *names: str) -> str:
    return f"python cli.py data fetch {' '.join(names)} --root {root}"


def _build_fix(root: Path) -> str:
    return f"python cli.py data build-vcoco {root} (needs the COCO 2014 annotations; see README)"


def _official_eval_files(report: Report, root: Path, official: bool) -> pd.DataFrame | None:
    """vcoco_test.json vs vcoco_test.ids (what vsrl_eval asserts) and the instances file;
    returns the instances' image sizes (file, width, height) when readable."""
    ok = vc.required_file(report, root, "data/vcoco/vcoco_test.json", _fetch_fix(root, "vcoco_test.json"))
    ok &= vc.required_file(report, root, "data/splits/vcoco_test.ids", _fetch_fix(root, "vcoco_test.ids"))
    if ok:
        try:
            ids = read_ids(root / "data/splits/vcoco_test.ids")
            actions = load_actions(root / "data/vcoco/vcoco_test.json")
        except UserError as exc:
            report.add("error", "data/vcoco", str(exc),
                       _fetch_fix(root, "vcoco_test.json", "vcoco_test.ids", "--force"))
        else:
            vc.count(report, "data/splits/vcoco_test.ids", "test image ids", len(ids), TEST_IDS, official)
            if not np.array_equal(np.unique(actions[0].image_id), np.sort(ids)):
                report.add("error", "data/vcoco/vcoco_test.json", "its image ids differ from vcoco_test.ids "
                           "(the official evaluator asserts they are equal)",
                           _fetch_fix(root, "vcoco_test.json", "vcoco_test.ids", "--force"))
            else:
                report.add("ok", "data/vcoco/vcoco_test.json", "image ids match vcoco_test.ids (the evaluator "
                           "asserts it)")
    if not vc.required_file(report, root, INSTANCES, _build_fix(root)):
        return None
    try:
        instances = read_json(root / INSTANCES)
        images = pd.DataFrame(instances["images"])[["file_name", "width", "height"]]
    except (UserError, KeyError, TypeError) as exc:
        report.add("error", INSTANCES, f"not a COCO instances file ({exc})", _build_fix(root))
        return None
    report.add("info", INSTANCES, f"{len(images):,} images, {len(instances.get('annotations', [])):,} annotations")
    folder = np.where(images["file_name"].str.contains("train2014"), "images/train2014", "images/val2014")
    return pd.DataFrame({"file": folder + "/" + images["file_name"], "width": images["width"],
                         "height": images["height"]})


def _corre(report: Report, root: Path) -> None:
    rel = "annotations/corre_vcoco.npy"
    if not vc.required_file(report, root, rel, _build_fix(root)):
        return
    try:
        shape = np.load(root / rel).shape
    except (OSError, ValueError) as exc:
        report.add("error", rel, f"unreadable ({exc})", _build_fix(root))
        return
    expected = (len(labels.vcoco().verb_roles), 80)
    if shape != expected:
        report.add("error", rel, f"shape {shape}, expected {expected} (verb-roles x objects)", _build_fix(root))
    else:
        report.add("ok", rel, f"shape {shape}")


def verify(root: Path, sample: int = 200, official: bool = True, decode: bool = False) -> Report:
    """All V-COCO checks; ``sample`` images per split get their headers read (0 = all)."""
    report = Report()
    if not root.is_dir():
        report.add("error", str(root), "folder not found", "pass the V-COCO folder (e.g. data/raw/v-coco)")
        return report
    vc.synthetic_hint(report, root, official)
    sizes = _official_eval_files(report, root, official)
    ids: dict[str, set[str]] = {}
    for layout in layouts("v-coco"):
        if not vc.required_file(report, root, layout.annotation, _build_fix(root)):
            continue
        raw = vc.annotation(report, root, layout.annotation)
        if raw is None:
            continue
        expected, level = RECORDS[layout.split]
        vc.count(report, layout.annotation, "image records", len(raw.records), expected, official, level,
                 _build_fix(root))
        names = raw.records["file_name"].tolist()
        ids[layout.split] = {Path(n).stem for n in names}
        present = vc.named_images(report, root, layout, names, IMAGES_FIX.format(root=root))
        vc.empty_or_truncated(report, root, layout.split, present)
        checked = vc.image_sizes(root, vc.sample(present, sample), decode)
        vc.report_unreadable(report, layout.split, checked)
        if sizes is not None:
            vc.report_sizes(report, layout.split, checked, sizes, INSTANCES)
    vc.shared_ids(report, ids, "each image belongs to one split: rebuild the files (data build-vcoco)")
    _corre(report, root)
    vc.catalog_content(report, root, "v-coco", official)
    return report
