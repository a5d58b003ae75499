"""Minimal word vocabulary for WSAC until the shared captioner vocabulary lands.

Captions are lower-cased and split into words after dropping punctuation, close to the
PTB-tokenized form the DCASE caption metrics score. Ids 0..3 are <pad>, <bos>, <eos>, <unk>.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = range(4)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def words(caption: str) -> list[str]:
    """Lower-case word tokens of a caption (punctuation dropped)."""
    return _WORD.findall(caption.lower())


class WordVocab:
    """Word <-> id mapping with the four special tokens first."""

    def __init__(self, itos: list[str]) -> None:
        if tuple(itos[:4]) != SPECIALS:
            raise ValueError(f"vocabulary must start with {SPECIALS}")
        self.itos = list(itos)
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, captions: Iterable[str], *, min_count: int = 1) -> "WordVocab":
        """Vocabulary of the words seen at least ``min_count`` times (most frequent first)."""
        counts = Counter(w for c in captions for w in words(c))
        kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, caption: str, *, max_len: int | None = None) -> list[int]:
        """``[<bos>, w1, ..., wn, <eos>]`` ids, words cut so the total is at most ``max_len``."""
        ids = [self.stoi.get(w, UNK) for w in words(caption)]
        if max_len is not None:
            ids = ids[: max_len - 2]
        return [BOS, *ids, EOS]

    def decode(self, ids: Iterable[int]) -> str:
        """Words of ``ids`` up to the first <eos>, specials dropped, joined by spaces."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i >= len(SPECIALS):
                out.append(self.itos[i])
        return " ".join(out)

    def to_json(self) -> dict:
        """JSON-serializable form stored beside a checkpoint."""
        return {"itos": self.itos}

    @classmethod
    def from_json(cls, obj: dict) -> "WordVocab":
        """Inverse of :meth:`to_json`."""
        return cls(list(obj["itos"]))
