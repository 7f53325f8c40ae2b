"""Checks shared by the HICO-DET and V-COCO verifiers: catalog files (presence and content),
annotation JSON files, image folders (files named by the JSON) and image sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from model.common.errors import UserError
from pipeline.interop import catalog, digests
from pipeline.interop.verify_report import Report
from pipeline.readers.images import read_sizes
from pipeline.readers.layout import IMAGE_SUFFIXES, SplitLayout
from pipeline.readers.annotation_json import RawSplit, read_split

SHOW = 3  # file names quoted per problem


def examples(names: list[str]) -> str:
    more = f" and {len(names) - SHOW} more" if len(names) > SHOW else ""
    return ", ".join(names[:SHOW]) + more


def synthetic_hint(report: Report, root: Path, official: bool) -> None:
    """The synthetic dataset (``synth`` leaves a ``.synthetic`` marker) is no official release."""
    if official and (root / ".synthetic").exists():
        report.add("info", ".synthetic", "this is the built-in synthetic dataset: check it with --no-official")


def catalog_content(report: Report, root: Path, dataset: str, official: bool) -> None:
    """Content of every catalog file of ``dataset`` that is present (official data only)."""
    if not official:
        return
    for entry in catalog.for_dataset(dataset):
        path = entry.destination(root)
        if not path.is_file():
            continue
        check = digests.check_file(path, entry)
        if check.status == "mismatch":
            report.add("error", entry.path, f"content differs from the known release: {check.detail}",
                       f"replace it: python cli.py data fetch {entry.name} --root {root} --force"
                       if entry.url else f"get the original file again ({entry.source})")
        else:
            report.add("ok" if check.status == "ok" else "info", entry.path, check.detail)


def required_file(report: Report, root: Path, rel: str, fix: str) -> bool:
    """Report a missing file (error, with ``fix``); True when it exists."""
    if (root / rel).is_file():
        return True
    report.add("error", rel, "missing", fix)
    return False


def annotation(report: Report, root: Path, rel: str) -> RawSplit | None:
    """Parse one PPDM/QPIC JSON file with ingest's reader; a structural problem is an error."""
    try:
        return read_split(root / rel)
    except UserError as exc:
        report.add("error", rel, f"unreadable: {exc}",
                   "rebuild the file (see `data convert-hico` / `data build-vcoco`)")
        return None


def count(report: Report, subject: str, what: str, found: int, expected: int, official: bool,
          level: str = "error", fix: str = "") -> None:
    """Compare a count with the official figure (skipped for non-official data)."""
    if not official:
        report.add("info", subject, f"{found:,} {what}")
    elif found == expected:
        report.add("ok", subject, f"{found:,} {what}, as in the official release")
    else:
        report.add(level, subject, f"{found:,} {what}, the official release has {expected:,}", fix)


def folder_files(root: Path, folder: str) -> set[str] | None:
    path = root / folder
    if not path.is_dir():
        return None
    return {p.name for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}


def named_images(report: Report, root: Path, layout: SplitLayout, names: list[str], fix: str) -> list[str]:
    """Every image a split's JSON names must exist; returns the paths (relative) that do."""
    folders: dict[str, set[str] | None] = {}
    present, missing = [], []
    for name in names:
        folder = layout.image_dir(name)
        if folder not in folders:
            folders[folder] = folder_files(root, folder)
            if folders[folder] is None:
                report.add("error", folder, "image folder missing", fix)
        files = folders[folder]
        if files is not None:
            (present if name in files else missing).append(f"{folder}/{name}")
    if missing:
        report.add("error", layout.annotation, f"{len(missing):,} of {len(names):,} images it names are missing "
                   f"({examples(missing)})", fix)
    elif names and all(v is not None for v in folders.values()):
        report.add("ok", layout.annotation, f"all {len(names):,} images it names are present")
    return present


def sample(files: list[str], n: int, seed: int = 0) -> list[str]:
    """``n`` files drawn without replacement (all when n is 0 or larger than the list)."""
    if n <= 0 or n >= len(files):
        return sorted(files)
    rng = np.random.default_rng(seed)
    return sorted(np.asarray(sorted(files), dtype=object)[rng.choice(len(files), n, replace=False)].tolist())


def image_sizes(root: Path, files: list[str], decode: bool) -> pd.DataFrame:
    """file, width, height (-1 when unreadable), error."""
    sizes = read_sizes(root, files, decode)
    sizes.insert(0, "file", files)
    return sizes


def report_unreadable(report: Report, subject: str, sizes: pd.DataFrame) -> None:
    """Images of ``sizes`` (from :func:`image_sizes`) whose header could not be read: ingest
    stops on them (or skips them under ``on_corrupt_image: skip``)."""
    bad = sizes[sizes["error"].notna()]
    if len(bad):
        report.add("error", subject, f"{len(bad)} unreadable image(s) ({examples(bad['file'].tolist())}): "
                   f"{bad['error'].iloc[0]}", "download or extract those images again")


END_MARKERS = {".jpg": b"\xff\xd9", ".jpeg": b"\xff\xd9", ".png": b"IEND"}
TAIL_BYTES = 64  # an end marker may be followed by a little padding


def empty_or_truncated(report: Report, root: Path, subject: str, files: list[str]) -> None:
    """Every listed file (not only the sample): zero bytes, or no end-of-image marker near its
    end (JPEG FFD9, PNG IEND) confirmed by decoding it: what a broken download or an
    interrupted extraction leaves. Costs one stat and one 64-byte read per file."""
    empty, suspect = [], []
    for rel in files:
        path = root / rel
        try:
            size = path.stat().st_size
            marker = END_MARKERS.get(path.suffix.lower())
            if size == 0:
                empty.append(rel)
            elif marker is not None:
                with open(path, "rb") as f:
                    f.seek(max(size - TAIL_BYTES, 0))
                    if marker not in f.read():
                        suspect.append(rel)
        except OSError:
            empty.append(rel)
    if empty:
        report.add("error", subject, f"{len(empty)} empty (zero-byte) image file(s) ({examples(empty)})",
                   "download or extract those images again")
    decoded = read_sizes(root, suspect, decode=True)
    truncated = [f for f, e in zip(suspect, decoded["error"]) if e is not None]
    if truncated:
        report.add("error", subject, f"{len(truncated)} truncated image file(s) ({examples(truncated)}): "
                   f"{decoded['error'].dropna().iloc[0]}", "download or extract those images again")
    if files and not empty and not truncated:
        report.add("ok", subject, f"none of the {len(files):,} images is empty or truncated")


def shared_ids(report: Report, ids: dict[str, set[str]], fix: str) -> None:
    """Image ids (file stems) in more than one split: ingest refuses them."""
    splits = list(ids)  # in the order the splits were checked (train first)
    for i, a in enumerate(splits):
        for b in splits[i + 1:]:
            both = sorted(ids[a] & ids[b])
            if both:
                report.add("error", f"{a}/{b}", f"{len(both):,} image id(s) in both splits ({examples(both)}); "
                           "ingest refuses them", fix)


def report_sizes(report: Report, subject: str, sizes: pd.DataFrame, expected: pd.DataFrame, source: str) -> None:
    """Compare header sizes with ``expected`` (file, width, height) from ``source``."""
    both = sizes[sizes["error"].isna()].merge(expected, on="file", suffixes=("", "_expected"))
    wrong = both[(both["width"] != both["width_expected"]) | (both["height"] != both["height_expected"])]
    if len(wrong):
        first = wrong.iloc[0]
        report.add("error", subject, f"{len(wrong)} of {len(both)} checked images differ in size from {source} "
                   f"(e.g. {first['file']}: {first['width']}x{first['height']}, expected "
                   f"{first['width_expected']}x{first['height_expected']})",
                   "these are not the original images (resized or re-encoded?): get the original release")
    elif len(both):
        report.add("ok", subject, f"{len(both)} checked image(s) have the sizes {source} gives")
