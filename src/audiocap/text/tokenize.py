"""coco-caption's caption tokenization in pure Python.

The captioning metrics of the field (BLEU, METEOR, ROUGE-L, CIDEr-D, SPICE; Chen et al.,
"Microsoft COCO Captions: Data Collection and Evaluation Server", 2015) first pass every
caption through Stanford's PTBTokenizer (CoreNLP 3.4.1, flags ``-preserveLines -lowerCase``)
and then drop the punctuation tokens of pycocoevalcap's ``PUNCTUATIONS`` list. This module
reproduces that pipeline without Java: the Penn Treebank rules that occur in caption text
(clitics ``'s 're 'd 'll 've 'm n't``, ``cannot`` -> ``can not``, bracket escapes such as
``-LRB-``, quotes, ellipses, dashes, acronyms like ``p.a.``) and the quirk that lower-casing
turns ``-LRB-`` into ``-lrb-``, which is then *not* removed because the punctuation list is
upper case. It is tested token for token against the Java tokenizer on every Clotho and
AudioCaps caption.
"""

from __future__ import annotations

import re

# pycocoevalcap.tokenizer.ptbtokenizer.PUNCTUATIONS (tokens dropped after tokenization)
PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
     ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)

# PTB3 escapes of brackets, lower-cased as `-lowerCase` does (so they survive the filter)
_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
_CHAR_MAP = str.maketrans({
    "\u2019": "'", "\u2018": "`", "\u201c": '"', "\u201d": '"', "\u2013": "--", "\u2014": "--",
    "\u00a0": " ", "\u2026": "...",
})
# words PTB splits into two tokens (Penn Treebank conventions)
_SPLIT_WORDS = {"cannot": ("can", "not"), "gonna": ("gon", "na"), "gotta": ("got", "ta"),
                "wanna": ("wan", "na"), "gimme": ("gim", "me"), "lemme": ("lem", "me")}

_TOKEN = re.compile(
    r"""
    (?P<num>\d+(?:,\d{3})+(?:\.\d+)?|\d+:\d+)          # 1,000 / 12,500.5 / 10:30
  | (?P<abbr>(?:mr|mrs|ms|dr|st|jr|sr|vs|etc|prof|inc|ltd|co|corp|mt|ft|no)\.(?![a-z0-9]))
  | (?P<acro>[a-z](?:\.[a-z])+\.)                     # p.a. / u.s.
  | (?P<neg>[a-z]+(?=n't(?![a-z])))                   # do|n't, ca|n't
  | (?P<nt>n't(?![a-z]))
  | (?P<clitic>'(?:s|re|d|ll|ve|m)(?![a-z0-9]))       # 's 're 'd 'll 've 'm
  | (?P<word>[a-z0-9]+(?:[-./_&@+][a-z0-9]+)*)         # words, hyphen/slash compounds, a.b
  | (?P<dots>\.\.+)                                   # ellipsis
  | (?P<dashes>--+)
  | (?P<quote>"|``|''|`)
  | (?P<marks>[?!]+)
  | (?P<other>\S)
    """,
    re.VERBOSE,
)


# most captions: lower-case words, spaces, commas and at most a final period
_SIMPLE = re.compile(r"[a-z ,]*\.?[ ]*")
_HAS_SPLIT_WORD = re.compile(r"cannot|gonna|gotta|wanna|gimme|lemme")


def _tokens(line: str):
    """Yield the lower-cased PTB tokens of one line (before punctuation removal)."""
    for m in _TOKEN.finditer(line):
        kind, tok = m.lastgroup, m.group()
        if kind == "word":
            yield from _SPLIT_WORDS.get(tok, (tok,))
        elif kind == "dots":
            yield "..."
        elif kind == "dashes":
            yield "--"
        elif kind == "quote":
            yield "''"  # `` and '' are both dropped; the direction does not matter here
        elif kind == "other":
            yield _BRACKETS.get(tok, tok)
        else:
            yield tok


def ptb_tokenize(texts: list[str]) -> list[str]:
    """Tokenize captions exactly like coco-caption's PTBTokenizer wrapper (Chen et al., 2015).

    Each caption becomes a string of space-joined, lower-cased Penn Treebank tokens with the
    punctuation tokens of pycocoevalcap's ``PUNCTUATIONS`` removed (``-preserveLines
    -lowerCase``; newlines inside a caption count as spaces). The output equals pycocoevalcap's
    Java tokenizer on every caption of Clotho v2.1 and AudioCaps (tested), without starting
    Java. A caption made only of punctuation becomes the empty string, as in coco-caption.
    """
    out = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"caption {i}: expected str, got {type(text).__name__}")
        line = text.replace("\n", " ")
        if not line.isascii():
            line = line.translate(_CHAR_MAP)
        line = line.lower()
        if _SIMPLE.fullmatch(line) and not _HAS_SPLIT_WORD.search(line):
            out.append(" ".join(line.replace(",", " ").replace(".", " ").split()))
        else:
            out.append(" ".join(t for t in _tokens(line) if t not in PUNCTUATIONS))
    return out
