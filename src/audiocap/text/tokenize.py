"""coco-caption's caption tokenization in pure Python.

The captioning metrics of the field (BLEU, METEOR, ROUGE-L, CIDEr-D, SPICE; Chen et al.,
"Microsoft COCO Captions: Data Collection and Evaluation Server", 2015) first pass every
caption through Stanford's PTBTokenizer (CoreNLP 3.4.1, flags ``-preserveLines -lowerCase``)
and then drop the punctuation tokens of pycocoevalcap's ``PUNCTUATIONS`` list. This module
reproduces that pipeline without Java: plain captions (ASCII letters, commas, a final period)
take a fast path, everything else runs through :mod:`audiocap.text.ptb_lexer`, the jar's
grammar restated in Python (non-ASCII letters, emoji deleted as Java deletes them, clitics,
``o'clock``, numbers with signs, entities, tags, URLs, final abbreviations...). Lower-casing
turns ``-LRB-`` into ``-lrb-``, which is then *not* removed because the punctuation list is
upper case. Tested token for token against the Java tokenizer on every Clotho and AudioCaps
caption, a corpus of 2,592 odd strings and every BMP character.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import warnings

from audiocap.text.ptb_lexer import ABBREV1_WORDS, ABBREV4_WORDS, lex

# pycocoevalcap.tokenizer.ptbtokenizer.PUNCTUATIONS (tokens dropped after tokenization)
PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
     ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)


def _expand(alternatives: str) -> set[str]:
    """The lower-case words an alternation of the grammar's notation spells (``Kans?``,
    ``M[ft]g``); alternatives with a period or a group cannot end a plain caption: skipped."""
    words = set()
    for alt in alternatives.split("|"):
        if "\\" in alt or "(" in alt:
            continue
        variants, i = [""], 0
        while i < len(alt):
            if alt[i] == "[":
                j = alt.index("]", i)
                unit, i = list(alt[i + 1:j]), j + 1
            else:
                unit, i = [alt[i]], i + 1
            if alt[i:i + 1] == "?":
                unit, i = unit + [""], i + 1
            variants = [v + u for v in variants for u in unit]
        words.update(v.lower() for v in variants)
    return words


def _not_after(words: set[str]) -> str:
    """Lookbehinds (fixed width, so one per length) that fail right after any of ``words``."""
    by_length: dict[int, list[str]] = {}
    for w in sorted(words):
        by_length.setdefault(len(w), []).append(w)
    return "".join(f"(?<![ ,]{alt})(?<!^{alt})" for alt in
                   ("(?:" + "|".join(ws) + ")" for _, ws in sorted(by_length.items())))


# The common caption once lower-cased: ASCII letters, spaces, commas and at most a final
# period, unless the word before it may be an abbreviation ("etc.", "x.", "Miss."), which
# the lexer decides (the case matters there).
_SIMPLE = re.compile(r"[a-z ,]*(?:" + _not_after(
    _expand(f"{ABBREV1_WORDS}|{ABBREV4_WORDS}") | set("abcdefghijklmnopqrstuvwxyz"))
    + r"\.)?[ ]*")
_HAS_SPLIT_WORD = re.compile(r"cannot|gonna|gotta|wanna|gimme|lemme")


def _prepare(text: str) -> str:
    """One tokenizer input line: line breaks become spaces, lone surrogates too."""
    if not text.isascii():
        text = _LONE_SURROGATE.sub(" ", text)
    return text.translate(_LINE_BREAKS)


def ptb_tokenize(texts: list[str]) -> list[str]:
    """Tokenize captions exactly like coco-caption's PTBTokenizer wrapper (Chen et al., 2015).

    Each caption becomes a string of space-joined, lower-cased Penn Treebank tokens with the
    punctuation tokens of pycocoevalcap's ``PUNCTUATIONS`` removed (``-preserveLines
    -lowerCase``). Captions are one batch, as in pycocoevalcap: each is a line of the
    tokenizer's input and the next line can decide a final abbreviation (``x.`` before a line
    starting "The " loses its period). Line breaks inside a caption count as spaces (Java would
    start a new line there and shift every later caption). Plain captions take a fast path; the
    rest run through :mod:`audiocap.text.ptb_lexer`, CoreNLP 3.4.1's grammar in Python, so no
    Java is started, except for a caption with a smiley right before a digit, ``_`` or ``.``
    (``:)_``), where the jar's choice is not reproduced: those few are sent to the Java
    tokenizer in one call (:func:`java_ptb_tokenize`). Without Java or pycocoevalcap they keep
    the Python tokens, which may differ from coco-caption's there, and a warning says so. A
    caption made only of punctuation becomes the empty string.
    """
    out, unsure = [], []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"caption {i}: expected str, got {type(text).__name__}")
        low = text.lower()
        if _SIMPLE.fullmatch(low) and text.isascii() and not _HAS_SPLIT_WORD.search(low):
            out.append(" ".join(low.replace(",", " ").replace(".", " ").split()))
            continue
        following = texts[i + 1] if i + 1 < len(texts) else None
        after = "\n" + _prepare(following) if isinstance(following, str) else ""
        line = _prepare(text)
        if _UNSURE.search(line):
            unsure.append(i)
        # read as pycocoevalcap reads Java's output line: rstrip() (which also strips a last
        # token's trailing U+00A0), split on spaces, drop punctuation
        line = " ".join(lex(line, after)).lower().rstrip()
        out.append(" ".join(t for t in line.split(" ") if t not in PUNCTUATIONS))
    if unsure:
        _java_fallback(texts, unsure, out)
    return out


# A smiley followed by a digit, "_" or ".": the jar's answer depends on more than the next
# character (a JFlex trailing-context quirk not reproduced here), so Java decides these.
_UNSURE = re.compile(r"[:;=][\-o*']?[()DPdpO\\{@|\[\]][0-9_.]")


def _java_fallback(texts: list[str], indices: list[int], out: list[str]) -> None:
    """Put the Java tokenizer's tokens in ``out[i]`` for ``i`` in ``indices`` (if Java runs)."""
    from audiocap.javatools import JavaToolError

    batch, where = [], []
    for i in indices:  # each caption followed by its own successor, as in the whole batch
        where.append(len(batch))
        batch += texts[i:i + 2]
    try:
        tokens = java_ptb_tokenize(batch)
    except (JavaToolError, OSError, subprocess.TimeoutExpired) as exc:
        warnings.warn(f"{len(indices)} caption(s) with a smiley before a digit, '_' or '.' "
                      f"were tokenized without Java and may differ from coco-caption's: {exc}",
                      stacklevel=3)
        return
    for i, k in zip(indices, where):
        out[i] = tokens[k]


# characters Java's lexer ends a line at; pycocoevalcap replaces only "\n", so any of these
# would shift every later caption onto the wrong tokens: here they count as spaces
_LINE_BREAKS = str.maketrans({c: " " for c in "\n\r\x0b\x0c\u2028\u2029"})
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def java_ptb_tokenize(texts: list[str]) -> list[str]:
    """coco-caption's tokenization run by Java: the PTBTokenizer of the pycocoevalcap wheel.

    One ``java -cp stanford-corenlp-3.4.1.jar edu.stanford.nlp.process.PTBTokenizer
    -preserveLines -lowerCase`` process for all texts (one line each), then pycocoevalcap's
    punctuation filter. Line breaks inside a text count as spaces and a lone surrogate (which
    UTF-8 cannot carry) as an untokenizable character. Raises
    :class:`audiocap.javatools.JavaToolError` when Java or pycocoevalcap is missing.
    """
    from audiocap.javatools import JavaToolError, java_executable, pycocoevalcap_dir

    jar = pycocoevalcap_dir() / "tokenizer" / "stanford-corenlp-3.4.1.jar"
    if not jar.is_file():
        raise JavaToolError(f"{jar}: PTBTokenizer jar not found; reinstall pycocoevalcap==1.2")
    lines = [_prepare(t) for t in texts]
    with tempfile.TemporaryDirectory(prefix="audiocap-ptb-") as tmp:
        src = f"{tmp}/captions.txt"
        with open(src, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
        proc = subprocess.run([java_executable(), "-cp", str(jar),
                               "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines",
                               "-lowerCase", src], capture_output=True, timeout=600)
    out = proc.stdout.decode("utf-8").split("\n")
    if proc.returncode != 0 or len(out) < len(lines):
        raise JavaToolError(f"the Java PTBTokenizer failed (exit {proc.returncode}): "
                            f"{proc.stderr.decode(errors='replace').strip()[-300:]}")
    return [" ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS)
            for line in out[:len(lines)]]
