"""The pure-Python PTB tokenization equals pycocoevalcap's Java PTBTokenizer on every caption."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from audiocap.text.tokenize import ptb_tokenize

sys.path.insert(0, str(Path(__file__).parent))
from helpers_metrics import all_captions  # noqa: E402


def java_ptb(captions: list[str]) -> list[str]:
    """pycocoevalcap's wrapper: one JVM call for all captions."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    out = PTBTokenizer().tokenize({i: [{"caption": c}] for i, c in enumerate(captions)})
    return [out[i][0] for i in range(len(captions))]


def compare(captions: list[str]) -> None:
    ours = ptb_tokenize(captions)
    ref = java_ptb(captions)
    mismatches = [(c, a, b) for c, a, b in zip(captions, ours, ref) if a != b]
    print(f"\nPTB tokenization: {len(captions)} captions, {len(mismatches)} mismatches")
    assert not mismatches, mismatches[:5]


def test_every_clotho_and_audiocaps_caption_matches_java(shared):
    captions = all_captions(shared)
    assert len(captions) == 19195 + 5225 + 5225 + 49838 + 2475 + 4875
    compare(captions)


def test_tricky_cases():
    got = ptb_tokenize([
        "A dog's bark -- then (quietly) a man's voice; it's \u201cfine\u201d!",
        "Distant traffic cannot drown it out..",
        "A p.a. system]}",
        "...",
    ])
    assert got == [
        "a dog 's bark then -lrb- quietly -rrb- a man 's voice it 's fine",
        "distant traffic can not drown it out",
        "a p.a. system -rsb- -rcb-",
        "",
    ]
    with pytest.raises(TypeError, match="caption 1"):
        ptb_tokenize(["ok", 3])
