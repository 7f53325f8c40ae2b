"""The ground-truth pairs of a batch packed into a few flat tensors, built once per batch on the
CPU (in the collate, i.e. in a loader worker) and moved to the device in one pinned,
non-blocking copy per tensor.

Per-image dicts (model/data.py) cost one host-to-device copy per key and image (~130 per batch
of 16) and per-image Python work in the matcher and the losses; packed, the pairs of every
image sit one after the other (image 0's pairs, then image 1's, ...), and the Python ints
``sizes`` / ``offsets`` say where each image's pairs start, so nothing needs to be read back
from the device to split or pad them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

PAIR_KEYS = ("sub_boxes", "obj_boxes", "has_obj", "obj_labels", "verbs", "interactive")


@dataclass
class PackedTargets:
    """Pairs of B images, concatenated in image order (T = sum of ``sizes``).

    sub_boxes, obj_boxes [T, 4] (cx, cy, w, h relative to the unpadded image; object zeros
    without object), has_obj Bool[T], obj_labels Long[T], verbs [T, V] multi-hot,
    interactive [T] (0/1), image Long[T] (image of each pair in the batch), slot Long[T]
    (index of the pair within its image); ``sizes``: pairs per image (host ints);
    part_labels [T, 6] when every image's targets carry them (body-part supervision)."""

    sub_boxes: Tensor
    obj_boxes: Tensor
    has_obj: Tensor
    obj_labels: Tensor
    verbs: Tensor
    interactive: Tensor
    image: Tensor
    slot: Tensor
    sizes: list[int]
    part_labels: Tensor | None = None  # [T, 6] part-group labels (NaN = unknown); None if absent

    @property
    def offsets(self) -> list[int]:
        """Index of each image's first pair in the flat tensors."""
        out, n = [], 0
        for s in self.sizes:
            out.append(n)
            n += s
        return out

    def _map(self, fn) -> PackedTargets:
        return replace(self, **{f.name: fn(getattr(self, f.name)) for f in fields(self)
                                if f.name != "sizes" and getattr(self, f.name) is not None})

    def to(self, device: torch.device | str, non_blocking: bool = True) -> PackedTargets:
        """On ``device``; non-blocking (asynchronous) when the tensors are pinned."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> PackedTargets:
        """Page-locked copies (the DataLoader's pin thread calls this through Batch)."""
        return self._map(lambda t: t.pin_memory())

    def padded_index(self) -> tuple[Tensor, Tensor]:
        """(flat pair index Long[B, Tmax], valid Bool[B, Tmax]): the pairs of each image in a
        padded [B, Tmax] layout (padding slots point at pair 0 and are invalid), built on the
        device of the tensors from host ints only."""
        b, tmax = len(self.sizes), max(self.sizes, default=0)
        index = torch.zeros(b, max(tmax, 1), dtype=torch.long, device=self.image.device)
        valid = torch.zeros(b, max(tmax, 1), dtype=torch.bool, device=self.image.device)
        if self.image.numel():
            flat = torch.arange(self.image.numel(), device=self.image.device)
            index[self.image, self.slot] = flat
            valid[self.image, self.slot] = True
        return index[:, :tmax], valid[:, :tmax]


def pack(targets: list[dict[str, Tensor]]) -> PackedTargets:
    """Concatenate the per-pair keys of per-image targets (on whatever device they are)."""
    sizes = [len(t["obj_labels"]) for t in targets]
    device = targets[0]["obj_labels"].device if targets else torch.device("cpu")
    cat = {k: torch.cat([t[k] for t in targets]) if targets else torch.zeros(0) for k in PAIR_KEYS}
    image = torch.repeat_interleave(torch.arange(len(sizes), device=device),
                                    torch.tensor(sizes, dtype=torch.long, device=device), output_size=sum(sizes))
    slot = torch.cat([torch.arange(n, device=device) for n in sizes]) if sizes else torch.zeros(0, dtype=torch.long)
    parts = None
    if targets and all("part_labels" in t for t in targets):
        parts = torch.cat([t["part_labels"].reshape(-1, 6) for t in targets])
    return PackedTargets(**cat, image=image, slot=slot, sizes=sizes, part_labels=parts)
