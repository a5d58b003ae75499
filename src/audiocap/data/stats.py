"""Summary statistics of a manifest: clips, hours, captions, words, vocabulary, per split.

Words are counted with a simple lowercase split on letters, digits and apostrophes
(``[a-z0-9']+``). That is an approximation for a quick look at a dataset, not the PTB tokenizer
the DCASE metrics use, so the vocabulary size here can differ slightly from the metric's
"vocabulary size".
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from audiocap.data.manifest import Clip

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lowercase word split used by :func:`manifest_stats` (approximate, not PTB)."""
    return _WORD.findall(text.lower())


def _summary(clips: Sequence[Clip]) -> dict[str, Any]:
    vocab: set[str] = set()
    n_words = 0
    for clip in clips:
        for caption in clip.captions:
            ws = words(caption)
            n_words += len(ws)
            vocab.update(ws)
    n_captions = sum(len(c.captions) for c in clips)
    return {
        "clips": len(clips),
        "hours": round(sum(c.duration for c in clips) / 3600.0, 4),
        "clips_without_audio": sum(1 for c in clips if "audio_status" in c.meta),
        "captions": n_captions,
        "words": n_words,
        "words_per_caption": round(n_words / n_captions, 2) if n_captions else 0.0,
        "vocabulary": len(vocab),
    }


def manifest_stats(clips: Sequence[Clip]) -> dict[str, Any]:
    """Totals over all clips plus the same numbers for each split (in order of first appearance)."""
    splits: dict[str, list[Clip]] = {}
    for clip in clips:
        splits.setdefault(clip.split, []).append(clip)
    return {**_summary(clips), "splits": {name: _summary(group) for name, group in splits.items()}}


def format_stats(stats: dict[str, Any]) -> str:
    """Render :func:`manifest_stats` as an aligned text table (one row per split, then the total)."""
    cols = ("clips", "hours", "captions", "words", "vocabulary", "clips_without_audio")
    heads = ("split", "clips", "hours", "captions", "words", "vocab", "no audio")
    rows = [[name] + [str(s[c]) for c in cols] for name, s in stats["splits"].items()]
    rows.append(["total"] + [str(stats[c]) for c in cols])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    fmt = lambda r: "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(list(heads))] + [fmt(r) for r in rows])
