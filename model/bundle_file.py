"""The inference bundle (ARCHITECTURE decisions 1 and 2): one file with both trained networks
and the NIS settings, which ``evaluate`` and ``predict`` load.

    {"format": "bpm-bundle/1",
     "stage1": <stage-1 checkpoint without resume state>,
     "stage2": <stage-2 checkpoint without resume state>,
     "nis": {"mode": threshold | product | both | off, "threshold": tau, "objective": ..., "chosen_on":
             "validation", "val_images": n, "table": {"threshold": [...], "objective": [...]}},
     "postprocess": <the postprocess params used when tau was chosen>}

Plain data only, read with ``weights_only=True``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from model import checkpoint as ckpt_io
from model import torch_file
from model.common.atomic_io import atomic_write
from model.postprocess import PostprocessConfig

FORMAT = "bpm-bundle/1"


def make_bundle(stage1: dict, stage2: dict, nis: dict, postprocess: dict | None = None) -> dict:
    """Assemble a bundle; both checkpoints must describe the same labels and dataset."""
    for key in ("labels", "dataset"):
        if stage1.get(key) != stage2.get(key):
            raise ckpt_io.CheckpointError(f"stage-1 and stage-2 checkpoints disagree on '{key}'")
    if stage1.get("stage") != 1 or stage2.get("stage") != 2:
        raise ckpt_io.CheckpointError("a bundle needs a stage-1 and a stage-2 checkpoint, in that order")
    return {"format": FORMAT,
            "stage1": ckpt_io.without_resume_state(stage1), "stage2": ckpt_io.without_resume_state(stage2),
            "nis": dict(nis), "postprocess": dict(postprocess or {})}


def save_bundle(path: str | Path, bundle: dict) -> Path:
    """Write ``bundle`` atomically; the same bundle always gives the same bytes."""
    return atomic_write(path, lambda tmp: ckpt_io.save_torch(bundle, tmp))


def load_bundle(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.exists():
        raise ckpt_io.CheckpointError(f"{path}: bundle not found (run the bundle stage)")
    b = torch_file.read_torch_file(path, "bundle", map_location)
    if not isinstance(b, dict) or b.get("format") != FORMAT:
        raise ckpt_io.CheckpointError(f"{path}: not a {FORMAT} file")
    return b


def postprocess_config(bundle: dict) -> PostprocessConfig:
    """The post-processing a bundle prescribes: its ``postprocess`` section with the NIS mode
    and tau that the bundle stage chose (``nis``) written over it. ``evaluate`` and ``predict``
    both read a bundle through this one rule. A bundle without a chosen mode keeps its section's
    settings; tau is taken only where the mode thresholds (threshold, both)."""
    post = dict(bundle.get("postprocess") or {})
    nis = bundle.get("nis") or {}
    if nis.get("mode") in ("threshold", "product", "both", "off"):
        post["nis"] = nis["mode"]
        if nis["mode"] in ("threshold", "both") and nis.get("threshold") is not None:
            post["nis_threshold"] = float(nis["threshold"])
    return PostprocessConfig.model_validate(post)


def network(ckpt: dict) -> nn.Module:
    """The trained network a checkpoint (or a bundle's stage entry) describes, in eval mode."""
    from model.build import from_spec

    if not ckpt.get("model_spec"):
        raise ckpt_io.CheckpointError("checkpoint has no model_spec: cannot rebuild its network")
    net = from_spec(ckpt["model_spec"])
    net.load_state_dict(ckpt["model"])
    return net.eval()
