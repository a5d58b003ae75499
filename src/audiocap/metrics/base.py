"""Shared pieces of the caption metrics: the result type and input validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from audiocap.text.tokenize import ptb_tokenize


class MetricInputError(ValueError):
    """Candidates/references are malformed; the message names the offending item."""


@dataclass
class MetricResult:
    """One metric over a corpus: the corpus ``score`` and the ``per_item`` scores (N,).

    When the metric cannot be computed here, ``available`` is False, ``score`` and
    ``per_item`` are None, and ``reason`` says why (never an estimate). ``extra`` holds
    additional per-item arrays or numbers (e.g. SPICE precision and recall).
    """

    name: str
    score: float | None
    per_item: np.ndarray | None
    available: bool = True
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def unavailable(cls, name: str, reason: str) -> "MetricResult":
        return cls(name=name, score=None, per_item=None, available=False, reason=reason)

    def to_json(self) -> dict:
        """JSON-ready dict (per-item arrays as lists)."""
        if not self.available:
            return {"available": False, "reason": self.reason}
        out: dict[str, Any] = {"available": True, "score": _finite(self.score)}
        if self.per_item is not None:
            out["per_item"] = [_finite(x) for x in self.per_item]
        for k, v in self.extra.items():
            out[k] = [_finite(x) for x in v] if isinstance(v, np.ndarray) else v
        return out


def _finite(x) -> float | None:
    """float for JSON; NaN (e.g. SPICE items without tuples) becomes null."""
    x = float(x)
    return None if np.isnan(x) else x


def check_inputs(candidates: Sequence[str], references: Sequence[Sequence[str]], *,
                 allow_empty: bool = False) -> None:
    """Raise :class:`MetricInputError` naming the item for malformed metric inputs.

    Checks: both are lists of equal length; every candidate is a non-empty string; every
    reference list is a non-empty list of non-empty strings. ``allow_empty`` accepts empty
    strings (already tokenized input: a caption of punctuation only tokenizes to "").
    """
    if isinstance(candidates, str) or not isinstance(candidates, Sequence):
        raise MetricInputError("candidates must be a list of strings")
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise MetricInputError("references must be a list of lists of strings")
    if len(candidates) != len(references):
        raise MetricInputError(
            f"{len(candidates)} candidates but {len(references)} reference lists; "
            "give one list of references per candidate"
        )
    if not candidates:
        raise MetricInputError("no candidates to score")
    for i, (cand, refs) in enumerate(zip(candidates, references)):
        if not isinstance(cand, str):
            raise MetricInputError(f"item {i}: candidate is {type(cand).__name__}, not str")
        if not allow_empty and not cand.strip():
            raise MetricInputError(f"item {i}: candidate caption is empty")
        if isinstance(refs, str) or not isinstance(refs, Sequence):
            raise MetricInputError(f"item {i}: references must be a list of strings, "
                                   f"got {type(refs).__name__}")
        if len(refs) == 0:
            raise MetricInputError(f"item {i}: reference list is empty")
        for j, ref in enumerate(refs):
            if not isinstance(ref, str):
                raise MetricInputError(f"item {i}: reference {j} is {type(ref).__name__}, not str")
            if not allow_empty and not ref.strip():
                raise MetricInputError(f"item {i}: reference {j} is empty")


def prepare(candidates, references, *, tokenized: bool):
    """Validate and (unless ``tokenized``) PTB-tokenize candidates and references."""
    check_inputs(candidates, references, allow_empty=tokenized)
    if tokenized:
        return list(candidates), [list(r) for r in references]
    # two batches, as coco-caption tokenizes its gts and res (a line's successor can matter)
    cands = ptb_tokenize(list(candidates))
    flat = ptb_tokenize([r for refs in references for r in refs])
    refs, pos = [], 0
    for r in references:
        refs.append(flat[pos : pos + len(r)])
        pos += len(r)
    return cands, refs
