"""Initialise a network from the public COCO DETR-R50 checkpoint, the way QPIC and CDN convert it.

Name mapping (DETR -> ours):
- ``backbone.0.body.*`` -> ``extractor.backbone.body.*``; ``input_proj.*`` -> ``extractor.input_proj.*``;
  ``transformer.encoder.*`` -> ``extractor.encoder.*``;
- ``transformer.decoder.*`` -> ``detector.decoder.*`` and, for stage 2, also ``verb.decoder.*``
  (CDN initialises its interaction decoder from DETR's decoder);
- ``query_embed.weight`` [100, C] -> the first N_q rows (plain queries only);
- ``bbox_embed.*`` -> both ``detector.sub_bbox_embed.*`` and ``detector.obj_bbox_embed.*``;
- ``class_embed`` [92, C] -> ``detector.obj_class_embed``: rows of the HOI objects' COCO ids
  (ascending) then DETR's no-object row 91; extra model classes (V-COCO's 81st) keep their init.
Already converted QPIC/CDN files (``obj_class_embed``, ``sub_bbox_embed``, ``verb_class_embed``,
``transformer.interaction_decoder``) load too, and so do files already in our names (written by
``cli.py weights import-detr``), name for name and shape for shape. Everything else keeps its
initialisation.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor, nn

from model.torch_file import read_torch_file
from model.common.errors import UserError

# The 80 COCO category ids of HICO-DET's (and V-COCO's) objects, ascending; DETR's class index
# is the COCO id itself, 91 is its no-object class.
COCO_OBJECT_IDS = tuple(i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83))
DETR_NO_OBJECT = 91

PREFIXES = (
    ("backbone.0.body.", ("extractor.backbone.body.",)),
    ("input_proj.", ("extractor.input_proj.",)),
    ("transformer.encoder.", ("extractor.encoder.",)),
    ("transformer.decoder.", ("detector.decoder.", "verb.decoder.")),
    ("transformer.interaction_decoder.", ("verb.decoder.",)),
    ("transformer.verb_decoder.", ("verb.decoder.",)),
    ("bbox_embed.", ("detector.sub_bbox_embed.", "detector.obj_bbox_embed.")),
    ("sub_bbox_embed.", ("detector.sub_bbox_embed.",)),
    ("obj_bbox_embed.", ("detector.obj_bbox_embed.",)),
    ("obj_class_embed.", ("detector.obj_class_embed.",)),
    ("verb_class_embed.", ("verb.verb_class_embed.",)),
)
# our stage-specific modules: in a file written for both stages, the other stage's are skipped
OTHER_STAGE = ("interactiveness.", "verb.")


@dataclass
class ImportReport:
    """What a checkpoint import did: model keys loaded, checkpoint keys skipped (with the
    reason), model keys left at their initialisation."""

    loaded: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    initialised: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"loaded {len(self.loaded)} tensors, skipped {len(self.skipped)} checkpoint keys, "
                f"initialised {len(self.initialised)} tensors")


def read_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """The state dict of a DETR/QPIC/CDN checkpoint file (``{"model": ...}`` or a bare dict),
    read with ``weights_only=True``; DETR's files also hold an argparse Namespace of settings."""
    ckpt = read_torch_file(path, "DETR checkpoint", safe_globals=[argparse.Namespace])
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise UserError(f"{path}: expected a state dict or {{'model': state dict}}")
    return state


def convert(
    state: dict[str, Tensor], net: nn.Module, coco_ids: Sequence[int] = COCO_OBJECT_IDS
) -> tuple[dict[str, Tensor], ImportReport]:
    """Map a DETR-named state dict onto ``net``'s names and shapes -> (state for net, report)."""
    target = net.state_dict()
    mapped: dict[str, Tensor] = {}
    report = ImportReport()
    for key, value in state.items():
        names, reason = _target_names(key, target)
        for name in names:
            tensor, reason = _fit(key, value, target[name], coco_ids)
            if tensor is not None:
                mapped[name] = tensor
        if not any(n in mapped for n in names):
            report.skipped[key] = reason or "no counterpart in this network"
    report.loaded = sorted(mapped)
    report.initialised = sorted(set(target) - set(mapped))
    return mapped, report


def _target_names(key: str, target: dict[str, Tensor]) -> tuple[list[str], str]:
    if key in target:  # already our name (weights import-detr); DETR's names never are
        return [key], ""
    if key.startswith(OTHER_STAGE):
        return [], "a module of the other stage's network"
    if key == "query_embed.weight":
        name = "detector.query_embed.weight"
        return ([name], "") if name in target else ([], "anchor-box queries have no query embeddings")
    if key.startswith("class_embed."):
        return ["detector.obj_class_embed." + key.split(".", 1)[1]], ""
    for src, dsts in PREFIXES:
        if key.startswith(src):
            names = [d + key[len(src):] for d in dsts]
            return [n for n in names if n in target], ""
    return [], ""


def _fit(key: str, value: Tensor, current: Tensor, coco_ids: Sequence[int]) -> tuple[Tensor | None, str]:
    """The checkpoint tensor reshaped to the model's tensor, or (None, why not)."""
    if key == "query_embed.weight":
        if value.shape[0] < current.shape[0] or value.shape[1:] != current.shape[1:]:
            return None, f"query_embed {tuple(value.shape)} cannot give {tuple(current.shape)}"
        return value[: current.shape[0]].clone(), ""  # QPIC/CDN: keep the first N_q queries
    if key.startswith("class_embed.") and value.shape[0] == DETR_NO_OBJECT + 1:
        if current.shape[0] < len(coco_ids) + 1:
            return None, f"{current.shape[0] - 1} object classes, fewer than {len(coco_ids)}"
        if value.shape[1:] != current.shape[1:]:
            return None, f"class head {tuple(value.shape)} cannot give {tuple(current.shape)}"
        out = current.clone()
        out[: len(coco_ids)] = value[list(coco_ids)]
        out[-1] = value[DETR_NO_OBJECT]
        return out, ""
    if value.shape != current.shape:
        return None, f"shape {tuple(value.shape)} != model {tuple(current.shape)}"
    return value.clone().to(current.dtype), ""


def load_detr(
    net: nn.Module, source: str | Path | dict[str, Tensor], coco_ids: Sequence[int] = COCO_OBJECT_IDS
) -> ImportReport:
    """Initialise ``net`` from a DETR-R50 (or QPIC/CDN-converted) checkpoint file or state dict."""
    state = read_checkpoint(source) if isinstance(source, (str, Path)) else source
    mapped, report = convert(state, net, coco_ids)
    net.load_state_dict(mapped, strict=False)
    return report


def transfer(
    source: dict[str, Tensor], net: nn.Module, prefixes: Sequence[str] = ("extractor.", "detector.")
) -> ImportReport:
    """Stage 2 from stage 1 (decision 1): copy the shared modules by name and shape."""
    target = net.state_dict()
    mapped = {k: v for k, v in source.items()
              if k.startswith(tuple(prefixes)) and k in target and v.shape == target[k].shape}
    net.load_state_dict(mapped, strict=False)
    skipped = {k: "not shared or shape differs" for k in source if k not in mapped}
    return ImportReport(sorted(mapped), skipped, sorted(set(target) - set(mapped)))
