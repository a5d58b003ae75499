"""What captioning returns: one :class:`Caption` per file or per window.

Kept beside the decoders (not in :mod:`audiocap.captioning`) so that every captioner kind —
the encoder-decoder pipeline and text-only WSAC (:mod:`audiocap.decoding.wsac`) — returns the
same record without importing the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from audiocap.audio.nonevent import Flag


@dataclass
class Caption:
    """One caption of a file (or of the window ``start``-``end`` seconds of it)."""

    file: str
    start: float
    end: float
    text: str
    score: float | None  # the caption's log-probability; None when nothing was decoded (silence)
    finished: bool = True  # False: cut at the maximum length without <eos>
    flag: Flag | None = None  # "silence" | "low_confidence" (audiocap.audio.nonevent.judge)
    confidence: float | None = None  # 0-1, how much the audio looks like a sound event

    def to_dict(self) -> dict[str, Any]:
        """The JSON record ``audiocap caption --json`` prints (finite numbers only)."""
        score = None if self.score is None or not np.isfinite(self.score) else round(self.score, 4)
        return {"file": self.file, "start": self.start, "end": self.end, "caption": self.text, "score": score,
                "finished": self.finished, "flag": self.flag, "confidence": self.confidence}
