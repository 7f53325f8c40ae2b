"""The table of known files (``data/labels/checksums.json``): where each file goes, where it can
be downloaded, and what is known about its content (SHA-256, Git blob id, size).

A value that is not known is ``None``; nothing here is ever guessed (the JSON's ``source`` field
says where each value comes from).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from model.common.errors import UserError
from pipeline.inputs.json_reader import read_json
from model.common.labels import LABELS_DIR

CATALOG_PATH = LABELS_DIR / "checksums.json"
PROJECT_ROOT = LABELS_DIR.parents[1]


@dataclass(frozen=True)
class Entry:
    """One known file. ``base`` is 'dataset' (``path`` relative to the dataset root) or
    'project' (relative to the repository root); ``url`` None = no stable public source."""

    name: str
    dataset: str  # hico-det | v-coco | models
    base: str
    path: str
    url: str | None
    sha256: str | None
    git_blob_sha1: str | None
    sha256_prefix: str | None
    bytes: int | None
    required: bool
    extract: tuple[str, ...]  # zip members to unpack after download ('*' = all)
    extract_to: str | None  # folder (relative to the same base) to unpack into
    source: str

    def destination(self, root: Path | None) -> Path:
        """Where the file lies: under ``root`` (the dataset root) or the project root."""
        if self.base == "project":
            return PROJECT_ROOT / self.path
        if root is None:
            raise UserError(f"{self.name}: a dataset root is needed (--root)")
        return Path(root) / self.path

    def has_known_content(self) -> bool:
        return any(v is not None for v in (self.sha256, self.git_blob_sha1, self.sha256_prefix, self.bytes))


def _entry(raw: dict) -> Entry:
    return Entry(
        name=raw["name"], dataset=raw["dataset"], base=raw.get("base", "dataset"), path=raw["path"],
        url=raw.get("url"), sha256=raw.get("sha256"), git_blob_sha1=raw.get("git_blob_sha1"),
        sha256_prefix=raw.get("sha256_prefix"), bytes=raw.get("bytes"), required=bool(raw.get("required", False)),
        extract=tuple(raw.get("extract", ())), extract_to=raw.get("extract_to"), source=raw.get("source", ""),
    )


@cache
def entries(path: Path = CATALOG_PATH) -> tuple[Entry, ...]:
    """Every entry of the catalog file, in file order."""
    try:
        raw = read_json(path, "file catalog")
        return tuple(_entry(e) for e in raw["files"])  # type: ignore[index]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: cannot read the file catalog ({exc})") from None


def for_dataset(dataset: str, path: Path = CATALOG_PATH) -> tuple[Entry, ...]:
    """The entries of one dataset ('hico-det', 'v-coco' or 'models')."""
    return tuple(e for e in entries(path) if e.dataset == dataset)


def find(name: str, path: Path = CATALOG_PATH) -> Entry:
    """The entry called ``name``; a UserError lists the known names otherwise."""
    for e in entries(path):
        if e.name == name:
            return e
    known = ", ".join(e.name for e in entries(path))
    raise UserError(f"unknown file '{name}' (known: {known})")
