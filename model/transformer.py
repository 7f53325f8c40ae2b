"""Post-norm transformer encoder and decoder layers (DETR's), batch-first.

Module and parameter names match DETR's ``transformer.encoder/decoder.*`` so the COCO
checkpoint loads name for name. Decoder layers take a per-query, per-head cross-attention mask
``[B * heads, Q, HW]`` (True = hidden, PyTorch's polarity) so that every query of every image
sees its own tokens in one batched call; callers build it with model/masks.py.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class EncoderLayer(nn.Module):
    """Self-attention over image tokens + FFN, post-norm."""

    def __init__(self, d: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.linear1, self.linear2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.dropout, self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, src: Tensor, pos: Tensor, padding: Tensor) -> Tensor:
        """src, pos [B, HW, C]; padding [B, HW] (True = padding) -> [B, HW, C]."""
        qk = src + pos
        sa = self.self_attn(qk, qk, src, key_padding_mask=padding, need_weights=False)[0]
        src = self.norm1(src + self.dropout1(sa))
        return self.norm2(src + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(src))))))


class Encoder(nn.Module):
    """A stack of encoder layers (no final norm: DETR's post-norm setting has none)."""

    def __init__(self, layer: EncoderLayer, n: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(n))

    def forward(self, src: Tensor, pos: Tensor, padding: Tensor) -> Tensor:
        for layer in self.layers:
            src = layer(src, pos, padding)
        return src


class DecoderLayer(nn.Module):
    """Query self-attention, cross-attention to image tokens, FFN; post-norm.

    DETR's convention: the content ``tgt`` carries what has been decoded, ``query_pos`` is added
    to queries and keys of self-attention and to the queries of cross-attention.
    """

    def __init__(self, d: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.multihead_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.linear1, self.linear2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.dropout = nn.Dropout(dropout)
        self.dropout1, self.dropout2, self.dropout3 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        pos: Tensor,
        query_pos: Tensor,
        padding: Tensor | None = None,
        hidden: Tensor | None = None,
        self_hidden: Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """tgt, query_pos [B, Q, C]; memory, pos [B, HW, C]; ``padding`` [B, HW] key padding
        (used when ``hidden`` is None); ``hidden`` [B * heads, Q, HW] cross-attention mask that
        already hides padding; ``self_hidden`` [Q, Q] self-attention mask (True = hidden).
        Returns the new tgt [B, Q, C] and, with need_weights, head-averaged cross-attention
        weights [B, Q, HW]."""
        q = tgt + query_pos
        sa = self.self_attn(q, q, tgt, attn_mask=self_hidden, need_weights=False)[0]
        tgt = self.norm1(tgt + self.dropout1(sa))
        ca, weights = self.multihead_attn(
            tgt + query_pos, memory + pos, memory,
            key_padding_mask=padding if hidden is None else None, attn_mask=hidden,
            need_weights=need_weights,
        )
        tgt = self.norm2(tgt + self.dropout2(ca))
        tgt = self.norm3(tgt + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(tgt))))))
        return tgt, weights


class Decoder(nn.Module):
    """A stack of decoder layers plus the final LayerNorm applied to every layer's output."""

    def __init__(self, layer: DecoderLayer, n: int, d: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(n))
        self.norm = nn.LayerNorm(d)
        # The first layer self-attends over zero content: every value is the same bias, so its
        # q/k/v input projection never receives a gradient (in DETR too). Freezing it changes
        # nothing but makes "every trainable parameter learns" literally true.
        self.layers[0].self_attn.in_proj_weight.requires_grad_(False)

    def forward(
        self,
        memory: Tensor,
        pos: Tensor,
        query_pos: Tensor,
        padding: Tensor | None = None,
        hidden: list[Tensor | None] | None = None,
        self_hidden: Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, list[Tensor | None]]:
        """Zero content, ``query_pos`` [B, Q, C] -> normalised outputs of every layer
        [L, B, Q, C] and the per-layer cross-attention weights. ``hidden[j]`` is layer j's
        cross-attention mask (None: key padding only)."""
        tgt = query_pos.new_zeros(query_pos.shape)
        outs, weights = [], []
        for j, layer in enumerate(self.layers):
            mask = None if hidden is None else hidden[j]
            tgt, w = layer(tgt, memory, pos, query_pos, padding, mask, self_hidden, need_weights)
            outs.append(self.norm(tgt))
            weights.append(w)
        return torch.stack(outs), weights


def xavier_init(module: nn.Module) -> None:
    """DETR's init: xavier-uniform for every parameter with more than one dimension."""
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
