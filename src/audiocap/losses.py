"""Training losses as pure functions of tensors (no models, no files).

Contrastive:
- :func:`clip_loss`: symmetric InfoNCE of CLIP/CLAP (Radford et al., 2021; Elizalde et al., 2023).
Tagging regularizer (CLAP-TAG):
- :func:`tag_regularizer`: MSLE or MAE between the tag scores of the tower being trained and
  those of a frozen tagger, added as L = L_CLAP + λ·reg (Xiaomi DCASE 2023 Task 6b report).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def clip_loss(audio_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor | float,
              *, dup_groups: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE: mean of CE(a→t) and CE(t→a) over the logits ``s · A Tᵀ``, where pair i
    is the positive of row/column i (Radford et al., CLIP, 2021; Elizalde et al., CLAP, 2023).

    audio_emb, text_emb: (B, E) L2-normalized; logit_scale: scalar (already exp'd and clamped).
    ``dup_groups`` (B,) optional ids: off-diagonal pairs with the same id (e.g. the same clip or
    an identical caption twice in a batch) are removed from the negatives.
    """
    logits = logit_scale * audio_emb @ text_emb.t()  # (B, B)
    if dup_groups is not None:
        same = dup_groups[:, None] == dup_groups[None, :]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def msle(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared logarithmic error mean((log(1+p) − log(1+t))²) for scores in [0, 1]."""
    return (torch.log1p(pred) - torch.log1p(target)).pow(2).mean()


def mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error mean(|p − t|)."""
    return (pred - target).abs().mean()


REGULARIZERS = {"msle": msle, "mae": mae}


def tag_regularizer(tag_scores_trained: torch.Tensor, tag_scores_frozen: torch.Tensor, kind: str = "msle") -> torch.Tensor:
    """CLAP-TAG regularizer reg(scores_trained, scores_frozen) with reg = MSLE or MAE over
    sigmoid tag scores (B, C); the frozen scores carry no gradient (Xiaomi DCASE 2023 report)."""
    if kind not in REGULARIZERS:
        raise ValueError(f"unknown tag regularizer {kind!r}; use 'msle' or 'mae'")
    return REGULARIZERS[kind](tag_scores_trained, tag_scores_frozen.detach())


def clap_tag_loss(audio_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor | float,
                  tag_scores_trained: torch.Tensor, tag_scores_frozen: torch.Tensor, *,
                  weight: float, kind: str = "msle") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """L = L_CLAP + λ·reg(tag_scores_trained, tag_scores_frozen); returns (total, clap, reg)."""
    lc = clip_loss(audio_emb, text_emb, logit_scale)
    reg = tag_regularizer(tag_scores_trained, tag_scores_frozen, kind)
    return lc + weight * reg, lc, reg


def multilabel_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy over multi-hot tag targets (B, C), the audio-tagging objective used
    to fit the frozen tagger head (Kong et al., PANNs, 2020)."""
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))
