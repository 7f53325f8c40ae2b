"""Batching: pad images to a common size, mark the padding, and rasterise every person's part
boxes into the six body-part masks on the stride-32 feature grid (paper eq. 1)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from model.packed_targets import PAIR_KEYS, PackedTargets, pack
from model.transforms import normalize_images

# A part box cropped out of the image is moved here: far outside the grid, so that it lights no
# cell whatever the rasteriser's clipping (an empty box at the border would still touch a cell).
_OFF_GRID = -1.0e4


@dataclass
class Batch:
    images: Tensor  # uint8 [B, 3, H, W] raw pixels from the collate; float normalised after .to()
    pixel_mask: Tensor  # Bool[B, H, W], True = padding
    part_masks: Tensor | None  # Bool[B, 6, h, w], True = covered by that part group
    targets: list[dict]  # per image, see model.data / model.transforms
    packed: PackedTargets | None = None  # the pairs of ``targets`` packed for the criterion

    def to(self, device: torch.device | str, targets: bool = True) -> Batch:
        """The batch on ``device``, ready for the networks: images normalised there (float32
        [B, 3, H, W], zero padding; see model.transforms.normalize_images), tensors of the
        targets moved too, unless ``targets`` is False:
        training reads only the packed pairs there, and the per-image dicts cost ~130 small
        copies a batch; strings and ints stay). Copies are asynchronous from pinned memory."""
        move = lambda v: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v  # noqa: E731
        per_image = [{k: move(v) for k, v in t.items()} for t in self.targets] if targets else self.targets
        images, pixel_mask = move(self.images), move(self.pixel_mask)
        if images.dtype == torch.uint8:  # raw pixels travel; the network gets them normalised, here
            images = normalize_images(images, pixel_mask)
        return Batch(images, pixel_mask, move(self.part_masks), per_image,
                     self.packed.to(device) if self.packed is not None else None)

    def pin_memory(self) -> Batch:
        """Page-locked tensors (called by a DataLoader with ``pin_memory=True``), so that the
        copies to the GPU run asynchronously; the per-image dicts stay pageable."""
        pin = lambda v: v.pin_memory() if isinstance(v, Tensor) else v  # noqa: E731
        return Batch(pin(self.images), pin(self.pixel_mask), pin(self.part_masks), self.targets,
                     self.packed.pin_memory() if self.packed is not None else None)


def pad_images(images: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Zero-pad [3, h_i, w_i] images at the bottom/right: ([B, 3, H, W], Bool[B, H, W])."""
    H = max(x.shape[1] for x in images)
    W = max(x.shape[2] for x in images)
    # uninitialised, then only the padding zeroed: zero-filling the batch (~40 MB for four
    # 800 px images) before copying the images over it wrote most of the memory twice
    out = _batch_tensor((len(images), 3, H, W), images[0].dtype)
    mask = _batch_tensor((len(images), H, W), torch.bool).fill_(True)
    for i, x in enumerate(images):  # one copy per image, not per pixel
        h, w = x.shape[1:]
        out[i, :, :h, :w] = x
        out[i, :, :h, w:] = 0  # right of the image
        out[i, :, h:] = 0  # below it
        mask[i, :h, :w] = False
    return out, mask


def _batch_tensor(shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """An uninitialised CPU tensor. Inside a DataLoader worker it is allocated in shared memory
    (as torch's default_collate does): the batch then reaches the training process without the
    copy into shared memory that sending it would make (as long again as the padding itself)."""
    empty = torch.empty(0, dtype=dtype)
    if torch.utils.data.get_worker_info() is None:
        return empty.new_empty(shape)
    return empty.new(empty._typed_storage()._new_shared(math.prod(shape))).view(shape)


def part_masks(targets: list[dict], grid_hw: tuple[int, int], stride: int, rule: str) -> Tensor:
    """The six part-group masks of every image, Bool[B, 6, h, w], from all persons' part boxes
    (pixels of the network input); invalid (cropped-away) parts light nothing."""
    from model.masks import rasterize_part_masks  # the model's rasteriser (decision 4 rule)

    boxes = [t["part_boxes"].float() for t in targets]  # [P_i, 10, 4]
    valid = torch.cat([t["part_valid"] for t in targets]) if boxes else torch.zeros(0, 10, dtype=torch.bool)
    all_boxes = torch.cat(boxes) if boxes else torch.zeros(0, 10, 4)
    all_boxes = torch.where(valid[..., None], all_boxes, torch.full_like(all_boxes, _OFF_GRID))
    index = torch.cat([torch.full((len(b),), i, dtype=torch.long) for i, b in enumerate(boxes)])
    return rasterize_part_masks(all_boxes, index, len(targets), grid_hw, stride=stride, rule=rule)


class Collate:
    """``DataLoader`` collate function producing a :class:`Batch`. ``with_part_masks=False``
    skips the masks (stage 2, or a model without body parts)."""

    def __init__(self, stride: int = 32, rule: str = "touch", with_part_masks: bool = True) -> None:
        self.stride, self.rule, self.with_part_masks = stride, rule, with_part_masks

    def __call__(self, samples: list[tuple[Tensor, dict]]) -> Batch:
        images, targets = zip(*samples)
        x, mask = pad_images(list(images))
        grid = (math.ceil(x.shape[2] / self.stride), math.ceil(x.shape[3] / self.stride))
        masks = part_masks(list(targets), grid, self.stride, self.rule) if self.with_part_masks else None
        packed = pack(list(targets)) if all(k in targets[0] for k in PAIR_KEYS) else None
        return Batch(x, mask, masks, list(targets), packed)
