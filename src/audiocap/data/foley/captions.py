"""Captions true to a recipe: five different Clotho-style sentences per clip, and their check.

Captions are assembled only from the reviewed phrases of ``lexicon.yaml`` (clauses such as
"a dog barks", noun phrases such as "a barking dog") joined by templates that state order
("then", "followed by") or simultaneity ("while", "as") from the recipe's onsets, how often
(exact counts only when every placed recording holds a single burst; otherwise "repeatedly"),
how near (the recipe's near/far gain) and the background bed. Each caption has 8-20 words, as
Clotho's captions do (Drossos et al., 2020, "Clotho: an audio captioning dataset").
:func:`labels_in` recovers the labels a caption names, so tests can check captions against
recipes in both directions.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import yaml

MIN_WORDS, MAX_WORDS, N_CAPTIONS = 8, 20, 5


class CaptionError(RuntimeError):
    """No set of distinct captions within the length bounds exists for a recipe."""


@lru_cache(maxsize=1)
def lexicon() -> dict[str, Any]:
    """The packaged, reviewed caption lexicon (labels, phrases, modifiers)."""
    text = resources.files("audiocap.data.foley").joinpath("lexicon.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def lexicon_digest() -> str:
    """Short hash of the lexicon text: captions change when it does, audio does not."""
    text = resources.files("audiocap.data.foley").joinpath("lexicon.yaml").read_bytes()
    return hashlib.md5(text).hexdigest()[:12]


def word_count(caption: str) -> int:
    """Words in a caption, ignoring punctuation (Clotho counts words the same way)."""
    return len(re.findall(r"[A-Za-z']+", caption))


def labels_in(caption: str) -> set[str]:
    """Labels whose lexicon phrases occur in ``caption`` (case-insensitive, whole words)."""
    text = re.sub(r"[^a-z']+", " ", caption.lower())
    found = set()
    for label, entry in lexicon()["labels"].items():
        for phrase in entry["clause"] + entry["gerund"]:
            norm = re.sub(r"[^a-z']+", " ", phrase.lower()).strip()
            if re.search(rf"(?<![a-z']){re.escape(norm)}(?![a-z'])", text):
                found.add(label)
                break
    return found


def _pick(rng: np.random.Generator, options: list[str], short: bool = False) -> str:
    """A random option, or (short=True) a random one among the options with fewest words."""
    if short:
        fewest = min(word_count(o) for o in options)
        options = [o for o in options if word_count(o) == fewest]
    return options[int(rng.integers(len(options)))]


def _how_often(rng: np.random.Generator, ev: dict[str, Any], bursts: dict[str, int]) -> str:
    """'' / 'twice' / 'repeatedly' ... for a shot event; counts only for single-burst recordings."""
    mods = lexicon()["modifiers"]
    if ev["kind"] != "shot":
        return ""
    single = all(bursts.get(h["rec"], 2) == 1 for h in ev["hits"])
    n = ev["repeats"]
    if single and n in mods["count"] and (n > 1 or rng.random() < 0.3):
        return _pick(rng, mods["count"][n])
    if n > 1:
        return _pick(rng, mods["repeat"])
    return ""


def _phrase(rng: np.random.Generator, ev: dict[str, Any], form: str, bursts: dict[str, int],
            detail: bool) -> str:
    """One event as a clause or noun phrase with optional count and distance modifiers."""
    entry = lexicon()["labels"][ev["label"]]
    words = [_pick(rng, entry[form], short=not detail)]
    if detail:
        often = _how_often(rng, ev, bursts)
        if often:
            words.append(often)
        if ev["distance"] == "far" or rng.random() < 0.5:
            words.append(_pick(rng, lexicon()["modifiers"][ev["distance"]]))
    return " ".join(words)


def _foreground(rng: np.random.Generator, evs: list[dict[str, Any]], bursts: dict[str, int],
                detail: bool) -> str:
    c = lambda e: _phrase(rng, e, "clause", bursts, detail)  # noqa: E731
    g = lambda e: _phrase(rng, e, "gerund", bursts, detail)  # noqa: E731
    if len(evs) == 1:
        t = int(rng.integers(4))
        return [lambda: c(evs[0]), lambda: f"{g(evs[0])} can be heard",
                lambda: f"there is {g(evs[0])}", lambda: f"you can hear {g(evs[0])}"][t]()
    rel = ["overlap" if b["onset"] < a["onset"] + a["span"] else "then" for a, b in zip(evs, evs[1:])]
    if len(evs) == 2:
        a, b = evs
        if rel[0] == "then":
            t = int(rng.integers(5))
            return [lambda: f"{c(a)} and then {c(b)}", lambda: f"{c(a)}, followed by {g(b)}",
                    lambda: f"first {c(a)}, then {c(b)}", lambda: f"after {g(a)}, {c(b)}",
                    lambda: f"{c(a)} before {c(b)}"][t]()
        t = int(rng.integers(4))
        return [lambda: f"{c(a)} while {c(b)}", lambda: f"{c(b)} as {c(a)}",
                lambda: f"{g(a)} and {g(b)} at the same time", lambda: f"{c(a)} and meanwhile {c(b)}"][t]()
    a, b, d = evs
    first = {"then": [f"{c(a)}, then {c(b)}", f"first {c(a)}, then {c(b)}"],
             "overlap": [f"{c(a)} while {c(b)}", f"{c(a)} as {c(b)}"]}[rel[0]]
    second = {"then": [f"and then {c(d)}", f"and finally {c(d)}", f"followed by {g(d)}"],
              "overlap": [f"and meanwhile {c(d)}", f"and at the same time {c(d)}",
                          f"with {g(d)} at the same time"]}[rel[1]]
    return f"{_pick(rng, first)}, {_pick(rng, second)}"


def _background(rng: np.random.Generator, fg: str, bg: dict[str, Any] | None, short: bool) -> str:
    mods = lexicon()["modifiers"]
    if bg is None:
        return f"{fg} {_pick(rng, mods['quiet'])}" if rng.random() < 0.6 else fg
    entry = lexicon()["labels"][bg["label"]]
    clause, gerund = _pick(rng, entry["clause"], short), _pick(rng, entry["gerund"], short)
    t = int(rng.integers(1 if " while " in f" {fg} " else 0, 6))
    return [f"{fg} while {clause} in the background", f"{fg} with {gerund} in the background",
            f"{fg} over the sound of {gerund}", f"against a background of {gerund}, {fg}",
            f"{clause} in the background as {fg}", f"{fg}, and {gerund} throughout"][t]


def _finish(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip().rstrip(",")
    return text[0].upper() + text[1:] + "."


def make_captions(recipe: dict[str, Any], bursts: dict[str, int], rng: np.random.Generator,
                  n: int = N_CAPTIONS) -> list[str]:
    """``n`` distinct captions of 8-20 words for ``recipe``, each naming every event and the bed.

    Candidates are drawn with random templates and synonyms; when too few fit the length
    bounds, candidates drop count/distance details (too long) or add a true quiet-setting
    clause (too short, only when there is no background).
    """
    out: list[str] = []
    for attempt in range(400):
        detail = attempt < 200 or (attempt < 300 and rng.random() < 0.5)
        fg = _foreground(rng, recipe["events"], bursts, detail)
        text = _background(rng, fg, recipe["background"], short=not detail)
        cap = _finish(text)
        ok = MIN_WORDS <= word_count(cap) <= MAX_WORDS and all(cap.lower().count(w) <= 1 for w in (" while ", " as "))
        if ok and cap not in out:
            out.append(cap)
            if len(out) == n:
                return out
    if len(out) < n:
        raise CaptionError(f"could not make {n} captions of {MIN_WORDS}-{MAX_WORDS} words for clip "
                           f"{recipe['index']} (labels {[e['label'] for e in recipe['events']]}); "
                           "add shorter or longer phrases to lexicon.yaml")
    return out
