"""Resumable, shardable results: persons written in small parquet shards as they are computed.

Each shard is a ``persons`` table whose file metadata lists every image it covers (images with
no person included) and the fingerprint of the settings that produced it. Writes are atomic, so
a run killed at any point leaves only whole shards; a rerun skips every image already covered by
a shard of the same fingerprint. Shards of other settings live in sibling folders and are
ignored (and removed once a merge with the current settings succeeds).

Several processes (``torchrun`` ranks) may write into the same store: each covers its own images
and names shards by the position of their first image, so names never collide.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import tables

_META_KEY = b"bpm.shard"


def fingerprint(settings: dict) -> str:
    """Short stable hash of the settings that determine a shard's content."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


class ShardStore:
    """Shards of one fingerprint under ``root/<fingerprint>/``."""

    def __init__(self, root: Path, settings: dict) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint(settings)
        self.dir = self.root / self.fingerprint
        self.settings = settings

    def covered(self) -> dict[Path, list[str]]:
        """{shard file: image_ids it covers} for every readable shard of this fingerprint.

        Unreadable files (not written by this code; ours are atomic) are skipped, so their
        images are computed again.
        """
        out = {}
        for path in sorted(self.dir.glob("shard-*.parquet")):
            try:
                meta = pq.read_schema(path).metadata or {}
                out[path] = json.loads(meta[_META_KEY])["images"]
            except (OSError, KeyError, ValueError, pa.ArrowInvalid):
                continue
        return out

    def done(self) -> set[str]:
        """Every image_id covered by a readable shard."""
        return {i for ids in self.covered().values() for i in ids}

    def write(self, position: int, persons: pd.DataFrame, image_ids: list[str]) -> Path:
        """Atomically write the persons of ``image_ids`` (whose first is at ``position``)."""
        table = tables.to_arrow(persons, "persons")
        meta = {**(table.schema.metadata or {}),
                _META_KEY: json.dumps({"images": image_ids, "settings": self.settings}, default=str).encode()}
        table = table.replace_schema_metadata(meta)
        path = self.dir / f"shard-{position:09d}.parquet"
        return tables.write_parquet(table, path)

    def merge(self, image_order: pd.Series) -> pd.DataFrame:
        """All shards' persons as one table ordered by ``image_order`` ({image_id: position})
        then person; an image covered twice keeps its first shard's rows."""
        frames, seen = [], set()
        for path, ids in self.covered().items():
            new = set(ids) - seen
            seen |= new
            df = tables.read(path, "persons")
            frames.append(df[df["image_id"].isin(new)])
        if not frames:
            return tables.empty("persons")
        df = pd.concat(frames, ignore_index=True)
        key = image_order.reindex(df["image_id"]).to_numpy()
        order = pd.DataFrame({"k": key, "p": df["person"].to_numpy()}).sort_values(["k", "p"], kind="stable").index
        return df.loc[order].reset_index(drop=True)

    def remove_stale(self) -> list[Path]:
        """Delete shard folders of other fingerprints; returns what was removed."""
        stale = [p for p in self.root.iterdir() if p.is_dir() and p.name != self.fingerprint] if self.root.exists() else []
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
        return stale
