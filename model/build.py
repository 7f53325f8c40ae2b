"""Build a stage's network with its criterion and post-processor (DETR's ``build`` pattern),
and rebuild a network from a checkpoint's spec. The optimiser groups are model/engine.make_optimizer's."""

from __future__ import annotations

from typing import Literal

from model.bpm import InteractivenessNet, PairDetector, VerbNet
from model.config import ModelConfig
from model.criterion import SetCriterion, build_criterion
from model.label_space import LabelSpace
from model.postprocess import PostProcess, PostprocessConfig
from model.train_config import LossConfig


def build(cfg: ModelConfig, stage: Literal[1, 2], labels: LabelSpace, loss: LossConfig | None = None,
          post: PostprocessConfig | None = None) -> tuple[PairDetector, SetCriterion, PostProcess]:
    """(network, criterion, post-processor) of ``stage`` for the classes of ``labels``.

    The network is initialised from ``cfg.pretrained`` (COCO DETR-R50) when given; its import
    report is ``net.import_report``. The criterion's coefficients and matching costs are ``loss``
    (``train.loss``), the post-processor's NIS / pair NMS / top-K settings ``post``
    (``postprocess``); defaults when None."""
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage}")
    n_obj, n_verb = labels.num_objects, labels.num_verbs
    net: PairDetector = (InteractivenessNet if stage == 1 else VerbNet)(cfg, n_obj, n_verb)
    net.import_report = None
    if cfg.pretrained is not None:
        from model.detr_import import load_detr

        net.import_report = load_detr(net, cfg.pretrained)
        print(f"model: {cfg.pretrained}: {net.import_report.summary()}")
    return net, build_criterion(stage, n_obj, n_verb, loss), PostProcess(labels, post or PostprocessConfig())


def from_spec(spec: dict) -> PairDetector:
    """The network a checkpoint describes (``net.spec()``), without weights or DETR import."""
    # checkpoints written before part_weighting existed used the literal eq. 7
    cfg = ModelConfig.model_validate({"part_weighting": "literal", **spec["config"], "pretrained": None,
                                      "backbone_weights": None})
    cls = InteractivenessNet if spec["stage"] == 1 else VerbNet
    return cls(cfg, spec["num_obj_classes"], spec["num_verbs"])
