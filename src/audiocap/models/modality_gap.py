"""Bridging the audio-text modality gap of a contrastive space for text-only training.

Pure tensor functions used by WSAC (Kouzelis & Katsouros, DCASE 2023), which trains a
decoder on text embeddings and runs it on audio embeddings. Two training-time remedies:

- **noise injection** (after CapDec, Nukrai et al. 2022): add N(0, σ²I) to the text embedding;
  σ is estimated as the mean L∞ norm of differences between embeddings of captions that
  describe the same clip (the paper reports σ² ≈ 0.013 on CLAP), or set by hand;
- **embedding shift**: add Δgap = mean(audio emb) − mean(text emb), estimated on a small
  paired set, so text embeddings move to where audio embeddings lie.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def estimate_noise_std(groups: Sequence[torch.Tensor]) -> float:
    """σ = mean over same-clip caption pairs of ‖e_i − e_j‖_∞ (WSAC, Kouzelis & Katsouros 2023).

    ``groups`` holds one (n_k, D) tensor per clip with the embeddings of its n_k captions;
    every unordered pair (i < j) within a clip counts once, clips with a single caption are
    skipped. Raises ``ValueError`` when no clip has two captions.
    """
    total, count = 0.0, 0
    for emb in groups:
        n = emb.shape[0]
        if n < 2:
            continue
        i, j = torch.triu_indices(n, n, offset=1)
        diff = (emb[i] - emb[j]).abs().amax(dim=-1)  # (pairs,)
        total += float(diff.sum())
        count += diff.numel()
    if count == 0:
        raise ValueError("noise estimation needs clips with at least two captions each")
    return total / count


def estimate_gap(audio_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """Δgap = mean(audio_emb) − mean(text_emb), both (N, D) -> (D,) (WSAC embedding shift).

    The two sets need not be paired one-to-one, only drawn from the same clips, as in the
    paper's small paired subset (Kouzelis & Katsouros, 2023).
    """
    if audio_emb.ndim != 2 or text_emb.ndim != 2 or audio_emb.shape[1] != text_emb.shape[1]:
        raise ValueError(f"expected (N, D) and (M, D), got {tuple(audio_emb.shape)} and {tuple(text_emb.shape)}")
    return audio_emb.float().mean(0) - text_emb.float().mean(0)


def bridge_text_embedding(
    text_emb: torch.Tensor,
    *,
    noise_std: float = 0.0,
    shift: torch.Tensor | None = None,
    renormalize: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Apply WSAC's training-time gap bridging to text embeddings (B, D) -> (B, D).

    Adds Δgap (``shift``, (D,)) when given, then Gaussian noise of std ``noise_std``
    (Kouzelis & Katsouros, 2023; noise as in CapDec). ``renormalize`` projects the result
    back to the unit sphere (off by default, as in CapDec).
    """
    out = text_emb
    if shift is not None:
        out = out + shift.to(out)
    if noise_std > 0:
        noise = torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype)
        out = out + noise_std * noise
    return F.normalize(out, dim=-1) if renormalize else out
