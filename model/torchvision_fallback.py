"""Import torchvision even where its compiled ops cannot load.

PyPI's torchvision 0.28.0 is a CUDA build: against the CPU build of torch 2.13.0 its ``_C``
extension fails to load, ``torchvision::nms`` is never defined and ``import torchvision`` dies
in ``_meta_registrations``. ultralytics and our ResNet backbones need torchvision, so when (and
only when) the native library does not load, :func:`ensure_torchvision` defines the
``torchvision`` operator namespace itself, with pure-torch kernels for ``nms`` and ``roi_align``
(the two ops the project and ultralytics use) and a clear error for every other op, then
imports torchvision. With a working torchvision install nothing is registered.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import torch

from model.box_geometry import pairwise_iou_or_zero

# Schemas of the ops torchvision's Python side refers to at import or call time.
_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "roi_align": (
        "roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
        "SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor"
    ),
    "roi_pool": (
        "roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
        "SymInt pooled_width) -> (Tensor, Tensor)"
    ),
    "ps_roi_align": (
        "ps_roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
        "SymInt pooled_width, int sampling_ratio) -> (Tensor, Tensor)"
    ),
    "ps_roi_pool": (
        "ps_roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
        "SymInt pooled_width) -> (Tensor, Tensor)"
    ),
    "deform_conv2d": (
        "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, "
        "SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, "
        "SymInt dilation_w, SymInt groups, SymInt offset_groups, bool use_mask) -> Tensor"
    ),
}

_state: dict[str, object] = {"fallback": False, "lib": None}


def native_ops_available() -> bool:
    """True when torchvision's compiled ops are (or can be) loaded into torch."""
    if _state["fallback"]:
        return False
    if hasattr(torch.ops.torchvision, "nms"):
        return True
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("torchvision is not installed (pip install -e . installs it)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    for lib in sorted(folder.glob("_C*.so")) + sorted(folder.glob("_C*.pyd")):
        try:
            torch.ops.load_library(str(lib))
        except (OSError, RuntimeError):
            continue
        if hasattr(torch.ops.torchvision, "nms"):
            return True
    return False


def fallback_active() -> bool:
    """True when this module's pure-torch ops stand in for torchvision's native ones."""
    return bool(_state["fallback"])


def ensure_torchvision() -> ModuleType:
    """Return the ``torchvision`` module, installing the pure-torch ops first if needed."""
    if "torchvision" in sys.modules and (fallback_active() or hasattr(torch.ops.torchvision, "nms")):
        return sys.modules["torchvision"]
    if not native_ops_available():
        _install_fallback_ops()
    import torchvision

    if fallback_active():
        # torchvision.ops.* call extension._assert_has_ops() first; the ops exist now.
        torchvision.extension._has_ops = lambda: True
    return torchvision


def _install_fallback_ops() -> None:
    lib = torch.library.Library("torchvision", "DEF")
    for name, schema in _SCHEMAS.items():
        lib.define(schema)
    lib.impl("nms", nms, "CompositeExplicitAutograd")
    # Implicit autograd: gradients flow through the pure-torch ops, no backward op needed.
    lib.impl("roi_align", roi_align, "CompositeImplicitAutograd")
    for name in _SCHEMAS.keys() - {"nms", "roi_align"}:
        lib.impl(name, _unavailable(name), "CompositeExplicitAutograd")
    _state.update(fallback=True, lib=lib)  # the Library object must stay alive


def _unavailable(name: str):
    def op(*args, **kwargs):
        raise NotImplementedError(
            f"torchvision::{name} needs torchvision's compiled ops, which do not load with this "
            "torch build; the CPU fallback provides only nms and roi_align"
        )

    return op


def nms(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression with torchvision's semantics: indices of the kept boxes
    of ``dets`` [N, 4] (x1, y1, x2, y2), by decreasing score; a box is suppressed when its IoU
    with a kept, higher-scoring box is strictly greater than ``iou_threshold``."""
    if dets.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=dets.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    boxes = dets[order].float()
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=dets.device)
    keep = []
    # Loop over kept boxes only; each step suppresses against all the rest at once.
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed[i + 1:] |= pairwise_iou_or_zero(boxes[i: i + 1], boxes[i + 1:], eps=0.0)[0] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long, device=dets.device)]


def roi_align(
    input: torch.Tensor,
    rois: torch.Tensor,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    sampling_ratio: int,
    aligned: bool,
) -> torch.Tensor:
    """RoIAlign with torchvision's semantics: ``input`` [N, C, H, W], ``rois`` [K, 5] as
    (batch index, x1, y1, x2, y2) in input-image units scaled by ``spatial_scale`` ->
    [K, C, pooled_height, pooled_width]. Bilinear samples on a regular grid per bin (adaptive
    ``ceil(roi_size / pooled_size)`` samples when ``sampling_ratio <= 0``), averaged."""
    n, c, h, w = input.shape
    k = rois.shape[0]
    if k == 0:
        return input.new_zeros((0, c, pooled_height, pooled_width))
    offset = 0.5 if aligned else 0.0
    x1, y1 = rois[:, 1] * spatial_scale - offset, rois[:, 2] * spatial_scale - offset
    roi_w = rois[:, 3] * spatial_scale - offset - x1
    roi_h = rois[:, 4] * spatial_scale - offset - y1
    if not aligned:
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    bin_w, bin_h = roi_w / pooled_width, roi_h / pooled_height  # [K]
    if sampling_ratio > 0:
        grid_w = torch.full((k,), sampling_ratio, device=rois.device)
        grid_h = grid_w.clone()
    else:
        grid_w = torch.ceil(roi_w / pooled_width).long().clamp(min=1)
        grid_h = torch.ceil(roi_h / pooled_height).long().clamp(min=1)
    gmax_w, gmax_h = int(grid_w.max()), int(grid_h.max())
    sx = _sample_coords(x1, bin_w, grid_w, pooled_width, gmax_w)  # [K, PW, GW]
    sy = _sample_coords(y1, bin_h, grid_h, pooled_height, gmax_h)  # [K, PH, GH]
    vx = torch.arange(gmax_w, device=rois.device)[None, :] < grid_w[:, None]  # [K, GW]
    vy = torch.arange(gmax_h, device=rois.device)[None, :] < grid_h[:, None]  # [K, GH]
    values = _bilinear(input, rois[:, 0].long(), sy, sx)  # [K, C, PH, GH, PW, GW]
    weight = (vy[:, None, :, None, None] & vx[:, None, None, None, :]).to(input.dtype)
    weight = weight[:, None]  # [K, 1, 1, GH, 1, GW]
    count = (grid_h * grid_w).clamp(min=1).to(input.dtype)[:, None, None, None]
    return (values * weight).sum(dim=(3, 5)) / count


def _sample_coords(start, bin_size, grid, pooled: int, gmax: int) -> torch.Tensor:
    p = torch.arange(pooled, device=start.device, dtype=start.dtype)
    g = torch.arange(gmax, device=start.device, dtype=start.dtype)
    step = bin_size[:, None, None] / grid.to(start.dtype)[:, None, None]
    return start[:, None, None] + p[None, :, None] * bin_size[:, None, None] + (g[None, None, :] + 0.5) * step


def _bilinear(input: torch.Tensor, batch: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sample ``input`` at y [K, PH, GH] × x [K, PW, GW] with RoIAlign's border rules."""
    _, c, h, w = input.shape
    y = y[:, :, :, None, None]  # [K, PH, GH, 1, 1]
    x = x[:, None, None, :, :]  # [K, 1, 1, PW, GW]
    outside = (y < -1.0) | (y > h) | (x < -1.0) | (x > w)
    y, x = y.clamp(min=0), x.clamp(min=0)
    y_low = y.floor().long().clamp(max=h - 1)
    x_low = x.floor().long().clamp(max=w - 1)
    y = torch.where(y_low >= h - 1, y_low.to(y.dtype), y)
    x = torch.where(x_low >= w - 1, x_low.to(x.dtype), x)
    y_high, x_high = (y_low + 1).clamp(max=h - 1), (x_low + 1).clamp(max=w - 1)
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    flat = input.flatten(2)[batch]  # [K, C, H*W]

    def at(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        idx = (yy * w + xx).expand(torch.broadcast_shapes(yy.shape, xx.shape))
        return flat.gather(2, idx.reshape(idx.shape[0], 1, -1).expand(-1, c, -1)).view(idx.shape[0], c, *idx.shape[1:])

    out = (
        (hy * hx)[:, None] * at(y_low, x_low)
        + (hy * lx)[:, None] * at(y_low, x_high)
        + (ly * hx)[:, None] * at(y_high, x_low)
        + (ly * lx)[:, None] * at(y_high, x_high)
    )
    return out.masked_fill(outside[:, None], 0.0)

