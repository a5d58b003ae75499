"""WSAC prefix decoder: a caption decoder conditioned on one frozen joint-space embedding.

Kouzelis & Katsouros, "Weakly-supervised Automated Audio Captioning via text only training"
(DCASE 2023 workshop): a CLAP embedding (text at training time, audio at inference) is mapped
by a 2-layer MLP to a prefix of ``prefix_len`` vectors (ClipCap-style, Mokady et al. 2021),
followed by the caption tokens; a 4-layer, 4-head causal Transformer trained from scratch
predicts the next token. The model returns logits; the loss and the decoding strategy live
elsewhere (:func:`audiocap.losses.caption_ce`, :mod:`audiocap.decoding.wsac`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class PrefixDecoderConfig:
    """Shape of the prefix decoder (defaults: the paper's 4 layers / 4 heads, CPU-sized width)."""

    vocab_size: int = 5000
    emb_dim: int = 384  # dimension of the frozen joint-space embedding
    prefix_len: int = 8
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    mlp_hidden: int = 1024  # hidden width of the 2-layer mapping network
    max_len: int = 40  # longest caption in tokens, including <bos>/<eos>
    dropout: float = 0.1
    pad_id: int = 0


class PrefixDecoder(nn.Module):
    """Embedding -> MLP prefix -> causal Transformer over [prefix; tokens] -> word logits."""

    def __init__(self, cfg: PrefixDecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, p = cfg.d_model, cfg.prefix_len
        self.mapping = nn.Sequential(
            nn.Linear(cfg.emb_dim, cfg.mlp_hidden), nn.GELU(), nn.Linear(cfg.mlp_hidden, p * d)
        )
        self.tok_emb = nn.Embedding(cfg.vocab_size, d, padding_idx=cfg.pad_id)
        self.pos_emb = nn.Parameter(torch.zeros(1, p + cfg.max_len, d))
        layer = nn.TransformerEncoderLayer(
            d, cfg.n_heads, 4 * d, cfg.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # tied input/output word embeddings
        nn.init.normal_(self.pos_emb, std=0.02)
        nn.init.normal_(self.tok_emb.weight, std=0.02)  # GPT-2 init; N(0, 1) makes tied logits huge

    def prefix(self, emb: torch.Tensor) -> torch.Tensor:
        """Map joint-space embeddings (B, E) to prefixes (B, P, D)."""
        return self.mapping(emb).view(emb.shape[0], self.cfg.prefix_len, self.cfg.d_model)

    def forward(self, emb: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) for the token after each of ``tokens`` (B, T), given ``emb`` (B, E).

        ``tokens`` starts with <bos>; position t of the output scores token t+1. Pad positions
        are masked as keys, so padded and unpadded batches give the same logits.
        """
        B, T = tokens.shape
        P = self.cfg.prefix_len
        if P + T > self.pos_emb.shape[1]:
            raise ValueError(f"sequence of {T} tokens exceeds max_len={self.cfg.max_len}")
        x = torch.cat([self.prefix(emb), self.tok_emb(tokens)], dim=1)  # (B, P+T, D)
        x = x + self.pos_emb[:, : P + T]
        causal = torch.triu(torch.ones(P + T, P + T, dtype=torch.bool, device=x.device), diagonal=1)
        pad = torch.cat([torch.zeros(B, P, dtype=torch.bool, device=x.device), tokens == self.cfg.pad_id], 1)
        pad[:, P] = False  # <bos> is never padding (pad_id may equal bos in odd vocabularies)
        x = self.blocks(x, mask=causal, src_key_padding_mask=pad)  # (B, P+T, D)
        return self.head(self.norm(x[:, P:]))  # (B, T, V)
