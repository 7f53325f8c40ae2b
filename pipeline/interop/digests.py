"""File fingerprints and their comparison with what the catalog knows: SHA-256, Git's blob id
(SHA-1 of ``b"blob <size>\\0" + content``, what a repository tree lists) and the size."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pipeline.interop.catalog import Entry

CHUNK = 1 << 20  # bytes read at a time
# files the catalog knows nothing about are still hashed (the hash is printed, for the record)
# unless larger than this: reading the 13 GB COCO image zip is not worth it
HASH_UNKNOWN_BELOW = 1 << 30


@dataclass(frozen=True)
class Digest:
    """What a file is: size in bytes, SHA-256 hex and Git blob id hex."""

    size: int
    sha256: str
    git_blob_sha1: str


@dataclass(frozen=True)
class ContentCheck:
    """Outcome of comparing a file with its catalog entry.

    status: 'ok' (every known value matches), 'mismatch' (one differs; ``detail`` says which),
    'unknown' (the catalog knows nothing about the content: not checked).
    """

    status: str
    detail: str
    digest: Digest


def digest(path: Path) -> Digest:
    """Fingerprint ``path`` in one streaming pass."""
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha256.update(chunk)
            blob.update(chunk)
    return Digest(size, sha256.hexdigest(), blob.hexdigest())


def compare(d: Digest, entry: Entry) -> ContentCheck:
    """Compare a digest with every value ``entry`` knows, the strongest first."""
    known = [
        ("SHA-256", entry.sha256, d.sha256),
        ("Git blob id", entry.git_blob_sha1, d.git_blob_sha1),
        ("size", None if entry.bytes is None else str(entry.bytes), str(d.size)),
    ]
    for label, expected, actual in known:
        if expected is not None and expected.lower() != actual:
            return ContentCheck("mismatch", f"{label} {actual}, expected {expected}", d)
    if entry.sha256_prefix is not None and not d.sha256.startswith(entry.sha256_prefix.lower()):
        return ContentCheck("mismatch", f"SHA-256 {d.sha256} does not start with {entry.sha256_prefix}", d)
    if not entry.has_known_content():
        return ContentCheck("unknown", f"sha256 unknown, not checked (this file: {d.sha256})", d)
    checked = [label for label, expected, _ in known if expected is not None]
    checked += ["SHA-256 prefix"] if entry.sha256_prefix else []
    return ContentCheck("ok", f"{', '.join(checked)} match", d)


def check_file(path: Path, entry: Entry) -> ContentCheck:
    """Fingerprint ``path`` and compare it with ``entry``."""
    size = path.stat().st_size
    if not entry.has_known_content() and size >= HASH_UNKNOWN_BELOW:
        return ContentCheck("unknown", "sha256 unknown, not checked", Digest(size, "", ""))
    return compare(digest(path), entry)
