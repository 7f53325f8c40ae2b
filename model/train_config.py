"""The ``train`` params section: schedule, optimiser, sampling, augmentation and the loss and
matching coefficients, one class each, nested as in params.yaml. The training loop
(model/engine.py), the criterion (model/criterion.py) and the matcher (model/matcher.py) read
these objects as given: no setting is defined a second time with another default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from model.common.section import Section
from model.transforms import AugmentConfig

class StageSchedule(Section):
    """Length of one stage and the step of its learning-rate drop (x0.1), in ``unit``."""

    unit: Literal["iterations", "epochs"] = "iterations"
    length: int = Field(1500, ge=1)
    lr_drop: int = Field(1200, ge=0)  # >= length: no drop


class LossConfig(Section):
    """``train.loss``: the criterion's coefficients and loss choices (model/criterion.py) and
    the Hungarian matcher's costs, ``cost_*`` (model/matcher.py); QPIC's values (decision 3)."""

    obj_ce: float = 1.0
    bbox: float = 2.5
    giou: float = 1.0
    int: float = 1.0
    verb: float = 1.0
    consistency: float = 0.0  # released code's MSE(p_int, max_k p_part^k); not in the paper
    part: float = Field(0.0, ge=0)  # Sec. 5.3: BCE of matched queries' part scores vs pairs.part_labels; 0 = off
    eos_coef: float = 0.1
    int_loss: Literal["bce", "focal"] = "bce"  # bce (released code) | focal
    focal_gamma: float = Field(2.0, ge=0)  # gamma of the focal losses (verbs; int_loss focal)
    aux: bool = True
    cost_class: float = 1.0
    cost_bbox: float = 2.5
    cost_giou: float = 1.0
    cost_int: float = 1.0
    cost_verb: float = 1.0


class TrainConfig(Section):
    """The ``train`` params. The defaults fill keys a params file leaves out; the named presets
    are complete files (``demo`` = params.yaml as shipped, ``paper`` = data/presets/paper-*.yaml)."""

    alpha: float = Field(3.0, gt=0)  # sparsity-adaptive sampling: crowded images alpha x as likely
    batch_size: int = Field(16, ge=1)  # global batch (all processes together) per optimiser step
    accumulate: int = Field(1, ge=1)  # micro-batches per step and process, of batch_size / (processes x accumulate)
    lr: float = Field(2e-4, gt=0)
    lr_backbone: float = Field(2e-4, ge=0)
    weight_decay: float = Field(1e-4, ge=0)
    clip_max_norm: float = Field(0.1, ge=0)  # 0 = no clipping
    warmup: int = Field(50, ge=0)  # iterations of linear warm-up
    stage1: StageSchedule = StageSchedule(length=1500, lr_drop=1200)
    stage2: StageSchedule = StageSchedule(length=1000, lr_drop=800)
    stage2_init: Literal["stage1", "pretrained", "scratch"] = "stage1"
    val_fraction: float = Field(0.1, ge=0, lt=1)  # of the training images
    val_every: int = Field(250, ge=0)  # iterations; 0 = once per sampler epoch
    checkpoint_every: int = Field(250, ge=0)  # iterations; 0 = once per sampler epoch
    amp: bool = True  # CUDA only (changes float results on GPU: a result setting, not runtime)
    augment: AugmentConfig = AugmentConfig()
    loss: LossConfig = LossConfig()
