"""Scorers that plug captioners into :mod:`audiocap.decoding.beam`: one model or an ensemble.

An ensemble of captioners that share a vocabulary averages their per-step log-probabilities
(the ensembling of the Xiaomi DCASE 2023 captioner and other DCASE Task 6 systems): at each
step the next-token score is ``mean_m log p_m(w | prefix, audio)``. Each member keeps its own
incremental decoder cache.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from audiocap.models.captioner import Captioner, DecoderCache


class CaptionerScorer:
    """Incremental next-word log-probabilities of one :class:`Captioner`."""

    def __init__(self, model: Captioner, *, bos_id: int = 1, eos_id: int = 2, pad_id: int = 0) -> None:
        self.model = model.eval()
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def start(self, frame_embs: Tensor, frame_mask: Tensor) -> DecoderCache:
        """Encode the audio (B, T, F) once and return the empty decoder cache."""
        return self.model.start(self.model.encode(frame_embs, frame_mask), frame_mask)

    @torch.no_grad()
    def step(self, tokens: Tensor, state: DecoderCache) -> tuple[Tensor, DecoderCache]:
        """Feed one token per row (N,) -> log-probabilities (N, V) and the extended cache."""
        logits, _, state = self.model.decode(tokens[:, None], state)
        return torch.log_softmax(logits[:, -1].float(), dim=-1), state

    def select(self, state: DecoderCache, index: Tensor) -> DecoderCache:
        return state.select(index)


class EnsembleScorer:
    """Average of the per-step log-probabilities of several scorers sharing one vocabulary."""

    def __init__(self, members: Sequence[CaptionerScorer]) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one model")
        first = members[0]
        self.members = list(members)
        self.bos_id, self.eos_id, self.pad_id = first.bos_id, first.eos_id, first.pad_id

    @property
    def device(self) -> torch.device:
        return self.members[0].device

    def start(self, frame_embs: Tensor, frame_mask: Tensor) -> list[DecoderCache]:
        return [m.start(frame_embs, frame_mask) for m in self.members]

    def step(self, tokens: Tensor, state: list) -> tuple[Tensor, list]:
        """Mean over members of log p_m(next | prefix) (N, V) and the members' new states."""
        outs = [m.step(tokens, s) for m, s in zip(self.members, state)]
        return torch.stack([o[0] for o in outs]).mean(0), [o[1] for o in outs]

    def select(self, state: list, index: Tensor) -> list:
        return [m.select(s, index) for m, s in zip(self.members, state)]
