"""Image sizes and, by default, a full decode of every image file, in parallel threads.

A header read (PIL's lazy ``Image.open``) gives the size but misses a file truncated in its
pixel data, which would only fail later, in training (``OSError: image file is truncated``).
``decode=True`` reads every byte of the pixel data: PIL's decoders run in C with the GIL
released, so threads scale. JPEGs are decoded at reduced scale (``draft``): every
entropy-coded byte is still parsed (a truncated or cut file still fails) while the inverse DCT
and colour conversion, most of the cost, run on an eighth of the pixels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

CHUNK = 64  # files per task: amortises the thread hand-off on small images


def default_workers() -> int:
    """Threads for decoding: the CPUs this process may use, at most 8 (disk-bound beyond)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def probe(path: Path, decode: bool) -> tuple[int, int, str | None]:
    """(width, height, error) of one file; -1, -1 and the reason (one line) when unreadable."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            if decode:
                if im.format == "JPEG":
                    im.draft(im.mode, (max(1, width // 8), max(1, height // 8)))
                im.load()
        return int(width), int(height), None
    except (Image.UnidentifiedImageError, ImportError):
        # ImportError: once imported, ultralytics patches Image.open to retry unknown files
        # with pi_heif, which may be missing
        return -1, -1, "not a recognised image file"
    except MemoryError:
        return -1, -1, "too large to decode in memory"
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        return -1, -1, str(exc).split("\n")[0] or type(exc).__name__


def read_sizes(root: Path, files: Sequence[str], decode: bool = True, workers: int | None = None) -> pd.DataFrame:
    """Width and height (pixels) of each file (paths relative to ``root``), decoding the pixels
    when ``decode``. Columns width, height (int64, -1 where unreadable) and error (None, or why
    the file could not be read), one row per entry of ``files``, in order."""
    chunks = [files[i:i + CHUNK] for i in range(0, len(files), CHUNK)]
    desc = "ingest: decoding images" if decode else "ingest: image headers"

    def run(chunk: Sequence[str]) -> list[tuple[int, int, str | None]]:
        return [probe(root / f, decode) for f in chunk]

    rows: list[tuple[int, int, str | None]] = []
    with ThreadPoolExecutor(workers or default_workers()) as pool, \
            tqdm(total=len(files), desc=desc, unit="img", disable=None, leave=False) as bar:
        for part in pool.map(run, chunks):  # in order
            rows += part
            bar.update(len(part))
    width = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    height = np.fromiter((r[1] for r in rows), np.int64, len(rows))
    return pd.DataFrame({"width": width, "height": height, "error": [r[2] for r in rows]})
