"""A log file per run, like detectron2's and mmdet's work-dir logs: the command, every table
read (rows), every file written under the run's outputs (size), the skip / drop counts of the
run's report, the outcome, each line with its time and the seconds since the start.

One helper for every stage: the CLI wraps each command in :func:`run_log`; table reads are
recorded as they happen (:func:`note_read`, called by :func:`pipeline.tables.read_arrow`),
written files are listed at the end (files under the declared outputs modified during the run),
so the stages themselves need no logging code. The log is written as the run goes (a crashed
run keeps its log up to the failure); a new run of the same command replaces it.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TextIO

_current: RunLog | None = None


class RunLog:
    """The open log of the current run; lines ``HH:MM:SS.mmm +SECONDS  message``."""

    def __init__(self, stream: TextIO, start: float) -> None:
        self.stream, self.start = stream, start

    def line(self, message: str) -> None:
        now = time.time()
        stamp = datetime.fromtimestamp(now).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        self.stream.write(f"{stamp} +{now - self.start:8.2f}s  {message}\n")
        self.stream.flush()


def note_read(path: Path | str, rows: int, what: str) -> None:
    """Record that ``path`` was read (``rows`` rows of table ``what``) when a run log is open."""
    if _current is not None:
        _current.line(f"read {path} ({rows:,} rows, table {what})")


def note(message: str) -> None:
    """A free line in the open run log (nothing when none is open)."""
    if _current is not None:
        _current.line(message)


def written_since(outputs: Sequence[Path], start: float, log: Path) -> list[tuple[Path, int]]:
    """Files under ``outputs`` (files or folders) modified at or after ``start`` (epoch s),
    with their sizes in bytes; the log itself excluded."""
    found = []
    for out in outputs:
        files = [out] if out.is_file() else sorted(p for p in out.rglob("*") if p.is_file()) if out.is_dir() else []
        found += [(p, p.stat().st_size) for p in files if p.stat().st_mtime >= start - 1 and p != log]
    return found


def skip_counts(report: Path) -> dict[str, int]:
    """The counts of a run's JSON report whose key says skipped, dropped, unmatched or
    unreadable (flattened as a/b/c), non-zero ones only."""
    try:
        doc = json.loads(report.read_text())
    except (OSError, ValueError):
        return {}
    found: dict[str, int] = {}

    def walk(obj: object, prefix: str) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{prefix}/{k}" if prefix else str(k))
        elif isinstance(obj, int) and not isinstance(obj, bool) and obj and any(
                w in prefix.lower() for w in ("skip", "drop", "unmatched", "unreadable", "no_person")):
            found[prefix] = obj

    walk(doc, "")
    return found


@contextmanager
def run_log(log: Path, outputs: Sequence[Path] = (), report: Path | None = None,
            command: str | None = None) -> Iterator[RunLog]:
    """Log the run of the enclosed block to ``log``: ``command`` (default: the process's command
    line) at the start, reads as they
    happen, then the files written under ``outputs``, the skip counts of ``report`` and the
    outcome (done / failed: the error's first line) with the elapsed seconds."""
    global _current
    start = time.time()
    rank = int(os.environ.get("RANK", "0"))
    if rank:  # torchrun: one log per process, rank 0's under the plain name
        log = log.with_name(f"{log.stem}.rank{rank}{log.suffix}")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as stream:
        current = RunLog(stream, start)
        outer, _current = _current, current
        current.line("command: " + (command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])))
        try:
            yield current
        except BaseException as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            current.line(f"failed after {time.time() - start:.2f} s: {type(exc).__name__}: {first}")
            raise
        else:
            for path, size in written_since([Path(o) for o in outputs], start, log):
                current.line(f"wrote {path} ({size:,} bytes)")
            for key, n in (skip_counts(report) if report else {}).items():
                current.line(f"skipped/dropped: {key} = {n:,}")
            current.line(f"done in {time.time() - start:.2f} s")
        finally:
            _current = outer
