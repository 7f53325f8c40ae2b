"""Self-describing checkpoints, written atomically and read with ``weights_only=True``.

A checkpoint is a plain dict (tensors, numbers, strings, lists, dicts only):

- ``format`` (:data:`FORMAT`), ``stage``, ``iteration``;
- ``model`` (state dict), ``model_config`` / ``train_config`` (plain dicts), ``labels``
  (:class:`model.label_space.LabelSpace` as a dict), ``dataset`` (name, format, root);
- ``best`` (validation metric name, value, iteration);
- the resume state, only in the "last" checkpoint: ``optimizer``, ``scheduler``, ``scaler``,
  ``sampler`` (epoch, position), ``rng`` (python, numpy, torch, cuda; one entry per DDP rank).

The bytes of a checkpoint depend on its content only (no file name, time or git state in it), so
a stage re-run with the same inputs writes the same file and ``dvc.lock`` does not change; the
code a checkpoint was trained with is recorded by ``dvc.lock`` (its code dependencies' hashes).
"""

from __future__ import annotations

import random
import subprocess
from functools import cache
from pathlib import Path

import numpy as np
import torch

from model import torch_file
from model.common.atomic_io import atomic_write

FORMAT = "bpm-checkpoint/1"
RESUME_KEYS = ("optimizer", "scheduler", "scaler", "sampler", "rng")


CheckpointError = torch_file.CheckpointError  # re-exported: callers catch it from here


@cache
def code_version() -> str:
    """``git describe --always --dirty`` of the working tree, or "unknown" outside git."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], capture_output=True,
                             text=True, timeout=10, cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` to ``path`` atomically (temporary file + rename), same content -> same bytes."""
    return atomic_write(path, lambda tmp: save_torch(payload, tmp))


def save_torch(obj: object, path: Path) -> None:
    """``torch.save`` through an open file: given a path, torch names the zip archive inside
    after the file, and the atomic writer's temporary file has a random name; given a file
    object, the archive is always called "archive"."""
    with open(path, "wb") as fh:
        torch.save(obj, fh)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save` (``weights_only=True``: no code runs)."""
    ckpt = torch_file.read_torch_file(path, "checkpoint", map_location)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} checkpoint")
    return ckpt


def without_resume_state(ckpt: dict) -> dict:
    """The checkpoint minus optimiser, scheduler, sampler and RNG state (a model to ship)."""
    return {k: v for k, v in ckpt.items() if k not in RESUME_KEYS}


def rng_state() -> dict:
    """Every RNG this process draws from, as plain data."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "gauss": gauss},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
