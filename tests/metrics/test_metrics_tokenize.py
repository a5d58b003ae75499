"""The pure-Python PTB tokenization equals pycocoevalcap's Java PTBTokenizer on every caption
of Clotho and AudioCaps and on a corpus of odd strings (issue 20 item 4)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from audiocap.javatools import JavaToolError
from audiocap.text import tokenize
from audiocap.text.tokenize import java_ptb_tokenize, ptb_tokenize

sys.path.insert(0, str(Path(__file__).parent))
from helpers_metrics import all_captions  # noqa: E402
from ptb_corpus import FIXTURE, corpus  # noqa: E402


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


def mismatches(texts: list[str], expected: list[str]) -> list[tuple[str, str, str]]:
    ours = ptb_tokenize(texts)
    bad = [(t, a, b) for t, a, b in zip(texts, ours, expected) if a != b]
    print(f"\nPTB tokenization: {len(texts)} strings, {len(bad)} mismatches")
    return bad


def test_odd_strings_match_the_stored_java_outputs():
    rows = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert len(rows) >= 400
    assert not mismatches([r["text"] for r in rows], [r["java"] for r in rows])[:10]


def test_issue_examples_match_java():
    # Java's outputs for the strings issue 20 lists (run once with the 3.4.1 jar)
    got = ptb_tokenize([
        "A café in Zürich", "a dog barks 🐶 loudly", "a clock chimes at twelve o'clock",
        "rock'n'roll music", "-5 degrees and .5 seconds", "C++ code", "the '90s", "yes ma'am",
        "rock &amp; roll", "a <tag> here", "@home", "birds, dogs etc.", "Русский голос",
        "中文 语音", "“quoted” text", "he didn’t", "½ cup", "€5", "http://x.com/a?b=c",
    ])
    assert got == [
        "a café in zürich", "a dog barks loudly", "a clock chimes at twelve o'clock",
        "rock 'n' roll music", "-5 degrees and .5 seconds", "c++ code", "the '90s",
        "yes ma'am", "rock & roll", "a <tag> here", "@home", "birds dogs etc.",
        "русский голос", "中文 语音", "quoted text", "he did n't", "1/2 cup", "$ 5",
        "http://x.com/a?b=c",
    ]


def test_next_caption_and_line_breaks():
    # a single-letter abbreviation loses its period before a line starting "The ", as in
    # coco-caption's batch; the last caption of a batch is followed by nothing
    assert ptb_tokenize(["a dog barks at x.", "The end", "a dog barks at x."]) == [
        "a dog barks at x", "the end", "a dog barks at x."]
    assert ptb_tokenize(["Mr.", "The end"]) == ["mr.", "the end"]
    # line breaks of any kind are spaces (Java would start a line and shift later captions)
    assert ptb_tokenize(["a\u2028b\rc\nd", "e"]) == ["a b c d", "e"]
    assert ptb_tokenize(["caf\udce9 x"]) == ["caf x"]  # lone surrogate: untokenizable


def test_unsure_strings_go_to_java(monkeypatch):
    calls = []

    def fake_java(texts):
        calls.append(list(texts))
        return [f"java {t}" for t in texts]

    monkeypatch.setattr(tokenize, "java_ptb_tokenize", fake_java)
    got = ptb_tokenize(["ok :)_ then", "a dog", "b :)9"])
    # each unsure caption is sent with the caption after it, the last one alone
    assert calls == [["ok :)_ then", "a dog", "b :)9"]]
    assert got == ["java ok :)_ then", "a dog", "java b :)9"]

    def no_java(texts):
        raise JavaToolError("java not found on PATH")

    monkeypatch.setattr(tokenize, "java_ptb_tokenize", no_java)
    with pytest.warns(UserWarning, match="1 caption.*without Java.*java not found"):
        assert ptb_tokenize(["ok :)_ then"]) == ["ok -rrb- _ then"]


@pytest.mark.slow
def test_whole_corpus_matches_live_java():
    texts = corpus()
    assert len(texts) >= 1000
    assert not mismatches(texts, java_ptb_tokenize(texts))[:10]


@pytest.mark.slow
def test_every_bmp_character_matches_live_java():
    # each character alone: letters, digits and symbols the jar knows, the rest deleted
    chars = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF
             and chr(c) not in "\n\r\x0b\x0c\u2028\u2029"]
    assert not mismatches(chars, java_ptb_tokenize(chars))[:10]
