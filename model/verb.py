"""Verb classifier (Sec. 3.1): a transformer decoder f_dec3 over the decoded pair embeddings D
(zero content, D as positional query, as the box decoder's DETR convention) and the sigmoid
verb head f_v (logits here; the sigmoid belongs to the loss and the post-processor)."""

from __future__ import annotations

from torch import Tensor, nn

from model.config import ModelConfig
from model.transformer import Decoder, DecoderLayer, xavier_init


class VerbClassifier(nn.Module):
    """D [B, Q, C] + memory -> verb logits [B, Q, n_verb] (and per-layer cross-attention)."""

    def __init__(self, cfg: ModelConfig, num_verbs: int) -> None:
        super().__init__()
        d = cfg.hidden_dim
        self.decoder = Decoder(DecoderLayer(d, cfg.nheads, cfg.dim_feedforward, cfg.dropout), cfg.dec_layers_verb, d)
        xavier_init(self.decoder)
        self.verb_class_embed = nn.Linear(d, num_verbs)

    def forward(
        self, d: Tensor, memory: Tensor, pos: Tensor, padding: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, list]:
        """-> logits of the last layer [B, Q, n_verb] and the per-layer weights [B, Q, HW]."""
        hs, weights = self.decoder(memory, pos, d, padding=padding, need_weights=need_weights)
        return self.verb_class_embed(hs[-1]), weights
