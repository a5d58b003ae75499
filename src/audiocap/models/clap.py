"""CLAP: a dual encoder mapping audio and text into one space (Elizalde et al., "CLAP: Learning
Audio Concepts from Natural Language Supervision", ICASSP 2023; Radford et al., CLIP, 2021).

Audio tower -> (optional) trainable residual adapter on its frame embeddings -> pooling ->
2-layer MLP projection; text tower -> mean pooling -> 2-layer MLP projection. Both outputs are
L2-normalized; ``logit_scale`` (init 1/0.07, clamped at 100) scales the cosine similarities.
CLAIP (Xiaomi DCASE 2023 Task 6b report): with ``image`` set, a third, frozen image tower and its
own 2-layer projection map pictures into the same space (trained by L(image→text)).
The model never reads files and never computes its loss (see :mod:`audiocap.losses`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from audiocap.encoders import build_audio_encoder, build_image_encoder, build_text_encoder


@dataclass
class ClapConfig:
    """Architecture of a CLAP model (the ``model`` section of a CLAP recipe)."""

    audio: str = "aisfx"  # audio tower name (audiocap.encoders registry)
    audio_kw: dict[str, Any] = field(default_factory=dict)
    text: str = "minilm"  # text tower name
    text_kw: dict[str, Any] = field(default_factory=dict)
    freeze_audio: bool = True  # frozen towers can have their outputs cached on disk
    freeze_text: bool = True
    adapter: bool = True  # trainable residual MLP on the audio frame embeddings ("tower top")
    adapter_hidden: int = 1024
    embed_dim: int = 512
    head_hidden: int = 1024
    init_temperature: float = 0.07
    max_logit_scale: float = 100.0
    pooling: str = "mean"  # mean: the tower's own pooling; attention: learned AttentionPool over windows
    pool_heads: int = 4
    image: str = ""  # CLAIP: image tower name (audiocap.encoders image registry); "" = CLAP, no image tower
    image_kw: dict[str, Any] = field(default_factory=dict)


def projection_head(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    """The 2-layer MLP projection of CLAP (Linear -> GELU -> Linear)."""
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


class FrameAdapter(nn.Module):
    """Residual MLP on frame embeddings, x + W2·GELU(W1·LN(x)); W2 starts at zero so the adapted
    tower starts exactly as the pretrained one (what the CLAP-TAG regularizer compares to)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(F.gelu(self.fc1(self.norm(x))))  # (B, T, D)


class AttentionPool(nn.Module):
    """Learned temporal pooling of window embeddings (B, T, D) -> (B, D).

    ``heads`` attention distributions over the T windows, each scored by a small MLP on the
    normalized window embedding (additive attention, Bahdanau et al. 2015; as in the attentive
    pooling of audio taggers, Kong et al., PANNs 2020), give ``heads`` weighted sums that a linear
    layer merges back to D. Scores start at zero and the merge at the average of the heads, so an
    untrained pool equals the masked mean: training starts from the tower's own pooling.
    """

    def __init__(self, dim: int, heads: int = 4, hidden: int = 256) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, heads))
        nn.init.zeros_(self.score[2].weight)
        nn.init.zeros_(self.score[2].bias)
        self.merge = nn.Linear(heads * dim, dim)
        with torch.no_grad():
            self.merge.weight.copy_(torch.cat([torch.eye(dim) / heads] * heads, dim=1))
            self.merge.bias.zero_()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.score(self.norm(x))  # (B, T, H)
        if mask is not None:
            logits = logits.masked_fill(~mask.bool()[..., None], float("-inf"))
        w = torch.softmax(logits, dim=1)  # (B, T, H)
        pooled = torch.einsum("bth,btd->bhd", w, x)  # (B, H, D)
        return self.merge(pooled.flatten(1))  # (B, D)


class ClapModel(nn.Module):
    """Towers + projection heads. Waveforms are mono float at ``sample_rate``, shape (B, N)."""

    def __init__(self, cfg: ClapConfig, audio_tower: nn.Module, text_tower: nn.Module,
                 image_tower: nn.Module | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.audio_tower, self.text_tower = audio_tower, text_tower
        self.audio_tower.requires_grad_(not cfg.freeze_audio)
        self.adapter = FrameAdapter(audio_tower.frame_dim, cfg.adapter_hidden) if cfg.adapter else nn.Identity()
        if cfg.pooling not in ("mean", "attention"):
            raise ValueError(f"model.pooling must be 'mean' or 'attention', got {cfg.pooling!r}")
        self.pool = AttentionPool(audio_tower.frame_dim, cfg.pool_heads) if cfg.pooling == "attention" else None
        pooled_dim = audio_tower.frame_dim if self.pool is not None else audio_tower.dim
        self.audio_proj = projection_head(pooled_dim, cfg.head_hidden, cfg.embed_dim)
        self.text_proj = projection_head(text_tower.dim, cfg.head_hidden, cfg.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))
        self.image_tower = self.image_proj = None
        if image_tower is not None:  # always frozen: its features are cached like the other frozen towers
            self.image_tower = image_tower.requires_grad_(False).eval()
            self.image_proj = projection_head(image_tower.dim, cfg.head_hidden, cfg.embed_dim)

    @property
    def sample_rate(self) -> int:
        return int(self.audio_tower.sample_rate)

    def train(self, mode: bool = True) -> "ClapModel":
        super().train(mode)
        if self.cfg.freeze_audio:
            self.audio_tower.eval()  # frozen BatchNorm statistics stay pretrained
        if self.image_tower is not None:
            self.image_tower.eval()
        return self

    # --- audio ---
    def audio_frames(self, wave: torch.Tensor) -> torch.Tensor:
        """Frozen-or-trainable tower: (B, N) -> frame embeddings (B, T, D), before the adapter."""
        return self.audio_tower(wave)

    def audio_pooled(self, frame_embs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Adapter + pooling (the tower's own, or the learned :class:`AttentionPool`):
        (B, T, D) -> clip embedding (B, P)."""
        if self.pool is not None:
            return self.pool(self.adapter(frame_embs), mask)
        return self.audio_tower.pool(self.adapter(frame_embs), mask)

    def encode_audio(self, wave: torch.Tensor | None = None, *, frame_embs: torch.Tensor | None = None,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
        """L2-normalized audio embeddings (B, E) from waveforms (B, N) or precomputed tower
        frame embeddings (B, T, D) with an optional validity mask (B, T)."""
        if frame_embs is None:
            frame_embs = self.audio_frames(wave)
        return F.normalize(self.audio_proj(self.audio_pooled(frame_embs, mask)), dim=-1)

    # --- text ---
    def text_features(self, texts: list[str] | dict[str, torch.Tensor]) -> torch.Tensor:
        """Text tower output (B, Dt) from strings or ``{"input_ids", "attention_mask"}``."""
        return self.text_tower(texts)

    def encode_text(self, texts: list[str] | dict[str, torch.Tensor] | None = None, *,
                    text_feats: torch.Tensor | None = None) -> torch.Tensor:
        """L2-normalized text embeddings (B, E) from strings, token ids or cached tower outputs
        (what ``text_tower.cache_features`` stores: with trained top layers, the states below them)."""
        if text_feats is None:
            text_feats = self.text_features(texts)
        elif hasattr(self.text_tower, "from_cache"):
            text_feats = self.text_tower.from_cache(text_feats)
        return F.normalize(self.text_proj(text_feats), dim=-1)

    # --- image (CLAIP) ---
    def encode_image(self, images: torch.Tensor | None = None, *,
                     image_feats: torch.Tensor | None = None) -> torch.Tensor:
        """L2-normalized image embeddings (B, E) from pictures (B, 3, S, S) in [0, 1] or cached
        image-tower features (B, Di)."""
        if self.image_tower is None:
            raise ValueError("this CLAP model has no image tower; train it with model.image set (CLAIP)")
        if image_feats is None:
            image_feats = self.image_tower(images)
        return F.normalize(self.image_proj(image_feats), dim=-1)

    def scale(self) -> torch.Tensor:
        """exp(logit_scale) clamped at ``max_logit_scale`` (CLIP's clamp at 100)."""
        return self.logit_scale.exp().clamp(max=self.cfg.max_logit_scale)


def build_clap(cfg: ClapConfig | dict[str, Any], *, pretrained: bool = True) -> ClapModel:
    """Build a :class:`ClapModel`; ``pretrained=False`` skips loading tower weights that a
    checkpoint will overwrite anyway (aisfx)."""
    if isinstance(cfg, dict):
        cfg = ClapConfig(**cfg)
    audio_kw = dict(cfg.audio_kw)
    if not pretrained and cfg.audio == "aisfx":
        audio_kw["weights"] = "none"
    if not pretrained and cfg.audio == "cnn14":
        audio_kw.pop("weights", None)
    audio = build_audio_encoder(cfg.audio, **audio_kw)
    text = build_text_encoder(cfg.text, trainable=not cfg.freeze_text, **cfg.text_kw)
    image = build_image_encoder(cfg.image, **cfg.image_kw) if cfg.image else None
    return ClapModel(cfg, audio, text, image)


def load_clap(folder: str | os.PathLike, device: str | torch.device | None = None) -> ClapModel:
    """Load a CLAP checkpoint folder (``model.safetensors`` + ``recipe.yaml``) strictly, in eval mode."""
    from audiocap.audio.policy import PolicyError, policy_from_recipe
    from audiocap.calibration import CalibrationError
    from audiocap.calibration import load as load_calibration
    from audiocap.checkpoint import RECOPY, CheckpointError, build_from_recipe, load_checkpoint, load_weights

    state, recipe = load_checkpoint(folder, kind="clap")
    excluded = tuple(recipe.get("excluded_prefixes") or ())
    # heads-only checkpoints leave out frozen towers: rebuild those pretrained from their packages
    model = build_from_recipe(lambda **cfg: build_clap(cfg, pretrained=bool(excluded)), recipe.get("model"),
                              folder, "model")
    missing, unexpected = load_weights(model, state, folder, strict=not excluded)
    if excluded:
        stray = [k for k in missing if not k.startswith(excluded)] + list(unexpected)
        stored = [k for k in state if k.startswith(excluded)]
        if stray or stored:
            raise CheckpointError(f"{folder}: weights do not match the model (missing or unexpected "
                                  f"outside {list(excluded)}: {(stray + stored)[:5]}); re-package it")
    try:
        model.audio_policy = policy_from_recipe(recipe, "clap", where=f"{folder}/recipe.yaml")  # issue 15
        model.calibration = load_calibration(folder)  # text-query confidence, when calibration.json is there
    except (PolicyError, CalibrationError) as exc:
        raise CheckpointError(f"{exc}; {RECOPY}") from None
    return model.to(device or "cpu").eval()
