"""Losses: pure functions of tensors (no model, no files)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def clip_loss(audio_emb: Tensor, text_emb: Tensor, logit_scale: Tensor | float, *,
              dup_groups: Tensor | None = None) -> Tensor:
    """TEMPORARY stand-in for the CLAP branch's symmetric InfoNCE; replaced by theirs at merge."""
    logits = logit_scale * audio_emb @ text_emb.t()
    if dup_groups is not None:
        same = dup_groups[:, None] == dup_groups[None, :]
        logits = logits.masked_fill(same.fill_diagonal_(False), float("-inf"))
    labels = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))


# --- captioner losses ------------------------------------------------------------------------


def caption_ce(logits: Tensor, targets: Tensor, *, pad_id: int, label_smoothing: float = 0.0) -> Tensor:
    """Word cross-entropy of a captioner, averaged over non-pad target tokens.

    ``logits`` (B, L, V) predict ``targets`` (B, L) (the caption shifted left by one); pad
    targets are ignored. Optional label smoothing (Szegedy et al. 2016) as in the DCASE 2024
    Task 6 baseline.
    """
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=pad_id, label_smoothing=label_smoothing)


def cl4ac_mismatch(caption_ids: Tensor, group: Tensor | None = None, *, shift: int = 1) -> tuple[Tensor, Tensor]:
    """Mismatched captions for CL4AC: item i's audio paired with item (i - shift)'s caption.

    Returns ``(mismatched_ids (B, L), valid (B,))``. A pair is valid (truly mismatched) only
    when the rolled caption differs token-by-token from the item's own caption and, when
    ``group`` (B,) clip ids are given, comes from a different clip (Liu et al. 2022, CL4AC).
    """
    rolled = caption_ids.roll(shift, dims=0)  # (B, L)
    valid = (rolled != caption_ids).any(dim=1)
    if group is not None:
        valid &= group.roll(shift, dims=0) != group
    return rolled, valid


def cl4ac_loss(matched_logits: Tensor, mismatched_logits: Tensor, valid: Tensor) -> Tensor:
    """CL4AC 2-way cross-entropy: label 1 for (audio, own caption), 0 for mismatched pairs.

    ``matched_logits`` and ``mismatched_logits`` are (B, 2) head outputs; mismatched rows whose
    ``valid`` (B,) is False (the partner caption was not really different) are left out
    (Liu et al. 2022, "CL4AC: a contrastive loss for audio captioning").
    """
    logits = torch.cat([matched_logits, mismatched_logits[valid]])  # (B + n_valid, 2)
    labels = torch.cat([torch.ones(len(matched_logits), dtype=torch.long, device=logits.device),
                        torch.zeros(int(valid.sum()), dtype=torch.long, device=logits.device)])
    return F.cross_entropy(logits, labels)


def nt_xent(audio_emb: Tensor, text_emb: Tensor, *, temperature: float = 0.07,
            groups: Tensor | None = None) -> Tensor:
    """NT-Xent auxiliary loss of a captioner: symmetric InfoNCE of pooled audio and text.

    Both (B, P) embeddings are L2-normalized and scored with cosine similarity / temperature,
    then the CLAP symmetric InfoNCE (:func:`clip_loss`) is applied (Chen et al. 2020, SimCLR;
    used as a captioning auxiliary in the DCASE 2024 Task 6 technical reports). ``groups`` (B,)
    clip ids remove other captions of the same clip from the negatives.
    """
    return clip_loss(F.normalize(audio_emb, dim=-1), F.normalize(text_emb, dim=-1), 1.0 / temperature,
                     dup_groups=groups)


def aux_weight(epoch: int, *, weight: float, ce_only_epochs: int = 0) -> float:
    """λ of L = L_CE + λ·L_aux at ``epoch`` (0-based): 0 for the first ``ce_only_epochs`` epochs."""
    return 0.0 if epoch < ce_only_epochs else weight
