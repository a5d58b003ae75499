"""The learning-rate schedule of every audiocap trainer: linear warm-up, then cosine decay.

One function for the CLAP, captioner and WSAC trainers (Loshchilov & Hutter, SGDR, 2017; the
schedule of CLIP/open_clip and of the Xiaomi CLAP recipe). Two shapes exist because shipped
models were trained with them and must reproduce: the cosine either starts after the warm-up
(CLAP, WSAC) or runs over all steps with the warm-up ramp multiplied into it (captioner).
"""

from __future__ import annotations

import math

import torch


def warmup_cosine(step: int, *, warmup: int, total: int, min_ratio: float = 0.0,
                  cosine_from_start: bool = False) -> float:
    """LR multiplier at ``step``: a linear ramp over ``warmup`` steps and a cosine from 1 to
    ``min_ratio`` that ends at ``total``. The cosine starts after the warm-up, or at step 0 when
    ``cosine_from_start`` (the ramp then scales its first steps)."""
    warmup, total = max(0, warmup), max(1, total)
    ramp = min(1.0, (step + 1) / warmup) if warmup else 1.0
    if cosine_from_start:
        t = min(step, total) / total
        return ramp * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t)))
    if step < warmup:
        return ramp
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def warmup_cosine_scheduler(optimizer: torch.optim.Optimizer, **kw) -> dict:
    """The Lightning ``lr_scheduler`` entry (stepped every batch) for :func:`warmup_cosine`."""
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, **kw))
    return {"scheduler": sched, "interval": "step"}
