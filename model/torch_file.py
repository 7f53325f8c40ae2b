"""The one reader of torch files (checkpoints, bundles, backbone and DETR weights, AlphaPose
weights): ``torch.load(weights_only=True)`` behind one error contract.

Every failure is a one-line :class:`CheckpointError` naming the file and saying which of these
it is: not found, a directory, empty (0 bytes), not a torch file (wrong leading bytes),
corrupt or truncated (torch's zip reader fails), or refused because it holds objects other than
tensors and plain data (a pickle that would run code: nothing in it was executed). Torch's own
multi-line message never reaches the user whole: its first line is quoted, escaped.

The file is checked before torch sees it: an empty file makes ``torch.load`` raise ``EOFError``,
which click turns into a bare "Aborted." with no file named.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import torch

from pipeline.errors import UserError, one_line

ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format since torch 1.6
LEGACY_MAGIC = b"\x80"  # the legacy format starts with a pickle protocol opcode


class CheckpointError(UserError):
    """A checkpoint (or other torch file) that is missing, unreadable or of another kind."""


def read_torch_file(path: str | Path, what: str = "checkpoint", map_location: str | torch.device = "cpu",
                    safe_globals: Sequence[type] = ()) -> object:
    """``torch.load(path, weights_only=True)`` or a one-line :class:`CheckpointError`.

    ``what`` names the file's role in messages ("bundle", "backbone weights"); ``safe_globals``
    are extra classes the file may hold (DETR's argparse Namespace)."""
    path = Path(path)
    _check_file(path, what)
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path}: {what} refused: it holds objects other than tensors and plain data "
                              f"(malformed or malicious; nothing in it was executed): {_first_line(exc)}") from None
    except MemoryError:
        raise CheckpointError(f"{path}: {what} is corrupt (it asks for more memory than there is)") from None
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, EOFError, KeyError ... for bad bytes
        raise CheckpointError(f"{path}: {what} is corrupt or truncated ({type(exc).__name__}: "
                              f"{_first_line(exc)})") from None


def _check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise CheckpointError(f"{path}: {what} not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: {what} is a directory or not a regular file")
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read {what} ({exc.strerror})") from None
    if not head:
        raise CheckpointError(f"{path}: {what} is empty (0 bytes): an interrupted download or copy?")
    if not (head.startswith(ZIP_MAGIC) or head.startswith(LEGACY_MAGIC)):
        raise CheckpointError(f"{path}: not a {what}: not a file written by torch.save (leading bytes {head!r})")


def _first_line(exc: BaseException, limit: int = 200) -> str:
    lines = str(exc).strip().splitlines()
    text = one_line(lines[0]) if lines else ""
    return text if len(text) <= limit else text[:limit] + "..."
