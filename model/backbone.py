"""Convolutional backbones (stride 32): torchvision ResNet-18/34/50/101 with frozen batch norm
(DETR's setting) and a small from-scratch ResNet-like "demo" backbone.

The trunk's module names match DETR's ``backbone.0.body.*`` (conv1, bn1, layer1..layer4), so
the COCO DETR checkpoint maps onto it name for name (model/detr_import.py).

Exact padding: a padded image in a batch must give the same features as alone. Zero padding of
a conv reads zeros outside the image, but in a padded batch it reads features computed from
padding (non-zero after a BN shift). A forward pre-hook on every conv therefore zeroes the
positions outside each image's valid extent, which at stride s is ceil(H_valid / s) cells, the
size the unpadded image's own feature map would have. The max-pool input is masked the same
way: it follows a ReLU (values >= 0), so a zero in its window equals the unpadded run's -inf.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.common.errors import UserError

RESNET_CHANNELS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048, "demo": 256}


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d whose statistics and affine parameters are fixed buffers (DETR's choice:
    batch statistics of 2-4 images per GPU are too noisy to train)."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        state_dict.pop(prefix + "num_batches_tracked", None)  # torchvision checkpoints carry it
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        if x.dtype == scale.dtype:
            return x * scale[None, :, None, None] + shift[None, :, None, None]
        # autocast (bf16/fp16 conv output): stay in that dtype, one fused multiply-add; fp32
        # buffers would promote every activation of the trunk to fp32 (twice the traffic)
        return torch.addcmul(shift.to(x.dtype)[None, :, None, None], x, scale.to(x.dtype)[None, :, None, None])


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual; a 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


def demo_trunk(width: int = 32) -> nn.Sequential:
    """ARCHITECTURE's demo backbone: channels w, 2w, 4w, 8w (32/64/128/256), one BasicBlock per
    stage, stride 32, trainable BatchNorm (it learns from scratch)."""
    w = width
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, w, 7, 2, 3, bias=False), bn1=nn.BatchNorm2d(w), relu=nn.ReLU(inplace=True),
        maxpool=nn.MaxPool2d(3, 2, 1),
        layer1=BasicBlock(w, w, 1), layer2=BasicBlock(w, 2 * w, 2),
        layer3=BasicBlock(2 * w, 4 * w, 2), layer4=BasicBlock(4 * w, 8 * w, 2),
    ))


def resnet_trunk(name: str, weights: Path | None) -> nn.Sequential:
    """torchvision ResNet without avgpool/fc, FrozenBatchNorm2d, stem and layer1 frozen."""
    from model.torchvision_fallback import ensure_torchvision

    tv = ensure_torchvision()
    net = getattr(tv.models, name)(weights=None, norm_layer=FrozenBatchNorm2d)
    if weights is not None:
        from model.torch_file import read_torch_file

        state = read_torch_file(weights, "backbone weights (model.backbone_weights)")
        if not isinstance(state, dict):
            raise UserError(f"{weights}: not a torchvision {name} state dict (found {type(state).__name__})")
        try:
            missing = net.load_state_dict(state, strict=False).missing_keys
        except RuntimeError as exc:  # shape mismatches: torch's message is multi-line
            raise UserError(f"{weights}: not a torchvision {name} state dict "
                            f"({str(exc).strip().splitlines()[-1].strip()[:200]})") from None
        if missing:
            raise UserError(f"{weights}: not a torchvision {name} state dict (missing {missing[:3]} ...)")
    names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
    body = nn.Sequential(OrderedDict((n, getattr(net, n)) for n in names))
    for pname, p in body.named_parameters():
        # DETR trains layer2-4 only: the stem and layer1 keep their pretrained filters.
        p.requires_grad_(pname.split(".")[0] in ("layer2", "layer3", "layer4"))
    return body


class Backbone(nn.Module):
    """Image [B, 3, H, W] -> features [B, C, ceil(H/32), ceil(W/32)] and the feature-grid
    padding mask [B, h, w] (True = padding)."""

    def __init__(self, name: str, weights: Path | None = None, exact_padding: bool = True) -> None:
        super().__init__()
        self.body = demo_trunk() if name == "demo" else resnet_trunk(name, weights)
        self.num_channels = RESNET_CHANNELS[name]
        self.exact_padding = exact_padding
        self._valid_hw: Tensor | None = None  # [B, 2] valid pixel extent, set during forward
        self._padded_hw: tuple[int, int] = (0, 0)
        self._grids: dict[tuple[int, int], Tensor] = {}  # valid cells per feature-map size, per forward
        if exact_padding:
            for m in self.body.modules():
                if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
                    m.register_forward_pre_hook(self._mask_padding)

    def _mask_padding(self, module: nn.Module, inputs: tuple[Tensor]) -> tuple[Tensor] | None:
        if self._valid_hw is None:
            return None
        x = inputs[0]
        key = tuple(x.shape[-2:])
        if key not in self._grids:  # ~50 convs share a handful of map sizes
            stride = _stride_of(self._padded_hw, x.shape[-2:])
            self._grids[key] = _valid_grid(self._valid_hw, x.shape[-2:], stride)[:, None]  # [B, 1, h, w]
        return (x * self._grids[key].to(x.dtype),)

    def forward(self, images: Tensor, pixel_mask: Tensor) -> tuple[Tensor, Tensor]:
        valid_hw = valid_extent(pixel_mask)  # [B, 2]
        # whether anything is padded is read on the CPU only: on a GPU that read would stop the
        # host until the device catches up (and break a compiled graph); masking an unpadded
        # batch multiplies by ones, so the result is the same either way
        padded = images.device.type != "cpu" or torch.compiler.is_compiling() or bool(pixel_mask.any())
        self._valid_hw = valid_hw if (self.exact_padding and padded) else None
        self._padded_hw = tuple(images.shape[-2:])
        try:
            feats = self.body(images)  # [B, C, h, w]
        finally:
            self._valid_hw = None
            self._grids = {}
        mask = ~_valid_grid(valid_hw, feats.shape[-2:], 32)  # [B, h, w]
        return feats, mask


def valid_extent(pixel_mask: Tensor) -> Tensor:
    """Valid (unpadded) height and width of each image [B, 2] from the pixel padding mask
    [B, H, W] (True = padding); images sit at the top-left corner of the padded batch."""
    valid = ~pixel_mask
    return torch.stack([valid.any(2).sum(1), valid.any(1).sum(1)], dim=1)


def _valid_grid(valid_hw: Tensor, grid_hw: tuple[int, int] | torch.Size, stride: int) -> Tensor:
    """Cells [B, h, w] of a stride-``stride`` grid that the valid region reaches (r*s < H_v)."""
    h, w = grid_hw
    rows = torch.arange(h, device=valid_hw.device) * stride
    cols = torch.arange(w, device=valid_hw.device) * stride
    return (rows[None, :, None] < valid_hw[:, 0, None, None]) & (cols[None, None, :] < valid_hw[:, 1, None, None])


def _stride_of(padded_hw: tuple[int, int], grid_hw: torch.Size) -> int:
    """The power-of-two stride s with ceil(H/s), ceil(W/s) == grid (ResNet's size arithmetic)."""
    for s in (1, 2, 4, 8, 16, 32, 64):
        if (math.ceil(padded_hw[0] / s), math.ceil(padded_hw[1] / s)) == tuple(grid_hw):
            return s
    raise ValueError(f"feature map {tuple(grid_hw)} is not a power-of-two stride of {padded_hw}")
