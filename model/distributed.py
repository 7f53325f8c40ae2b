"""torch.distributed set-up from torchrun's environment. The same command works as one plain
process (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``): nothing is initialised then."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_from_env(device: str = "auto") -> DistContext:
    """Join the process group torchrun describes (gloo on CPU, nccl on GPU) and pick the
    device (:func:`pick_device`)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local, world)
    use_cuda = dev.type == "cuda"
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world)
    return DistContext(rank, world, local, dev)


def pick_device(device: str, local_rank: int = 0, world_size: int = 1) -> torch.device:
    """The torch device of a validated name (pipeline.params.check_device): ``auto`` = this
    rank's GPU when CUDA is available, else CPU; ``cuda`` = this rank's GPU; ``cuda:N`` = GPU N
    exactly (one process only: under torchrun each rank takes its LOCAL_RANK's GPU, choose them
    with CUDA_VISIBLE_DEVICES); ``mps``; ``cpu``. An unavailable device is a UserError."""
    from model.common.errors import UserError

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"device {device}: CUDA is not available on this machine (use cpu or auto)")
        if device == "cuda":
            device = f"cuda:{local_rank}"
        elif world_size > 1:
            raise UserError(f"device {device}: a GPU index under torchrun is ambiguous; use cuda or auto "
                            "(each rank takes its LOCAL_RANK's GPU; choose GPUs with CUDA_VISIBLE_DEVICES)")
        index = int(device.split(":")[1])
        if index >= torch.cuda.device_count():
            raise UserError(f"device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device == "mps" and not torch.backends.mps.is_available():
        raise UserError("device mps: MPS is not available on this machine (use cpu or auto)")
    return torch.device(device)


def all_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over ranks of a tensor (itself without DDP); NaN on any rank stays NaN."""
    if dist.is_available() and dist.is_initialized():
        values = values.clone()
        dist.all_reduce(values)
        values /= dist.get_world_size()
    return values


def gather_objects(obj: object) -> list[object]:
    """``obj`` of every rank, in rank order (``[obj]`` without DDP)."""
    if dist.is_available() and dist.is_initialized():
        out: list[object] = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
