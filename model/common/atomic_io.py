"""Atomic file writing: a file appears complete or not at all (a crash or a kill never leaves
a truncated file behind), for every table, checkpoint, bundle and JSON summary."""

from __future__ import annotations

import glob
import json
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp)`` on a temporary file beside ``path``, then rename it into place, so
    that a crash never leaves a truncated file behind.

    The temporary file is ``.NAME.PID-RANDOM.tmp``, created with mode 0666 minus the umask
    (so the result has the permissions of any other new file, not mkstemp's 0600); ``writer``
    writes into it by path. Temporary files of ``path`` left by a writer that was killed
    (its process is gone) are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_temporaries(path)
    tmp = _create_temporary(path)
    try:
        writer(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _create_temporary(path: Path) -> Path:
    """An empty new file ``.NAME.PID-RANDOM.tmp`` beside ``path``; the kernel applies the
    umask to mode 0666 as for any file a program creates."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise OSError(f"{path}: could not create a temporary file beside it")


def sweep_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files of ``path`` (``.NAME.PID-RANDOM.tmp``) whose writing process
    no longer runs: what a killed write left behind. Returns what was removed."""
    removed = []
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)-[0-9a-f]+\.tmp")
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        match = pattern.fullmatch(tmp.name)
        if match and not _alive(int(match.group(1))):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (ours counts: another thread may write)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def write_json(obj: object, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON atomically (metrics, summaries)."""
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))
