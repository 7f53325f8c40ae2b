"""Every switch of the network (params.yaml section ``model``), validated by pydantic.

Two presets, each defined once as a complete params file: ``paper`` = data/presets/paper-*.yaml
(R50, d 256, 6 encoder / 6 box-decoder / 3 interactiveness / 6 verb layers, 64 queries for
HICO-DET, 100 for V-COCO; the class defaults below are its values) and ``demo`` = params.yaml
as shipped (small backbone, d 128, 2 + 2 layers, 16 anchor queries, no dropout, 192-256 px).
:data:`PRESETS` is their ``model`` section for code and benchmarks (without the DETR weight
file); tests/pipeline/test_presets.py keeps it equal to those files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from model.common.section import Section

BackboneName = Literal["resnet18", "resnet34", "resnet50", "resnet101", "demo"]
Ablation = Literal["full", "no_parts", "no_saliency", "intuitive", "no_progressive", "no_one_time"]


class ModelConfig(Section):
    """The network: extractor, box detector, interactiveness classifier, verb classifier.

    ``ablation`` selects a Table-5 row: ``full`` (progressive masks + one-time passing),
    ``no_progressive`` (eq. 4's mask in all three layers), ``no_one_time`` (six part passes with
    the progressive masks of eqs. 3-5, no filtering/merging), ``intuitive`` (six part passes
    with m = m_part^k in every layer, Sec. 3.2), ``no_saliency`` (intuitive with all-ones
    masks), ``no_parts`` (instance level only: one unmasked pass, no part queries).
    """

    # visual feature extractor
    backbone: BackboneName = "resnet50"
    backbone_weights: Path | None = None  # torchvision ImageNet state dict (optional)
    pretrained: Path | None = None  # COCO DETR-R50 checkpoint (model/detr_import.py)
    exact_padding: bool = True  # zero padded positions before every backbone conv
    hidden_dim: int = Field(256, ge=8)
    nheads: int = Field(8, ge=1)
    dim_feedforward: int = Field(2048, ge=8)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    enc_layers: int = Field(6, ge=0)
    # box detector
    dec_layers_box: int = Field(6, ge=1)
    num_queries: int = Field(64, ge=1)
    query_type: Literal["plain", "anchor"] = "plain"
    aux_loss: bool = True
    # interactiveness classifier (stage 1)
    dec_layers_int: int = Field(3, ge=1, le=3)  # layer j uses eq. (2 + j); fewer = truncated
    stride: Literal[32] = 32
    mask_rule: Literal["touch", "corner"] = "touch"  # decision 4
    part_filter: Literal["fraction", "per_query_topk"] = "fraction"  # decision 5
    part_filter_fraction: float = Field(0.25, gt=0.0, le=1.0)
    part_filter_topk: int = Field(3, ge=1, le=6)
    # eq. 7's part weights: literal (n p_part: frozen filter, issue 13) | soft (p_part; n on masks
    # only) | straight_through (literal forward, soft gradient); README "Fidelity"
    part_weighting: Literal["literal", "soft", "straight_through"] = "soft"
    ablation: Ablation = "full"
    # verb classifier (stage 2)
    dec_layers_verb: int = Field(6, ge=1)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "ModelConfig":
        if self.hidden_dim % self.nheads:
            raise ValueError(f"hidden_dim {self.hidden_dim} is not divisible by nheads {self.nheads}")
        if self.hidden_dim % 8:
            raise ValueError("hidden_dim must be a multiple of 8 (sine encodings of 8 box coordinates)")
        return self


PRESETS: dict[str, dict] = {
    "paper": {},
    "demo": {
        "backbone": "demo", "hidden_dim": 128, "nheads": 8, "dim_feedforward": 512,
        "enc_layers": 2, "dec_layers_box": 2, "dec_layers_verb": 2, "num_queries": 16,
        "query_type": "anchor", "dropout": 0.0,
    },
}


def preset(name: str, **overrides) -> ModelConfig:
    """A documented preset (``paper`` | ``demo``) with optional overrides."""
    return ModelConfig.model_validate({**PRESETS[name], **overrides})
