"""The one reader of torch files (checkpoints, bundles, backbone and DETR weights, AlphaPose
weights): ``torch.load(weights_only=True)`` behind one error contract.

Every failure is a one-line :class:`CheckpointError` naming the file and saying which of these
it is: not found, a directory, empty (0 bytes), not a torch file (wrong leading bytes),
corrupt or truncated (torch's zip reader fails), or refused because it holds objects other than
tensors and plain data (a pickle that would run code: nothing in it was executed). Torch's own
multi-line message never reaches the user whole: its first line is quoted, escaped.

The file is checked before torch sees it: an empty file makes ``torch.load`` raise ``EOFError``,
which click turns into a bare "Aborted." with no file named. A zip-format file must also pass
its CRC-32 checks (Python's ``zipfile``; torch's reader does not check them, so a flipped byte
could otherwise change a key or a weight silently) and hold only stored, uncompressed entries,
as ``torch.save`` writes them (no decompression bomb can reach the check). The check reads the
file once more (about 0.2 s for 200 MB).
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path

import torch

from model.common.errors import UserError, one_line, quote_name

_DOS_DIRECTORY = 0x10  # the MS-DOS directory bit of a zip entry's external attributes
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
    if head.startswith(ZIP_MAGIC):
        _check_zip(path, what)


def _check_zip(path: Path, what: str) -> None:
    """Every entry stored (not compressed) and matching its CRC-32."""
    try:
        with zipfile.ZipFile(path) as archive:
            packed = [i.filename for i in archive.infolist() if i.compress_type != zipfile.ZIP_STORED]
            if packed:
                raise CheckpointError(f"{path}: {what} is not a torch.save file: entry {quote_name(packed[0])} "
                                      "is compressed")
            dirs = [i.filename for i in archive.infolist() if i.external_attr & _DOS_DIRECTORY or i.is_dir()]
            if dirs:  # torch's reader would return no bytes for it: uninitialised weights
                raise CheckpointError(f"{path}: {what} is corrupt: entry {quote_name(dirs[0])} is marked as a "
                                      "directory")
            bad = archive.testzip()
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile raises BadZipFile, ValueError, struct.error ...
        raise CheckpointError(f"{path}: {what} is corrupt or truncated (not a readable zip archive: "
                              f"{_first_line(exc)})") from None
    if bad is not None:
        raise CheckpointError(f"{path}: {what} is corrupt: entry {quote_name(bad)} fails its CRC-32 check "
                              "(or it was written with torch.serialization.config.save.compute_crc32=False)")


def _first_line(exc: BaseException, limit: int = 200) -> str:
    lines = str(exc).strip().splitlines()
    text = one_line(lines[0]) if lines else ""
    return text if len(text) <= limit else text[:limit] + "..."
