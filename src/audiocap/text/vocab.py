"""Word vocabulary for the captioner, built from training captions with the metrics' tokenizer.

Captions are tokenized exactly as the DCASE metrics tokenize them (the coco-caption PTB
tokenizer: lower case, punctuation removed), so the words the captioner can emit are the words
the metrics compare. Ids 0..3 are ``<pad> <bos> <eos> <unk>``; words follow by decreasing count
(ties alphabetical) so the same captions always give the same ids. The vocabulary is stored as
a JSON extra (``vocab.json``) inside every captioner checkpoint.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)


def tokenize_captions(captions: Sequence[str]) -> list[list[str]]:
    """Tokenize captions into word lists with the metrics' PTB tokenization (coco-caption).

    This is the single adapter between the captioner and :mod:`audiocap.text.tokenize`; it calls
    ``ptb_tokenize`` (Chen et al. 2015, "Microsoft COCO Captions: data collection and evaluation
    server") and returns one list of lower-cased words per caption.
    """
    from audiocap.text.tokenize import ptb_tokenize

    out = ptb_tokenize(list(captions))
    return [t.split() if isinstance(t, str) else list(t) for t in out]


@dataclass
class Vocab:
    """Word <-> id mapping with the four special tokens first."""

    words: list[str] = field(default_factory=lambda: list(SPECIALS))

    def __post_init__(self) -> None:
        if tuple(self.words[:4]) != SPECIALS:
            raise ValueError(f"vocabulary must start with {SPECIALS}, got {self.words[:4]}")
        self.index = {w: i for i, w in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("vocabulary has duplicate words")

    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, tokenized: Iterable[Sequence[str]], *, min_count: int = 1) -> "Vocab":
        """Vocabulary of every word seen at least ``min_count`` times in tokenized captions."""
        counts = Counter(w for toks in tokenized for w in toks)
        kept = sorted((w for w, c in counts.items() if c >= min_count and w not in SPECIALS),
                      key=lambda w: (-counts[w], w))
        return cls(list(SPECIALS) + kept)

    def encode(self, tokens: Sequence[str], *, max_len: int | None = None) -> list[int]:
        """``<bos> w1 .. wn <eos>`` ids; unknown words map to ``<unk>``; ``max_len`` caps the words."""
        words = list(tokens)[:max_len] if max_len is not None else list(tokens)
        return [self.bos_id] + [self.index.get(w, self.unk_id) for w in words] + [self.eos_id]

    def decode(self, ids: Iterable[int]) -> str:
        """Words of ``ids`` joined by spaces, stopping at ``<eos>`` and skipping pad/bos."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in (self.pad_id, self.bos_id):
                continue
            out.append(self.words[i])
        return " ".join(out)

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored as ``vocab.json`` in a checkpoint."""
        return {"format": "audiocap-vocab-1", "words": self.words}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "Vocab":
        """Inverse of :meth:`to_json` (raises ``ValueError`` on a malformed object)."""
        if not isinstance(obj, dict) or obj.get("format") != "audiocap-vocab-1":
            raise ValueError("not an audiocap vocabulary (expected format 'audiocap-vocab-1')")
        words = obj.get("words")
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError("an audiocap vocabulary needs 'words': a list of strings")
        return cls(list(words))
