"""The two networks of decision 1.

- :class:`InteractivenessNet` (stage 1): feature extractor + box detector + interactiveness
  classifier, trained with L_det + L_int.
- :class:`VerbNet` (stage 2): feature extractor + box detector + verb classifier, trained with
  L_det + L_verb.

Both share the names ``extractor.*`` and ``detector.*`` so stage 2 can start from stage 1's
weights, and both carry their own configuration (:meth:`spec`) for checkpoints.

Forward contract (both): ``net(images [B, 3, H, W] normalised, pixel_mask [B, H, W] True =
padding, part_masks [B, 6, h, w] | None (True = cell covered by that group of some person;
h, w = ceil(H/32), ceil(W/32); stage 2 ignores it), return_attention=False) -> dict`` with
"pred_obj_logits" [B, Q, n_obj + 1] (last = no-object), "pred_sub_boxes" / "pred_obj_boxes"
[B, Q, 4] (cx, cy, w, h in [0, 1] of the unpadded image), "aux_outputs" (one dict of those
three keys per earlier box-decoder layer; empty without aux loss); stage 1 adds
"pred_int_logits" [B, Q], "pred_part_scores" [B, Q, 6] (foot, leg, hip, hand, arm, head),
"pred_part_logits" [B, Q, 6] (not for no_parts), "part_selected" [B, Q, 6] (one-time passing),
"pred_part_int_logits" [B, Q, 6] (six-pass schemes); stage 2 adds "pred_verb_logits"
[B, Q, n_verb]; with return_attention, "attention" (see interactiveness.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from model.backbone import Backbone, valid_extent
from model.config import ModelConfig
from model.detector import BoxDetector
from model.interactiveness import InteractivenessClassifier, Scene
from model.masks import NUM_GROUPS
from model.position import sine_position
from model.transformer import Encoder, EncoderLayer, xavier_init
from model.verb import VerbClassifier


@dataclass
class Features:
    """Encoder output: memory and pos [B, HW, C], padding [B, HW] (True = padding), valid image
    size [B, 2] (H, W pixels) and the feature grid (h, w)."""

    memory: Tensor
    pos: Tensor
    padding: Tensor
    valid_hw: Tensor
    grid_hw: tuple[int, int]


class FeatureExtractor(nn.Module):
    """ResNet + 1x1 projection + transformer encoder with sine positions (Sec. 3.1)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.backbone = Backbone(cfg.backbone, cfg.backbone_weights, cfg.exact_padding)
        self.input_proj = nn.Conv2d(self.backbone.num_channels, cfg.hidden_dim, 1)
        layer = EncoderLayer(cfg.hidden_dim, cfg.nheads, cfg.dim_feedforward, cfg.dropout)
        self.encoder = Encoder(layer, cfg.enc_layers)
        xavier_init(self.encoder)
        self.hidden_dim = cfg.hidden_dim

    def forward(self, images: Tensor, pixel_mask: Tensor) -> Features:
        feats, mask = self.backbone(images, pixel_mask)  # [B, Cb, h, w], [B, h, w]
        src = self.input_proj(feats).flatten(2).transpose(1, 2)  # [B, HW, C]
        pos = sine_position(mask, self.hidden_dim)  # [B, HW, C]
        padding = mask.flatten(1)
        memory = self.encoder(src, pos, padding)
        return Features(memory, pos, padding, valid_extent(pixel_mask), tuple(mask.shape[-2:]))


class PairDetector(nn.Module):
    """Extractor + box detector, the part both stages share."""

    stage: int = 0

    def __init__(self, cfg: ModelConfig, num_obj_classes: int, num_verbs: int) -> None:
        super().__init__()
        self.config, self.num_obj_classes, self.num_verbs = cfg, num_obj_classes, num_verbs
        self.extractor = FeatureExtractor(cfg)
        self.detector = BoxDetector(cfg, num_obj_classes)

    def spec(self) -> dict:
        """Everything needed to rebuild this network (stored in checkpoints)."""
        return {"stage": self.stage, "config": self.config.model_dump(mode="json"),
                "num_obj_classes": self.num_obj_classes, "num_verbs": self.num_verbs}

    def _detect(self, images: Tensor, pixel_mask: Tensor) -> tuple[Features, dict, dict]:
        feats = self.extractor(images, pixel_mask)
        det = self.detector(feats.memory, feats.pos, feats.padding)
        keys = {"pred_obj_logits": "obj_logits", "pred_sub_boxes": "sub_boxes", "pred_obj_boxes": "obj_boxes"}
        out = {k: det[v][-1] for k, v in keys.items()}
        n_aux = det["hs"].shape[0] - 1 if self.config.aux_loss else 0
        out["aux_outputs"] = [{k: det[v][i] for k, v in keys.items()} for i in range(n_aux)]
        return feats, det, out


class InteractivenessNet(PairDetector):
    """Stage 1: boxes + interactiveness (L_det + L_int)."""

    stage = 1

    def __init__(self, cfg: ModelConfig, num_obj_classes: int, num_verbs: int = 0) -> None:
        super().__init__(cfg, num_obj_classes, num_verbs)
        self.interactiveness = InteractivenessClassifier(cfg)

    def forward(
        self, images: Tensor, pixel_mask: Tensor, part_masks: Tensor | None = None, return_attention: bool = False
    ) -> dict:
        feats, det, out = self._detect(images, pixel_mask)
        valid = ~feats.padding  # [B, HW]
        part = _grid_part_masks(part_masks, feats.grid_hw, valid)
        scene = Scene(feats.memory, feats.pos, valid, part, feats.valid_hw, feats.grid_hw)
        d = det["hs"][-1]  # [B, Q, C] decoded pair embeddings D (not detached, as the released code)
        out.update(self.interactiveness(d, scene, out["pred_sub_boxes"], out["pred_obj_boxes"], return_attention))
        return out


class VerbNet(PairDetector):
    """Stage 2: boxes + verbs (L_det + L_verb)."""

    stage = 2

    def __init__(self, cfg: ModelConfig, num_obj_classes: int, num_verbs: int) -> None:
        super().__init__(cfg, num_obj_classes, num_verbs)
        self.verb = VerbClassifier(cfg, num_verbs)

    def forward(
        self, images: Tensor, pixel_mask: Tensor, part_masks: Tensor | None = None, return_attention: bool = False
    ) -> dict:
        feats, det, out = self._detect(images, pixel_mask)
        logits, weights = self.verb(det["hs"][-1], feats.memory, feats.pos, feats.padding, return_attention)
        out["pred_verb_logits"] = logits
        if return_attention:
            b, q = out["pred_verb_logits"].shape[:2]
            visible = (~feats.padding)[:, None, None, :].expand(b, 1, q, -1).unflatten(-1, feats.grid_hw)
            w = torch.stack(weights).view(len(weights), b, 1, q, *feats.grid_hw)
            out["attention"] = {"weights": w, "visible": visible[None].expand(len(weights), -1, -1, -1, -1, -1)}
        return out


def _grid_part_masks(part_masks: Tensor | None, grid_hw: tuple[int, int], valid: Tensor) -> Tensor:
    """[B, 6, h', w'] (h' >= h) | None -> [B, 6, HW] on the feature grid, padding cleared.
    A larger grid (e.g. the released code's H//32 + 1) is cropped, as the released code does."""
    b, h, w = valid.shape[0], *grid_hw
    if part_masks is None:
        return valid.new_zeros(b, NUM_GROUPS, h * w)
    if part_masks.shape[-2] < h or part_masks.shape[-1] < w or part_masks.shape[:2] != (b, NUM_GROUPS):
        raise ValueError(f"part_masks {tuple(part_masks.shape)} do not cover the feature grid ({b}, 6, {h}, {w})")
    return part_masks[..., :h, :w].reshape(b, NUM_GROUPS, h * w).bool() & valid[:, None, :]
