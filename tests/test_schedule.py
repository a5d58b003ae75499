"""The one warm-up + cosine schedule of the three trainers (audiocap.train.schedule)."""

from __future__ import annotations

import math

import pytest
import torch

from audiocap.train.schedule import warmup_cosine, warmup_cosine_scheduler


def test_warmup_then_cosine():
    assert warmup_cosine(0, warmup=4, total=14) == pytest.approx(0.25)
    assert warmup_cosine(3, warmup=4, total=14) == pytest.approx(1.0)
    assert warmup_cosine(9, warmup=4, total=14) == pytest.approx(0.5)  # half-way through the cosine
    assert warmup_cosine(14, warmup=4, total=14) == pytest.approx(0.0, abs=1e-12)
    assert warmup_cosine(99, warmup=4, total=14, min_ratio=0.1) == pytest.approx(0.1)
    assert warmup_cosine(0, warmup=0, total=10) == pytest.approx(1.0)  # no warm-up


@pytest.mark.parametrize("total", [1, 7, 50, 3750])
def test_same_values_as_the_schedules_the_shipped_models_were_trained_with(total):
    # The trainers' former hand-written lambdas, step by step: a shipped model's recipe must
    # still give the same learning rates.
    warm_c = max(1, total // 20)
    old_captioner = [min(1.0, (s + 1) / warm_c) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
                     for s in range(total + 3)]
    new_captioner = [warmup_cosine(s, warmup=warm_c, total=total, cosine_from_start=True) for s in range(total + 3)]
    assert new_captioner == pytest.approx(old_captioner, abs=1e-15)
    warm_w = 3

    def old_wsac(step):
        if step < warm_w:
            return (step + 1) / warm_w
        return 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, (step - warm_w) / max(total - warm_w, 1))))

    assert [warmup_cosine(s, warmup=warm_w, total=total, min_ratio=0.1) for s in range(total + 3)] == \
        pytest.approx([old_wsac(s) for s in range(total + 3)], abs=1e-15)


def test_the_scheduler_drives_the_optimizer_per_step():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=2.0)
    entry = warmup_cosine_scheduler(opt, warmup=2, total=6)
    assert entry["interval"] == "step"
    lrs = []
    for _ in range(7):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        entry["scheduler"].step()
    assert lrs[:2] == pytest.approx([1.0, 2.0]) and lrs[4] == pytest.approx(1.0) and lrs[6] == pytest.approx(0.0, abs=1e-12)
