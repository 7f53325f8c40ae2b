"""Box detector (Sec. 3.1): a transformer decoder over N_q pair queries and three heads,
human box f_h, object box f_o and object class f_c (+ no-object), as QPIC.

Two query types: ``plain`` (the paper: learned query embeddings, DETR's decoder) and
``anchor`` (the demo preset's option, DAB-DETR style): each query owns a learnable anchor pair
(human box + object box); its positional query is an MLP of the anchors' sine embedding, and
every layer refines the anchors (prediction = sigmoid(logit(anchor) + head(output)), detached
before the next layer), with the heads shared across layers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from model.config import ModelConfig
from model.position import sine_boxes
from model.transformer import Decoder, DecoderLayer, xavier_init


class MLP(nn.Module):
    """``n`` linear layers with ReLU between them (DETR's ``bbox_embed`` layout)."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int, n: int) -> None:
        super().__init__()
        dims = [d_in] + [d_hidden] * (n - 1) + [d_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else torch.relu(layer(x))
        return x


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    x = x.clamp(eps, 1 - eps)
    return torch.log(x / (1 - x))


class BoxDetector(nn.Module):
    """Memory -> decoded pair embeddings D and per-layer boxes and object logits."""

    def __init__(self, cfg: ModelConfig, num_obj_classes: int) -> None:
        super().__init__()
        d = cfg.hidden_dim
        self.query_type = cfg.query_type
        self.decoder = Decoder(DecoderLayer(d, cfg.nheads, cfg.dim_feedforward, cfg.dropout), cfg.dec_layers_box, d)
        xavier_init(self.decoder)
        self.obj_class_embed = nn.Linear(d, num_obj_classes + 1)
        self.sub_bbox_embed = MLP(d, d, 4, 3)
        self.obj_bbox_embed = MLP(d, d, 4, 3)
        if cfg.query_type == "plain":
            self.query_embed = nn.Embedding(cfg.num_queries, d)
        else:
            self.anchors = nn.Parameter(inverse_sigmoid(_initial_anchors(cfg.num_queries)))  # [Q, 8] logits
            self.anchor_pos = MLP(2 * d, d, d, 2)
            for head in (self.sub_bbox_embed, self.obj_bbox_embed):
                # start at the anchors; small, not zero, weights so the hidden layers learn too
                nn.init.uniform_(head.layers[-1].weight, -1e-3, 1e-3)
                nn.init.zeros_(head.layers[-1].bias)

    def forward(self, memory: Tensor, pos: Tensor, padding: Tensor) -> dict[str, Tensor]:
        """memory, pos [B, HW, C], padding [B, HW] -> "hs" [L, B, Q, C] (normalised layer
        outputs), "sub_boxes"/"obj_boxes" [L, B, Q, 4] (cx, cy, w, h in [0, 1]),
        "obj_logits" [L, B, Q, n_obj + 1]."""
        if self.query_type == "plain":
            query_pos = self.query_embed.weight[None].expand(memory.shape[0], -1, -1)
            hs, _ = self.decoder(memory, pos, query_pos, padding=padding)  # [L, B, Q, C]
            sub, obj = self.sub_bbox_embed(hs).sigmoid(), self.obj_bbox_embed(hs).sigmoid()
        else:
            hs, sub, obj = self._refine(memory, pos, padding)
        return {"hs": hs, "sub_boxes": sub, "obj_boxes": obj, "obj_logits": self.obj_class_embed(hs)}

    def _refine(self, memory: Tensor, pos: Tensor, padding: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Anchor queries refined layer by layer (loop over layers only)."""
        b, d = memory.shape[0], memory.shape[-1]
        ref = self.anchors.sigmoid()[None].expand(b, -1, -1)  # [B, Q, 8]
        tgt = memory.new_zeros(b, ref.shape[1], d)
        hs, subs, objs = [], [], []
        for layer in self.decoder.layers:
            query_pos = self.anchor_pos(sine_boxes(ref, 2 * d))  # [B, Q, C]
            tgt, _ = layer(tgt, memory, pos, query_pos, padding)
            h = self.decoder.norm(tgt)
            sub = (inverse_sigmoid(ref[..., :4]) + self.sub_bbox_embed(h)).sigmoid()
            obj = (inverse_sigmoid(ref[..., 4:]) + self.obj_bbox_embed(h)).sigmoid()
            ref = torch.cat([sub, obj], dim=-1).detach()  # refine, no gradient through anchors
            hs.append(h)
            subs.append(sub)
            objs.append(obj)
        return torch.stack(hs), torch.stack(subs), torch.stack(objs)


def _initial_anchors(n: int) -> Tensor:
    """[n, 8] anchor pairs: centres on a fixed quasi-random spread, human boxes 0.3 x 0.6,
    object boxes 0.2 x 0.2 near the human (deterministic, so checkpoints do not depend on RNG)."""
    i = torch.arange(n, dtype=torch.float32)
    cx = (0.5 + i * 0.6180339887) % 1.0 * 0.8 + 0.1
    cy = (0.5 + i * 0.7548776662) % 1.0 * 0.8 + 0.1
    sub = torch.stack([cx, cy, torch.full_like(cx, 0.3), torch.full_like(cx, 0.6)], -1)
    obj = torch.stack([(cx + 0.1).clamp(max=0.9), cy, torch.full_like(cx, 0.2), torch.full_like(cx, 0.2)], -1)
    return torch.cat([sub, obj], -1)
