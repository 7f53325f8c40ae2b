"""Write one MATLAB cell array of double matrices to a MAT v5 file, in time proportional to the
number of matrix rows (not cells).

HICO-DET's ``all_boxes`` (600 HOIs x 9,658 images, mostly empty) costs scipy's ``savemat`` a
Python-level write per cell, about 2 minutes for the 80 files whatever the number of
detections. Here the whole variable is one little-endian uint64 array built with numpy: in the
MAT v5 layout every field of a double matrix is 8-byte aligned, so a cell is

* empty: one word, an ``miMATRIX`` tag of length 0 (what MATLAB writes for ``[]`` inside a
  cell; Octave's ``load`` and scipy's ``loadmat`` read it as an empty double matrix);
* an N x K double matrix: seven header words (matrix tag, array-flags tag and value, dimensions
  tag and value, empty-name tag, real-part tag) and N*K column-major values.

The variable is zlib-compressed (``miCOMPRESSED``, MATLAB's default) at level 1: long runs of
identical empty cells compress to almost nothing either way.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from pipeline import tables
from model.common.errors import UserError

MI_INT8, MI_INT32, MI_UINT32, MI_DOUBLE, MI_MATRIX, MI_COMPRESSED = 1, 5, 6, 9, 14, 15
MX_CELL, MX_DOUBLE = 1, 6
HEADER_WORDS = 7


def _word(low: int | np.ndarray, high: int | np.ndarray) -> np.ndarray:
    """uint64 words holding two little-endian uint32 (a tag: type, byte count)."""
    return np.asarray(low, dtype=np.uint64) | (np.asarray(high, dtype=np.uint64) << np.uint64(32))


def cell_payload(shape: tuple[int, int], cell: np.ndarray, values: np.ndarray) -> np.ndarray:
    """[W] uint64: the cells of an R x C cell array, column-major, as MAT v5 words.

    ``cell`` [N] int64: the row-major cell index (r * C + c) of each matrix row; rows of one
    cell keep their input order. ``values`` [N, K] float64: the matrix rows.
    """
    n_rows, n_cols = shape
    k = values.shape[1]
    r, c = np.divmod(cell, n_cols)
    linear = c * n_rows + r  # MATLAB stores cells column-major
    order = np.argsort(linear, kind="stable")  # stable: each cell's rows keep their input order
    linear, values = linear[order], values[order]
    count = np.bincount(linear, minlength=n_rows * n_cols)
    words = np.where(count > 0, HEADER_WORDS + count * k, 1)
    start = np.cumsum(words) - words
    out = np.full(int(words.sum()), MI_MATRIX, dtype=np.uint64)  # every cell empty ...
    full = np.flatnonzero(count)  # ... then the matrices written over their slots
    n = count[full]
    same = lambda lo, hi: np.full(len(full), _word(lo, hi), dtype=np.uint64)  # noqa: E731
    header = np.stack([_word(MI_MATRIX, (HEADER_WORDS - 1 + n * k) * 8), same(MI_UINT32, 8), same(MX_DOUBLE, 0),
                       same(MI_INT32, 8), _word(n, k), same(MI_INT8, 0), _word(MI_DOUBLE, n * k * 8)], axis=1)
    out[start[full][:, None] + np.arange(HEADER_WORDS)] = header
    first = np.cumsum(count) - count  # position of each cell's first row among the sorted rows
    i = np.arange(len(linear)) - first[linear]  # row within its cell
    pos = start[linear][:, None] + HEADER_WORDS + np.arange(k) * count[linear][:, None] + i[:, None]
    out[pos] = values.astype("<f8").view(np.uint64)
    return out


def _outer(name: str, shape: tuple[int, int], payload_bytes: int) -> bytes:
    """Tag, array flags, dimensions and name of the top-level cell array."""
    name_b = name.encode("ascii")
    pad = (-len(name_b)) % 8
    body = (struct.pack("<IIII", MI_UINT32, 8, MX_CELL, 0) + struct.pack("<IIii", MI_INT32, 8, *shape)
            + struct.pack("<II", MI_INT8, len(name_b)) + name_b + b"\0" * pad)
    return struct.pack("<II", MI_MATRIX, len(body) + payload_bytes) + body


def file_header() -> bytes:
    """The 128-byte MAT v5 header: text, no subsystem data, version 0x0100, 'IM' (little endian)."""
    text = b"MATLAB 5.0 MAT-file, written by the BPM reference pipeline (pipeline/interop/mat_cells.py)"
    return text.ljust(116, b" ") + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM"


def write_cell_array(path: Path, name: str, shape: tuple[int, int], cell: np.ndarray, values: np.ndarray) -> Path:
    """Write variable ``name`` = the R x C cell array of :func:`cell_payload`, atomically."""
    payload = cell_payload(shape, np.asarray(cell, dtype=np.int64), np.asarray(values, dtype=np.float64))
    if payload.nbytes >= 2**32 - 1024:  # MAT v5 element sizes are uint32
        raise UserError(f"{path}: {payload.nbytes:,} bytes for one variable, over MAT v5's 4 GiB; lower --cap")
    comp = zlib.compressobj(1)
    chunks = [comp.compress(_outer(name, shape, payload.nbytes)), comp.compress(payload.tobytes()), comp.flush()]
    data = b"".join(chunks)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(file_header())
            f.write(struct.pack("<II", MI_COMPRESSED, len(data)))
            f.write(data)
    return tables.atomic_write(path, save)
