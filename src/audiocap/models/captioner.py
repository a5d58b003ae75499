"""Audio captioner: frame embeddings -> trainable audio encoder -> Transformer decoder -> words.

The encoder-decoder captioner of the DCASE Task 6 systems (Mei et al. 2021, "Audio captioning
transformer"; the Xiaomi DCASE 2023 system; the DCASE 2024 baseline). Frame embeddings of a
frozen audio tower (computed outside the model and usually cached) go through a trainable
audio encoder (3-layer bidirectional GRU or Transformer encoder), and a 2-layer pre-LN
Transformer decoder over word embeddings cross-attends to it and predicts the next word.

The model returns logits and the hidden states the auxiliary heads need; it never decodes and
never computes its loss. Heads: CL4AC (Liu et al. 2022, "CL4AC: a contrastive loss for audio
captioning") is ``Linear(d, 2)`` on the decoder state at the last non-pad token; the NT-Xent
auxiliary (DCASE 2024 Task 6 reports) projects the pooled encoder output and the pooled
decoder states. :meth:`Captioner.decode` takes a :class:`DecoderCache` so that a decoding step
feeds only the new token: self-attention keys/values of the prefix and the cross-attention
keys/values of the audio are kept per layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class CaptionerConfig:
    """Shape of a captioner (nanoGPT-style: the defaults are the small recipe)."""

    vocab_size: int = 0
    frame_dim: int = 512  # frozen tower frame embedding size
    d_model: int = 256
    encoder: Literal["gru", "transformer"] = "gru"
    encoder_layers: int = 3
    decoder_layers: int = 2
    heads: int = 4
    ff_dim: int = 1024
    dropout: float = 0.2
    max_len: int = 40  # longest token sequence incl. <bos>/<eos>
    proj_dim: int = 128  # NT-Xent projection size
    pad_id: int = 0


def sinusoid(length: int, dim: int, device: torch.device) -> Tensor:
    """Sinusoidal positions (Vaswani et al. 2017) of shape ``(length, dim)``."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / dim))
    out = torch.zeros(length, dim, device=device)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq)
    return out


class AudioEncoder(nn.Module):
    """Trainable encoder over frozen frame embeddings: biGRU or Transformer, output ``d_model``."""

    def __init__(self, cfg: CaptionerConfig) -> None:
        super().__init__()
        self.kind = cfg.encoder
        self.inp = nn.Sequential(nn.Linear(cfg.frame_dim, cfg.d_model), nn.LayerNorm(cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)
        if cfg.encoder == "gru":
            self.rnn = nn.GRU(cfg.d_model, cfg.d_model // 2, num_layers=cfg.encoder_layers,
                              batch_first=True, bidirectional=True, dropout=cfg.dropout)
        else:
            layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.heads, cfg.ff_dim, cfg.dropout,
                                               batch_first=True, norm_first=True)
            self.tf = nn.TransformerEncoder(layer, cfg.encoder_layers, enable_nested_tensor=False)
        self.out_norm = nn.LayerNorm(cfg.d_model)

    def forward(self, frame_embs: Tensor, frame_mask: Tensor) -> Tensor:
        """``frame_embs`` (B, T, F), ``frame_mask`` (B, T) True on real frames -> (B, T, d)."""
        x = self.drop(self.inp(frame_embs))  # (B, T, d)
        if self.kind == "gru":
            lengths = frame_mask.sum(1).clamp(min=1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.rnn(packed)
            x, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        else:
            x = x + sinusoid(x.shape[1], x.shape[2], x.device)
            x = self.tf(x, src_key_padding_mask=~frame_mask)
        return self.out_norm(x) * frame_mask[..., None]  # (B, T, d)


@dataclass
class DecoderCache:
    """Per-layer keys/values kept between decoding steps.

    ``self_kv[i]`` holds the self-attention keys/values of every token fed so far (B, H, L, hd);
    ``cross_kv[i]`` the cross-attention keys/values of the audio (B, H, T, hd), computed once.
    """

    self_kv: list[tuple[Tensor, Tensor] | None]
    cross_kv: list[tuple[Tensor, Tensor]]
    memory_mask: Tensor  # (B, T)

    @property
    def length(self) -> int:
        kv = self.self_kv[0]
        return 0 if kv is None else kv[0].shape[2]

    def select(self, index: Tensor) -> "DecoderCache":
        """Keep/reorder/duplicate rows (e.g. beams) by ``index`` (N,) along the batch dim."""
        pick = lambda kv: None if kv is None else (kv[0][index], kv[1][index])  # noqa: E731
        return DecoderCache([pick(kv) for kv in self.self_kv],
                            [pick(kv) for kv in self.cross_kv], self.memory_mask[index])


class DecoderLayer(nn.Module):
    """Pre-LN decoder block: causal self-attention, cross-attention to audio, MLP."""

    def __init__(self, d: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.self_out = nn.Linear(d, d)
        self.q_cross = nn.Linear(d, d)
        self.kv_cross = nn.Linear(d, 2 * d)
        self.cross_out = nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, ff_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_dim, d))
        self.drop = nn.Dropout(dropout)
        self.p = dropout

    def _heads(self, x: Tensor) -> Tensor:  # (B, L, d) -> (B, H, L, hd)
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def memory_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-attention keys and values of the audio memory (B, T, d) -> 2 x (B, H, T, hd)."""
        k, v = self.kv_cross(memory).chunk(2, dim=-1)
        return self._heads(k), self._heads(v)

    def forward(self, x: Tensor, past: tuple[Tensor, Tensor] | None, cross: tuple[Tensor, Tensor],
                cross_mask: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """``x`` (B, S, d) new tokens after ``past`` (B, H, P, hd) ones -> (B, S, d), new past."""
        b, s, d = x.shape
        p = self.p if self.training else 0.0
        q, k, v = (self._heads(t) for t in self.qkv(self.ln1(x)).chunk(3, dim=-1))
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        if s == 1:  # one new token sees the whole prefix
            att = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        elif past is None:
            att = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:  # several new tokens after a prefix: causal mask offset by the prefix length
            n = k.shape[2]
            mask = torch.ones(s, n, dtype=torch.bool, device=x.device).tril(n - s)
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        x = x + self.drop(self.self_out(att.transpose(1, 2).reshape(b, s, d)))
        qc = self._heads(self.q_cross(self.ln2(x)))
        att = F.scaled_dot_product_attention(qc, cross[0], cross[1], attn_mask=cross_mask[:, None, None, :],
                                             dropout_p=p)
        x = x + self.drop(self.cross_out(att.transpose(1, 2).reshape(b, s, d)))
        x = x + self.drop(self.mlp(self.ln3(x)))
        return x, (k, v)


class Captioner(nn.Module):
    """Frame embeddings + caption prefix -> next-word logits (plus CL4AC / NT-Xent heads)."""

    def __init__(self, cfg: CaptionerConfig) -> None:
        super().__init__()
        if cfg.vocab_size <= 4:
            raise ValueError("CaptionerConfig.vocab_size must be set from the vocabulary")
        self.cfg = cfg
        d = cfg.d_model
        self.encoder = AudioEncoder(cfg)
        self.word_emb = nn.Embedding(cfg.vocab_size, d, padding_idx=cfg.pad_id)
        self.pos_emb = nn.Embedding(cfg.max_len, d)
        self.emb_drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(DecoderLayer(d, cfg.heads, cfg.ff_dim, cfg.dropout)
                                    for _ in range(cfg.decoder_layers))
        self.ln_f = nn.LayerNorm(d)
        self.classifier = nn.Linear(d, cfg.vocab_size)
        self.cl4ac_head = nn.Linear(d, 2)  # CL4AC matched / mismatched
        self.audio_proj = nn.Linear(d, cfg.proj_dim)  # NT-Xent projections
        self.text_proj = nn.Linear(d, cfg.proj_dim)

    def encode(self, frame_embs: Tensor, frame_mask: Tensor) -> Tensor:
        """Frozen-tower frames (B, T, F) with mask (B, T) -> audio memory (B, T, d)."""
        return self.encoder(frame_embs, frame_mask)

    def start(self, memory: Tensor, memory_mask: Tensor) -> DecoderCache:
        """An empty decoding cache for ``memory`` (B, T, d): cross keys/values computed once."""
        return DecoderCache([None] * len(self.layers), [l.memory_kv(memory) for l in self.layers], memory_mask)

    def decode(self, caption_ids: Tensor, cache: DecoderCache) -> tuple[Tensor, Tensor, DecoderCache]:
        """Feed ``caption_ids`` (B, S) after the tokens already in ``cache``.

        Returns logits (B, S, V), final hidden states (B, S, d) and the extended cache. With a
        fresh cache and the whole caption this is the teacher-forced training pass; with one
        token at a time it is incremental decoding (same numbers, no prefix recomputation).
        """
        b, s = caption_ids.shape
        start = cache.length
        if start + s > self.cfg.max_len:
            raise ValueError(f"sequence of {start + s} tokens exceeds max_len={self.cfg.max_len}")
        pos = torch.arange(start, start + s, device=caption_ids.device)
        x = self.emb_drop(self.word_emb(caption_ids) + self.pos_emb(pos)[None])  # (B, S, d)
        new_self = []
        for layer, past, cross in zip(self.layers, cache.self_kv, cache.cross_kv):
            x, kv = layer(x, past, cross, cache.memory_mask)
            new_self.append(kv)
        hidden = self.ln_f(x)  # (B, S, d)
        return self.classifier(hidden), hidden, DecoderCache(new_self, cache.cross_kv, cache.memory_mask)

    def forward(self, frame_embs: Tensor, frame_mask: Tensor, caption_ids: Tensor) -> dict[str, Tensor]:
        """Teacher-forced pass: logits (B, L, V) for ``caption_ids`` (B, L) plus states for heads."""
        memory = self.encode(frame_embs, frame_mask)  # (B, T, d)
        logits, hidden, _ = self.decode(caption_ids, self.start(memory, frame_mask))
        return {"logits": logits, "hidden": hidden, "memory": memory, "memory_mask": frame_mask}

    def cl4ac_logits(self, hidden: Tensor, caption_ids: Tensor) -> Tensor:
        """CL4AC: Linear(d, 2) on the decoder state at the last non-pad token -> (B, 2)."""
        last = (caption_ids != self.cfg.pad_id).sum(1).clamp(min=1) - 1  # (B,)
        return self.cl4ac_head(hidden[torch.arange(hidden.shape[0], device=hidden.device), last])

    def audio_embedding(self, memory: Tensor, memory_mask: Tensor) -> Tensor:
        """Masked mean of the audio memory, projected (B, P) (not normalized)."""
        m = memory_mask[..., None].to(memory.dtype)
        return self.audio_proj((memory * m).sum(1) / m.sum(1).clamp(min=1))

    def text_embedding(self, hidden: Tensor, caption_ids: Tensor) -> Tensor:
        """Masked mean of the decoder states over non-pad tokens, projected (B, P)."""
        m = (caption_ids != self.cfg.pad_id)[..., None].to(hidden.dtype)
        return self.text_proj((hidden * m).sum(1) / m.sum(1).clamp(min=1))
