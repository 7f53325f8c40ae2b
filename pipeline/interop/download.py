"""Resumable HTTP(S) downloads with the standard library: bytes go to ``<dest>.part``; a later
call continues it with an HTTP Range request; the finished file is checked (when a check is
given) before it is renamed into place, so ``dest`` only ever holds a complete, verified file.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from http.client import HTTPException, HTTPResponse, IncompleteRead
from pathlib import Path

from tqdm import tqdm

from model.common.errors import UserError

CHUNK = 1 << 16  # bytes per read
USER_AGENT = "bpm-hoi-data-fetch/0.1 (+urllib)"


class DownloadError(UserError):
    """The server refused, the connection failed, or the file is not what was expected."""


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def download(url: str, dest: Path, verify: Callable[[Path], str | None] | None = None,
             timeout: float = 60.0, label: str | None = None) -> Path:
    """Download ``url`` to ``dest``, continuing ``dest.part`` if it exists.

    ``verify(part)`` returns None when the complete file is acceptable, else why not; then the
    part file is removed and a DownloadError raised. A dropped connection keeps the part file
    (the error says to run again to resume).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    offset = part.stat().st_size if part.exists() else 0
    try:
        complete = _transfer(url, part, offset, timeout, label or dest.name)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason} (the source may have moved; "
                            f"check the URL, or get the file by hand and run `data verify`)") from None
    except (urllib.error.URLError, OSError, HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        kept = f"; {part.stat().st_size} bytes kept in {part}, run again to resume" if part.exists() else ""
        raise DownloadError(f"{url}: download failed ({reason}){kept}") from None
    if not complete:
        raise DownloadError(f"{url}: connection closed early; {part.stat().st_size} bytes kept in {part}, "
                            "run again to resume")
    problem = verify(part) if verify is not None else None
    if problem is not None:
        part.unlink()
        raise DownloadError(f"{url}: downloaded file rejected: {problem}; the file was removed "
                            "(the source changed or the transfer was corrupted)")
    os.replace(part, dest)
    return dest


def _transfer(url: str, part: Path, offset: int, timeout: float, label: str) -> bool:
    """Append the rest of ``url`` to ``part``; True when the server's whole body arrived."""
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http/https only, checked by caller)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset and _total_of(exc.headers.get("Content-Range")) == offset:
            return True  # the part file already holds the whole file
        if exc.code == 416:
            part.unlink(missing_ok=True)  # the part is longer than the file: start again
            return _transfer(url, part, 0, timeout, label)
        raise
    with response:
        start = _start_of(response, offset)
        return _stream(response, part, start, label)


def _start_of(response: HTTPResponse, offset: int) -> int:
    """Byte position the body starts at: ``offset`` for a 206 reply, 0 when the server ignored
    the range and sends the whole file."""
    if response.status == 206:
        match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
        if match is None or int(match.group(1)) != offset:
            raise DownloadError(f"{response.url}: server answered range {offset}- with "
                                f"'{response.headers.get('Content-Range')}'")
        return offset
    return 0


def _stream(response: HTTPResponse, part: Path, start: int, label: str) -> bool:
    length = response.headers.get("Content-Length")
    expected = int(length) if length is not None else None
    received = 0
    with open(part, "ab" if start else "wb") as out, tqdm(
        total=None if expected is None else start + expected, initial=start, unit="B", unit_scale=True,
        unit_divisor=1024, desc=label, disable=None, leave=False,
    ) as bar:
        while True:
            try:
                chunk = response.read(CHUNK)
            except IncompleteRead as exc:  # the server closed early: keep what arrived
                chunk, expected = exc.partial, received + len(exc.partial) + 1
                out.write(chunk)
                received += len(chunk)
                break
            if not chunk:
                break
            out.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return expected is None or received >= expected


def _total_of(content_range: str | None) -> int | None:
    """The total size in a 'bytes */N' Content-Range header."""
    match = re.match(r"bytes \*/(\d+)", content_range or "")
    return int(match.group(1)) if match else None
