"""The one way user JSON files are read (annotations, pose results, imported predictions,
catalogs, metrics): every failure is a :class:`~model.common.errors.UserError` of one line naming
the file.

Failures covered: missing file, a directory or other non-file, unreadable file, not UTF-8,
invalid JSON (with line and column), nesting too deep for the parser (RecursionError: a
``[[[[...`` bomb) and a file too large for memory.
"""

from __future__ import annotations

import json
from pathlib import Path

from model.common.errors import UserError


def read_json(path: str | Path, what: str = "JSON file", hint: str = "") -> object:
    """Parse the JSON file at ``path``. ``what`` names its role in messages ("pose result file");
    ``hint`` is appended to the not-found message (where to look)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: {what} not found{'; ' + hint if hint else ''}")
    if not path.is_file():
        raise UserError(f"{path}: {what} is a directory or not a regular file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what} ({exc.strerror})") from None
    return parse_json(data, str(path), what)


def parse_json(data: bytes | str, source: str, what: str = "JSON file") -> object:
    """Parse ``data`` (the contents of ``source``) with the same one-line errors."""
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise UserError(f"{source}: not valid JSON at line {exc.lineno} column {exc.colno} "
                        f"(char {exc.pos}): {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{source}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except RecursionError:
        raise UserError(f"{source}: not readable JSON: nested too deeply (a malformed or hostile {what})") from None
    except MemoryError:
        raise UserError(f"{source}: not readable JSON: too large to parse in memory") from None
    except ValueError as exc:  # e.g. an integer literal over Python's 4300-digit limit
        raise UserError(f"{source}: not readable JSON ({exc})") from None
