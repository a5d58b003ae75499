"""Spread of a figure over seeds and the paired bootstrap of a difference between two systems.

An ablation that trains each recipe once cannot tell a recipe's effect from seed noise, and one
test set cannot tell it from the luck of the test items. Two plain tools answer both:
:func:`mean_sd` summarizes one figure over the seeds of a recipe (mean, sample standard
deviation with ddof = 1, n), and :func:`paired_bootstrap` gives a percentile interval of the
mean per-item difference between two systems scored on the same items (Efron & Tibshirani,
"An Introduction to the Bootstrap", 1993, ch. 13; the paired test-set bootstrap of Koehn, EMNLP
2004, used for caption and translation metrics). Pure numpy: items in, numbers out.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def mean_sd(values: Sequence[float]) -> dict[str, float | int | None]:
    """``{"mean", "sd", "n"}`` of one figure over seeds; sd is the sample standard deviation
    (ddof = 1), None for a single value (one seed says nothing about the spread)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else None, "n": int(v.size)}


def paired_bootstrap(system: Sequence[float], baseline: Sequence[float], *, n_resamples: int = 2000,
                     seed: int = 0, level: float = 0.95) -> dict[str, float | int | bool]:
    """Percentile interval of mean(system - baseline) over items resampled with replacement.

    ``system`` and ``baseline`` (N,) are per-item scores of two systems on the same N items (e.g.
    each test clip's CIDEr-D, each averaged over the seeds of its recipe); item i of one is paired
    with item i of the other. Items where either value is NaN are dropped first (a metric with no
    value for an item). Resampling: ``numpy.random.default_rng(seed).integers(0, N, size=(n_resamples,
    N))`` draws the item indices of every resample; the interval is the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` percentiles (numpy's default linear interpolation) of the resampled mean
    differences. The difference is called ``real`` when the interval excludes 0.

    Returns ``{"diff", "low", "high", "real", "n_items", "n_resamples", "level", "seed"}``.
    """
    a = np.asarray(system, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_bootstrap needs two 1-D arrays of the same length, got {a.shape} and {b.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    keep = np.isfinite(a) & np.isfinite(b)
    d = (a - b)[keep]  # (N,) per-item differences
    if d.size == 0:
        raise ValueError("paired_bootstrap: no item has a finite value in both systems")
    idx = np.random.default_rng(seed).integers(0, d.size, size=(n_resamples, d.size))  # (R, N)
    means = d[idx].mean(axis=1)  # (R,)
    low, high = np.percentile(means, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return {"diff": float(d.mean()), "low": float(low), "high": float(high),
            "real": bool(low > 0 or high < 0), "n_items": int(d.size), "n_resamples": int(n_resamples),
            "level": float(level), "seed": int(seed)}


__all__ = ["mean_sd", "paired_bootstrap"]
