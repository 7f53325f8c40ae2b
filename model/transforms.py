"""Training and evaluation transforms on ``(image, target)``; every geometric transform moves the
human boxes, the object boxes AND the persons' part boxes together.

The released code flips and crops the image but computes the part masks from unflipped,
uncropped part boxes (reference notes §3.6: ~75 % of training samples get misaligned part
maps). Here the part boxes are ordinary boxes of the target: a flip mirrors them and swaps left
and right parts (``FLIP_PARTS``), a crop shifts and clips them (a part cropped away is marked
invalid and lights no cell), a resize scales them.

Target while transforming (numpy, pixels of the current image, ``x1, y1, x2, y2``):
``sub_boxes`` [T, 4], ``obj_boxes`` [T, 4], ``has_obj`` Bool[T], ``obj_labels`` [T],
``verbs`` [T, V], ``interactive`` [T] (the per-pair keys, dropped together by a crop),
``part_boxes`` [P, 10, 4], ``part_valid`` Bool[P, 10], ``size`` (h, w).
:class:`ToTensor` ends the chain: image uint8 [3, H, W] (raw pixels: a quarter of the bytes
of floats to send from the loader workers, pin and copy; :func:`normalize_images` turns a batch
into the network input on its device, see ``model.collate.Batch.to``), pair boxes as cx, cy, w, h
relative to the image (object box zeros when there is no object), part boxes still in pixels
of the network input (what ``rasterize_part_masks`` expects).

Randomness comes only from the ``rng`` argument, so that a sample's augmentation is a pure
function of its seed (exact resume, DDP = one process).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageEnhance
from pydantic import Field

from model.common.section import Section
from model.common.body_parts import FLIP_PARTS

Target = dict[str, object]
Transform = Callable[[Image.Image, Target, np.random.Generator], tuple[Image.Image, Target]]
PAIR_KEYS = ("sub_boxes", "obj_boxes", "has_obj", "obj_labels", "verbs", "interactive")
OPTIONAL_PAIR_KEYS = ("part_labels",)  # [T, 6] float, NaN = unknown (model/data.py)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class AugmentConfig(Section):
    """Augmentation params (``train.augment``). Defaults = the demo preset (flip, 192 px)."""

    flip: float = Field(0.5, ge=0, le=1)  # probability of a horizontal flip
    scales: list[int] = [192]  # shorter side drawn from these (train)
    max_size: int = 256  # longer side capped at this
    crop: float = Field(0.0, ge=0, le=1)  # probability of the resize-crop-resize branch
    crop_scales: list[int] = [400, 500, 600]  # first resize of the crop branch
    crop_min: int = 384  # crop side range (pixels)
    crop_max: int = 600
    jitter: float = Field(0.0, ge=0, le=1)  # colour jitter strength (brightness, contrast, saturation)
    eval_size: int = 192  # shorter side at evaluation
    eval_max_size: int = 256


class Compose:
    def __init__(self, steps: Sequence[Transform]) -> None:
        self.steps = list(steps)

    def __call__(self, img: Image.Image, tgt: Target, rng: np.random.Generator):
        for step in self.steps:
            img, tgt = step(img, tgt, rng)
        return img, tgt


def _flip_x(boxes: np.ndarray, width: int) -> np.ndarray:
    """Mirror ``[..., 4]`` x1,y1,x2,y2 boxes about the vertical centre line of the image."""
    out = boxes.copy()
    out[..., 0] = width - boxes[..., 2]
    out[..., 2] = width - boxes[..., 0]
    return out


def hflip(img: Image.Image, tgt: Target) -> tuple[Image.Image, Target]:
    """Deterministic horizontal flip: all boxes mirrored, left and right parts swapped."""
    w = img.width
    tgt = dict(tgt)
    tgt["sub_boxes"] = _flip_x(tgt["sub_boxes"], w)
    tgt["obj_boxes"] = _flip_x(tgt["obj_boxes"], w)
    # the person's new right hand is the mirror image of its old left hand
    tgt["part_boxes"] = _flip_x(tgt["part_boxes"], w)[:, list(FLIP_PARTS)]
    tgt["part_valid"] = tgt["part_valid"][:, list(FLIP_PARTS)]
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), tgt


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img, tgt, rng):
        return hflip(img, tgt) if rng.random() < self.p else (img, tgt)


def resize(img: Image.Image, tgt: Target, size: int, max_size: int | None) -> tuple[Image.Image, Target]:
    """Shorter side to ``size`` (longer side capped at ``max_size``), boxes scaled with it.

    Neither side ever rounds to 0 (a 4000 x 2 image becomes ``max_size`` x 1, not 1333 x 0):
    at extreme aspect ratios the longer side is capped at ``max_size`` even if the ratio moves."""
    w, h = img.size
    short, long = min(w, h), max(w, h)
    if max_size is not None and long * size / short > max_size:
        size = int(round(max_size * short / long))
    size = max(size, 1)
    nw, nh = (size, max(1, int(round(size * h / w)))) if w <= h else (max(1, int(round(size * w / h))), size)
    if max_size is not None:
        nw, nh = min(nw, max(max_size, 1)), min(nh, max(max_size, 1))
    scale = np.array([nw / w, nh / h, nw / w, nh / h], dtype=np.float32)
    tgt = dict(tgt)
    for key in ("sub_boxes", "obj_boxes", "part_boxes"):
        tgt[key] = (tgt[key] * scale).astype(np.float32)
    tgt["size"] = (nh, nw)
    return img.resize((nw, nh), Image.Resampling.BILINEAR), tgt


class RandomResize:
    def __init__(self, sizes: Sequence[int], max_size: int | None = None) -> None:
        self.sizes, self.max_size = list(sizes), max_size

    def __call__(self, img, tgt, rng):
        return resize(img, tgt, int(self.sizes[rng.integers(len(self.sizes))]), self.max_size)


def _nonempty(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])


def part_box_valid(boxes: np.ndarray, width: float | np.ndarray, height: float | np.ndarray) -> np.ndarray:
    """Part boxes [..., 4] (x1, y1, x2, y2 px, before clipping) usable in an image of ``width`` x
    ``height`` px (broadcast against [...]) -> Bool[...]: finite, not inverted, and touching the
    image. A zero-size part (a single joint) inside the image is valid: under the touch rule it
    lights the one cell it falls in, as in the released code."""
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(boxes).all(-1)
        ordered = (boxes[..., 2] >= boxes[..., 0]) & (boxes[..., 3] >= boxes[..., 1])
        touches = ((boxes[..., 0] <= width) & (boxes[..., 2] >= 0)
                   & (boxes[..., 1] <= height) & (boxes[..., 3] >= 0))
    return finite & ordered & touches


def crop(img: Image.Image, tgt: Target, top: int, left: int, h: int, w: int) -> tuple[Image.Image, Target]:
    """Crop the region; boxes shifted and clipped to it. A pair is dropped when its human box,
    or its object box (if it has one), is cropped away; a part cropped away becomes invalid."""
    shift = np.array([left, top, left, top], dtype=np.float32)
    hi = np.array([w, h, w, h], dtype=np.float32)
    tgt = dict(tgt)
    part_inside = part_box_valid(tgt["part_boxes"] - shift, w, h)  # before clipping: zero-size parts stay
    for key in ("sub_boxes", "obj_boxes", "part_boxes"):
        tgt[key] = np.clip(tgt[key] - shift, 0, hi).astype(np.float32)
    keep = _nonempty(tgt["sub_boxes"]) & (_nonempty(tgt["obj_boxes"]) | ~tgt["has_obj"])
    for key in PAIR_KEYS + tuple(k for k in OPTIONAL_PAIR_KEYS if k in tgt):
        tgt[key] = tgt[key][keep]
    tgt["obj_boxes"][~tgt["has_obj"]] = 0  # no object: stays the all-zero box
    tgt["part_valid"] = tgt["part_valid"] & part_inside
    tgt["size"] = (h, w)
    return img.crop((left, top, left + w, top + h)), tgt


class RandomSizeCrop:
    """A crop with sides drawn in [min_size, max_size] (limited by the image), anywhere."""

    def __init__(self, min_size: int, max_size: int) -> None:
        self.min_size, self.max_size = min_size, max_size

    def __call__(self, img, tgt, rng):
        W, H = img.size
        w = int(rng.integers(min(self.min_size, W), min(W, self.max_size) + 1))
        h = int(rng.integers(min(self.min_size, H), min(H, self.max_size) + 1))
        top, left = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
        return crop(img, tgt, top, left, h, w)


class RandomSelect:
    """``b`` with probability ``p``, ``a`` otherwise."""

    def __init__(self, a: Transform, b: Transform, p: float) -> None:
        self.a, self.b, self.p = a, b, p

    def __call__(self, img, tgt, rng):
        return self.b(img, tgt, rng) if rng.random() < self.p else self.a(img, tgt, rng)


class ColorJitter:
    """Brightness, contrast and saturation each scaled by a factor in [1 - s, 1 + s]."""

    def __init__(self, strength: float) -> None:
        self.s = strength

    def __call__(self, img, tgt, rng):
        for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            img = enhance(img).enhance(float(rng.uniform(1 - self.s, 1 + self.s)))
        return img, tgt


class ToTensor:
    """Image -> uint8 tensor [3, H, W] (channels first, values 0..255, not yet normalised:
    :func:`normalize_images` does that per batch on the device); pair boxes -> relative cx, cy,
    w, h; all to torch."""

    def __call__(self, img, tgt, rng=None):
        if img.mode != "RGB":
            img = img.convert("RGB")  # (an RGB image would be copied for nothing)
        x = torch.from_numpy(np.ascontiguousarray(np.asarray(img).transpose(2, 0, 1)))  # uint8 [3, H, W]
        h, w = img.height, img.width
        rel = np.array([w, h, w, h], dtype=np.float32)
        out = dict(tgt)
        for key in ("sub_boxes", "obj_boxes"):
            b = tgt[key] / rel
            out[key] = torch.from_numpy(np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], 1))
        out["obj_boxes"][~torch.from_numpy(tgt["has_obj"])] = 0
        for key in ("has_obj", "obj_labels", "verbs", "interactive", "part_boxes", "part_valid", *OPTIONAL_PAIR_KEYS):
            if key in tgt:
                out[key] = torch.from_numpy(np.ascontiguousarray(tgt[key]))
        out["size"] = torch.tensor([h, w])
        return x, out


def normalize_images(x: torch.Tensor, padding: torch.Tensor | None = None,
                     mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """The network input: uint8 pixels [B, 3, H, W] -> float32 (v / 255 - mean) / std, on the
    device ``x`` is on, with the padding (Bool[B, H, W], True = padding) set to 0 as the
    models were trained with. The same float operations in the same order as normalising each
    image on the CPU, so every value is the same."""
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    out = x.float().div_(255.0).sub_(m).div_(s)  # [B, 3, H, W]
    if padding is not None:
        out.masked_fill_(padding[:, None], 0.0)
    return out


def make_transforms(cfg: AugmentConfig, train: bool) -> Compose:
    """The training chain (flip, jitter, resize or resize-crop-resize) or the evaluation one
    (resize only)."""
    if not train:
        return Compose([RandomResize([cfg.eval_size], cfg.eval_max_size), ToTensor()])
    plain = RandomResize(cfg.scales, cfg.max_size)
    steps: list[Transform] = [RandomHorizontalFlip(cfg.flip)]
    if cfg.jitter > 0:
        steps.append(ColorJitter(cfg.jitter))
    if cfg.crop > 0:
        cropped = Compose([RandomResize(cfg.crop_scales), RandomSizeCrop(cfg.crop_min, cfg.crop_max), plain])
        steps.append(RandomSelect(plain, cropped, cfg.crop))
    else:
        steps.append(plain)
    return Compose([*steps, ToTensor()])
