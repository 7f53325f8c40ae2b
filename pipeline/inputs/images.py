"""Input images of ``predict``: finding the files and loading each as an 8-bit RGB working copy.

:func:`discover` expands files and folders (recursively, by image suffix) into :class:`Source`
records with run-unique ids (the file stem, ``-2``, ``-3``, ... on clashes). :func:`load_image`
opens a file, applies its EXIF orientation (the displayed frame, before anything else), converts
any colour mode to 8-bit RGB (alpha composited on white, 16-bit / float greyscale rescaled) and
caps the longer side at ``max_side`` px. ``LoadedImage.orig_hw`` is the (h, w) px of the
displayed original; ``LoadedImage.scale`` ([sx, sy]) maps working px to original px. Every
conversion is recorded as a note; a file that cannot be decoded raises :class:`ImageError`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
EXIF_ORIENTATION = 0x0112
SWAPS_AXES = (5, 6, 7, 8)  # EXIF orientations that transpose width and height
ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


class ImageError(Exception):
    """An input file that cannot be used (message: one line naming the file and the reason)."""


@dataclass(frozen=True)
class Source:
    image_id: str  # file stem, made unique within the run
    path: Path


@dataclass
class LoadedImage:
    """An input image ready for pose and model. ``image``: RGB working copy in the displayed
    orientation; ``orig_hw``: (h, w) px of the displayed original; ``notes``: conversions."""

    source: Source
    image: Image.Image
    orig_hw: tuple[int, int]
    notes: list[str]

    @property
    def scale(self) -> np.ndarray:
        """Original px per working px, ``[sx, sy]``."""
        return np.array([self.orig_hw[1] / self.image.width, self.orig_hw[0] / self.image.height], np.float32)


def discover(inputs: Sequence[Path]) -> tuple[list[Source], list[Path]]:
    """Image files of ``inputs`` (folders searched recursively for image suffixes, sorted;
    files kept whatever their suffix) with unique ids, and the input paths that do not exist."""
    files: list[Path] = []
    missing: list[Path] = []
    for p in map(Path, inputs):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            files.append(p)
        else:
            missing.append(p)
    seen: set[Path] = set()
    used: set[str] = set()
    sources = []
    for f in files:
        if f.resolve() in seen:
            continue
        seen.add(f.resolve())
        image_id, n = f.stem, 1
        while image_id in used:  # a.jpg in two folders: a, a-2, a-3, ...
            n += 1
            image_id = f"{f.stem}-{n}"
        used.add(image_id)
        sources.append(Source(image_id, f))
    return sources, missing


def load_image(source: Source, max_side: int) -> LoadedImage:
    """Open, EXIF-transpose, convert to RGB and cap the longer side at ``max_side``.

    Raises :class:`ImageError` for a file PIL cannot decode (not an image, truncated, larger
    than PIL's decompression-bomb limit)."""
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # reduced below
            with Image.open(source.path) as im:
                w, h = im.size
                if max(w, h) > max_side:  # JPEG: decode at a reduced scale (fast, low memory)
                    im.draft(None, (max(1, w * max_side // max(w, h)), max(1, h * max_side // max(w, h))))
                im.load()
                orientation = exif_orientation(im)  # after load: a PNG's eXIf chunk may follow its pixels
                img = ImageOps.exif_transpose(im)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{source.path}: cannot read image ({type(exc).__name__}: {exc})") from None
    except ImportError:
        # importing ultralytics patches Image.open to fetch a HEIF plugin for any file Pillow
        # cannot identify; without that plugin the patch raises ImportError instead
        raise ImageError(f"{source.path}: cannot read image (not a format Pillow can identify)") from None
    if orientation in SWAPS_AXES:
        w, h = h, w
    if orientation != 1:
        notes.append(f"EXIF orientation {orientation} applied")
    try:
        img = to_rgb(img, notes)
    except (ValueError, OSError) as exc:
        raise ImageError(f"{source.path}: colour mode {img.mode} cannot be converted to RGB ({exc})") from None
    if max(img.size) > max_side:
        k = max_side / max(img.size)
        img = img.resize((max(1, round(img.width * k)), max(1, round(img.height * k))), Image.Resampling.BOX)
    if (img.width, img.height) != (w, h):
        notes.append(f"reduced from {w}x{h} to {img.width}x{img.height} for pose and model")
    return LoadedImage(source, img, (h, w), notes)


def exif_orientation(im: Image.Image) -> int:
    """The EXIF orientation tag (1..8); 1 when absent or malformed (exif_transpose ignores it too)."""
    try:
        value = int(im.getexif().get(EXIF_ORIENTATION, 1))
    except (TypeError, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


def to_rgb(img: Image.Image, notes: list[str]) -> Image.Image:
    """8-bit RGB: alpha composited on white, 16-bit / float greyscale rescaled, any other mode
    (L, 1, P, CMYK, YCbCr, ...) converted by PIL; the conversion is added to ``notes``.
    Raises ValueError for a mode PIL cannot convert to RGB."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I") or mode == "F":
        notes.append(f"{mode} greyscale -> 8-bit RGB")
        return Image.fromarray(_to_8bit(np.asarray(img, np.float64))).convert("RGB")
    if mode in ALPHA_MODES or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        notes.append(f"{mode} with transparency composited on white")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    notes.append(f"{mode} -> RGB")
    return img.convert("RGB")


def _to_8bit(a: np.ndarray) -> np.ndarray:
    """Greyscale of any depth -> uint8: 16-bit values / 257, 8-bit ranges as they are, any
    other range (32-bit, float) stretched from its minimum to its maximum."""
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if 0 <= lo and hi <= 255:
        out = a
    elif 0 <= lo and hi <= 65535:
        out = a / 257.0
    else:
        out = (a - lo) / max(hi - lo, 1e-9) * 255
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
