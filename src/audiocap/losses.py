"""Training losses as pure functions of tensors (no models, no files).

Captioner losses (CE, CL4AC, NT-Xent auxiliary) are in the second half of the file.

Contrastive:
- :func:`clip_loss`: symmetric InfoNCE of CLIP/CLAP (Radford et al., 2021; Elizalde et al., 2023).
Tagging regularizer (CLAP-TAG):
- :func:`tag_regularizer`: MSLE or MAE between the tag scores of the tower being trained and
  those of a frozen tagger, added as L = L_CLAP + λ·reg (Xiaomi DCASE 2023 Task 6b report).
Image tower (CLAIP, same report):
- :func:`image_text_loss`: one-way InfoNCE image→text; :func:`claip_loss` adds it to L_CLAP or
  to the CLAP-TAG loss (CLAIP-TAG).
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


def multi_positive_nce(audio_emb: torch.Tensor, phrase_emb: torch.Tensor, positives: torch.Tensor,
                       logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Short-text loss: symmetric multiple-positive InfoNCE between clips and label phrases
    (MIL-NCE, Miech et al., CVPR 2020; the keyword side of keyword-to-caption augmentation).

    audio_emb (B, E) and phrase_emb (P, E) L2-normalized; ``positives`` (B, P) bool says which
    phrases name an event of each clip. Phrase→audio: for each phrase with a positive in the batch,
    -log of the softmax mass on its positive clips; audio→phrase: for each clip with a positive
    phrase, -log of the softmax mass on its positive phrases. Mean of the two directions.
    """
    logits = logit_scale * audio_emb @ phrase_emb.t()  # (B, P)
    pos = positives.bool()
    neg_inf = torch.finfo(logits.dtype).min

    def mil(lg: torch.Tensor, ps: torch.Tensor) -> torch.Tensor:  # rows are queries
        keep = ps.any(dim=1)
        if not keep.any():
            return lg.sum() * 0.0
        lg, ps = lg[keep], ps[keep]
        return (torch.logsumexp(lg, dim=1) - torch.logsumexp(lg.masked_fill(~ps, neg_inf), dim=1)).mean()

    return 0.5 * (mil(logits.t(), pos.t()) + mil(logits, pos))


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
                  weight: float, kind: str = "msle",
                  dup_groups: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """L = L_CLAP + λ·reg(tag_scores_trained, tag_scores_frozen); returns (total, clap, reg).
    ``dup_groups`` as in :func:`clip_loss`."""
    lc = clip_loss(audio_emb, text_emb, logit_scale, dup_groups=dup_groups)
    reg = tag_regularizer(tag_scores_trained, tag_scores_frozen, kind)
    return lc + weight * reg, lc, reg


def image_text_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor | float, *,
                    has_image: torch.Tensor | None = None, dup_groups: torch.Tensor | None = None) -> torch.Tensor:
    """L(image→text): CE over the logits ``s · I Tᵀ`` where row i's positive is caption i, averaged
    over the rows whose item has an image (``has_image`` (B,) bool; all when None). One direction
    only, as in the report: the text side is already pulled by L_CLAP. ``dup_groups`` as in
    :func:`clip_loss` (captions of the same clip share its picture, so they are not negatives).
    Zero (with a gradient path) when no item of the batch has an image."""
    logits = logit_scale * image_emb @ text_emb.t()  # (B, B)
    if dup_groups is not None:
        same = dup_groups[:, None] == dup_groups[None, :]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
    target = torch.arange(logits.shape[0], device=logits.device)
    per_row = F.cross_entropy(logits, target, reduction="none")  # (B,)
    if has_image is None:
        return per_row.mean()
    keep = has_image.bool()
    return per_row[keep].mean() if keep.any() else per_row.sum() * 0.0


def claip_loss(audio_emb: torch.Tensor, text_emb: torch.Tensor, image_emb: torch.Tensor,
               logit_scale: torch.Tensor | float, *, image_weight: float = 1.0,
               has_image: torch.Tensor | None = None, dup_groups: torch.Tensor | None = None,
               tag_scores: tuple[torch.Tensor, torch.Tensor] | None = None, tag_weight: float = 1.0,
               tag_kind: str = "msle") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """CLAIP: L = L_CLAP + w·L(image→text); with ``tag_scores`` = (trained, frozen) CLAIP-TAG:
    L = L_CLAP + λ·reg + w·L(image→text) (Xiaomi DCASE 2023 Task 6b report). Returns the total and
    its parts by name (``clap``, ``i2t`` and, for CLAIP-TAG, ``tag_reg``)."""
    if tag_scores is None:
        base = clap = clip_loss(audio_emb, text_emb, logit_scale, dup_groups=dup_groups)
        parts = {"clap": clap}
    else:
        base, clap, reg = clap_tag_loss(audio_emb, text_emb, logit_scale, *tag_scores, weight=tag_weight,
                                        kind=tag_kind, dup_groups=dup_groups)
        parts = {"clap": clap, "tag_reg": reg}
    i2t = image_text_loss(image_emb, text_emb, logit_scale, has_image=has_image, dup_groups=dup_groups)
    parts["i2t"] = i2t
    return base + image_weight * i2t, parts


def multilabel_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy over multi-hot tag targets (B, C), the audio-tagging objective used
    to fit the frozen tagger head (Kong et al., PANNs, 2020)."""
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))


# --- captioner losses ------------------------------------------------------------------------


def caption_ce(logits: Tensor, targets: Tensor, *, pad_id: int, label_smoothing: float = 0.0) -> Tensor:
    """Word cross-entropy of a captioner (the audio captioner and WSAC's prefix decoder),
    averaged over non-pad target tokens.

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
