"""The frozen tagger of CLAP-TAG: the pretrained audio tower plus a linear tagging head fitted on
the dataset's tags before CLAP training (Xiaomi DCASE 2023 Task 6b report; PANNs-style
multi-label BCE, Kong et al., 2020). Saved as a ``tagger`` checkpoint folder."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from audiocap.checkpoint import load_checkpoint, read_extra, save_checkpoint
from audiocap.losses import multilabel_bce


def tag_vocabulary(tag_lists: list[list[str]], min_count: int = 2) -> list[str]:
    """Tags used by at least ``min_count`` clips, sorted by name."""
    counts: dict[str, int] = {}
    for tags in tag_lists:
        for t in set(tags):
            counts[t] = counts.get(t, 0) + 1
    return sorted(t for t, n in counts.items() if n >= min_count)


def fit_tagger(pooled: torch.Tensor, targets: torch.Tensor, *, epochs: int = 300, lr: float = 1e-2,
               weight_decay: float = 1e-4, seed: int = 0) -> nn.Linear:
    """Fit a linear tagging head on frozen pooled tower outputs (N, P) -> multi-hot (N, C) with
    full-batch AdamW on the BCE (a logistic-regression probe)."""
    g = torch.Generator().manual_seed(seed)
    head = nn.Linear(pooled.shape[1], targets.shape[1])
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=g) * 0.01)
        head.bias.zero_()
    mu, sd = pooled.mean(0), pooled.std(0).clamp_min(1e-6)
    x = (pooled - mu) / sd  # standardized inputs; folded back into the head below
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        opt.zero_grad()
        multilabel_bce(head(x), targets).backward()
        opt.step()
    with torch.no_grad():  # head(x_std) == folded(x_raw)
        w = head.weight / sd
        b = head.bias - (head.weight * (mu / sd)).sum(1)
        head.weight.copy_(w)
        head.bias.copy_(b)
    return head.requires_grad_(False)


def save_tagger(folder: str | os.PathLike, head: nn.Linear, tags: list[str], audio: str,
                audio_kw: dict, fit: dict) -> Path:
    """Write a ``tagger`` checkpoint (head weights, tag list, tower name and fit figures)."""
    return save_checkpoint(folder, {"weight": head.weight, "bias": head.bias}, kind="tagger",
                           recipe={"audio": audio, "audio_kw": audio_kw, "fit": fit}, extras={"tags": tags})


def load_tagger(folder: str | os.PathLike) -> tuple[nn.Linear, list[str], dict]:
    """Read a ``tagger`` checkpoint: (frozen head, tags, recipe)."""
    state, recipe = load_checkpoint(folder, kind="tagger")
    head = nn.Linear(state["weight"].shape[1], state["weight"].shape[0])
    head.load_state_dict(state, strict=True)
    return head.requires_grad_(False), read_extra(folder, "tags"), recipe
