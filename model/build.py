"""Build a stage's network with its criterion and post-processor (DETR's ``build`` pattern),
rebuild a network from a checkpoint's spec, and split parameters into optimiser groups."""

from __future__ import annotations

import importlib
from typing import Any, Literal

from torch import nn

from model.bpm import InteractivenessNet, PairDetector, VerbNet
from model.config import ModelConfig


def build(cfg: ModelConfig, stage: Literal[1, 2], num_obj_classes: int, num_verbs: int) -> tuple[nn.Module, Any, Any]:
    """(network, criterion, post-processor) of ``stage``. The network is initialised from
    ``cfg.pretrained`` (COCO DETR-R50) when given; its import report is ``net.import_report``.
    Criterion and post-processor come from ``model.criterion.build_criterion`` and
    ``model.postprocess.build_postprocessor``, called with (cfg, stage, num_obj_classes,
    num_verbs); None while the function does not exist."""
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage}")
    net: PairDetector = (InteractivenessNet if stage == 1 else VerbNet)(cfg, num_obj_classes, num_verbs)
    net.import_report = None
    if cfg.pretrained is not None:
        from model.detr_import import load_detr

        net.import_report = load_detr(net, cfg.pretrained)
        print(f"model: {cfg.pretrained}: {net.import_report.summary()}")
    criterion = _optional("model.criterion", "build_criterion", cfg, stage, num_obj_classes, num_verbs)
    post = _optional("model.postprocess", "build_postprocessor", cfg, stage, num_obj_classes, num_verbs)
    return net, criterion, post


def from_spec(spec: dict) -> PairDetector:
    """The network a checkpoint describes (``net.spec()``), without weights or DETR import."""
    # checkpoints written before part_weighting existed used the literal eq. 7
    cfg = ModelConfig.model_validate({"part_weighting": "literal", **spec["config"], "pretrained": None,
                                      "backbone_weights": None})
    cls = InteractivenessNet if spec["stage"] == 1 else VerbNet
    return cls(cfg, spec["num_obj_classes"], spec["num_verbs"])


def param_groups(net: nn.Module, lr: float, lr_backbone: float) -> list[dict]:
    """Trainable parameters in two optimiser groups: the CNN backbone at ``lr_backbone``
    (DETR: 1e-5), everything else at ``lr``."""
    backbone, rest = [], []
    for name, p in net.named_parameters():
        if p.requires_grad:
            (backbone if name.startswith("extractor.backbone.") else rest).append(p)
    return [{"params": rest, "lr": lr}, {"params": backbone, "lr": lr_backbone}]


def _optional(module: str, fn: str, *args: Any) -> Any:
    """``module.fn(*args)``, or None when that module (or its ``fn``) does not exist yet."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise
    factory = getattr(mod, fn, None)
    return None if factory is None else factory(*args)
