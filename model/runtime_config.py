"""The ``runtime`` params section: how a run uses this machine (device, threads, loaders,
GPU speed switches), not what it computes; read by the training loop and the CLI."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from model.common.section import Section

_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def check_device(value: str) -> str:
    """``value`` when it names a device this pipeline runs on: auto | cpu | cuda | cuda:N | mps.

    Exact, lower-case spelling: ``gpu``, ``0`` or ``CUDA`` are refused rather than read as CPU
    (torch would take some of them, others would silently fall back). ``cuda`` = this rank's
    GPU (``LOCAL_RANK``), ``cuda:N`` = GPU N exactly; whether it exists is checked when used.
    """
    if not isinstance(value, str) or not _DEVICE.fullmatch(value):
        raise ValueError(f"device {value!r}: expected auto, cpu, cuda, cuda:N (N = GPU index) or mps")
    return value


# A validated device name; a params field or a CLI option declares ``device: Device = "auto"``.
Device = Annotated[str, AfterValidator(check_device)]


class RuntimeConfig(Section):
    """``runtime``: how a run uses this machine, not what it computes. No DVC stage declares
    this section, so changing it re-runs nothing. Threads and device change float rounding
    only (as another processor does; README "Reproducibility"); the rest changes nothing."""

    device: Device = "auto"  # training: auto | cpu | cuda | cuda:N | mps (check_device)
    threads: int | None = Field(None, ge=1)  # torch CPU threads; None = torch's default
    num_workers: int = Field(0, ge=0)  # data-loading processes (0: in the training process)
    progress: bool = True  # progress bar
    log_every: int = Field(10, ge=1)  # iterations between logged training-loss points
    find_unused_parameters: bool = False  # DDP: needed only when a module sits unused
    compile: bool = False  # torch.compile the whole network (GPU speed; float rounding only)
    channels_last: bool = False  # NHWC images and conv weights (GPU speed)
    fused_optimizer: bool = False  # AdamW's fused kernel (GPU speed)
