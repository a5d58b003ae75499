"""audiocap's fluency-error detector, its error rate and a fluency-penalised SPIDEr.

SPIDEr rewards captions that repeat an event or stop mid-phrase ("a door opens and a door opens
and a"), because the repeated n-grams still match the references. FENSE (Zhou et al., "Can
Audio Captions Be Evaluated with Image Caption Metrics?", ICASSP 2022) penalises such captions
with a BERT classifier trained on captions with synthetic errors; that detector cannot be
downloaded here, so audiocap trains its own in the same way (:mod:`audiocap.train.fluency`) and
reports it under its own names, never as FENSE or SPIDEr-FL, whose values it would not reproduce:

* synthetic errors of four kinds (:data:`ERROR_KINDS`) are injected into real Clotho and
  AudioCaps captions (:func:`inject_error`);
* a small head (:class:`FluencyHead`, a few hundred KB) reads the word-piece states of the
  frozen all-MiniLM-L6-v2 tower (:func:`token_states`) and gives P(error) and P(kind);
* ``fluency_error_rate`` = share of candidates with P(error) above the detector's threshold;
  ``spider_audiocap_fluency`` = SPIDEr x (1 - 0.9) on flagged captions, else SPIDEr (FENSE's
  penalty rule, applied to SPIDEr as DCASE 2023 does, with audiocap's detector).
"""

from __future__ import annotations

import os
import random
import re
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from audiocap.metrics.base import MetricResult
from audiocap.progress import Phase, ProgressFn

ERROR_KINDS = ("repeated_word", "repeated_event", "missing_verb", "incomplete_ending")
LABELS = ("error", *ERROR_KINDS)  # the head's outputs: any error, then each kind
PENALTY = 0.9  # a flagged caption keeps 10 % of its SPIDEr (FENSE's rule)
DIM = 384  # MiniLM's state size
MAX_TOKENS = 64  # word pieces read per caption (audio captions are far shorter)
GAPS = (1, 2, 3)  # distances (word pieces) at which a piece is compared with an earlier one
FOLDER = "fluency-default"

_AUX = {"is", "are", "was", "were", "be", "being", "been"}
_CONJ = ("and", "while", "as", "then", "before", "after", "with")
_DANGLING = ("a", "an", "the", "and", "of", "with", "in", "on", "while", "as", "to", "is", "are", "by", "from")
_NOT_VERBS = {"ceiling", "building", "something", "anything", "nothing", "everything", "thing", "things",
              "morning", "evening", "clothing", "ring", "king", "wing", "wings", "string", "strings", "spring",
              "springs", "ding", "during", "bring", "ping", "sling", "swing", "swings"}
_WORD = re.compile(r"[a-z0-9']+")


def normalize(caption: str) -> str:
    """Lower-case words without punctuation (how captioners write and how the detector reads), so
    a full stop cannot tell a human caption from a generated one."""
    return " ".join(_WORD.findall(caption.lower()))


def verb_lexicon(captions: Iterable[str]) -> frozenset[str]:
    """Verb forms seen in ``captions``: -ing words, and -s/-ed forms whose -ing form is seen
    ("barks", "passes", "makes", "runs", "cries", "passed"), plus auxiliaries. A tagger-free
    approximation: audio captions are short and their verbs are mostly these forms."""
    words = {w for c in captions for w in normalize(c).split()}
    ing = {w for w in words if w.endswith("ing") and len(w) > 4 and w not in _NOT_VERBS}
    verbs = set(ing) | _AUX
    for w in words:
        if w in _NOT_VERBS or len(w) < 3:
            continue
        stems = []
        if w.endswith("s"):
            stems = [w[:-1], w[:-2], w[:-3] + "y" if w.endswith("ies") else ""]
        elif w.endswith("ed"):
            stems = [w[:-2], w[:-1], w[:-3] + "y" if w.endswith("ied") else ""]
        for s in filter(None, stems):
            if {s + "ing", s[:-1] + "ing" if s.endswith("e") else "", s + s[-1:] + "ing",
                s[:-1] + "ying" if s.endswith("y") else ""} & ing:
                verbs.add(w)
                break
    return frozenset(verbs)


def inject_error(caption: str, kind: str, rng: random.Random, verbs: frozenset[str]) -> str | None:
    """``caption`` (normalized) with one synthetic fluency error of ``kind``, or None when the
    caption offers no place for it (no verb to drop, too short...)."""
    words = normalize(caption).split()
    if len(words) < 3:
        return None
    if kind == "repeated_word":  # "a dog barks barks loudly", "loudly loudly"
        i = rng.randrange(1, len(words))
        out = words[: i + 1] + [words[i]] * rng.choice((1, 1, 2)) + words[i + 1 :]
    elif kind == "repeated_event":  # "a door opens and a door opens", "... then a door opens"
        cut = next((i for i, w in enumerate(words) if i >= 2 and w in _CONJ), len(words))
        event = words[:cut]
        if len(event) < 2:
            return None
        joint = rng.choice((["and"], ["and", "then"], ["then"], ["while"], ["and", "meanwhile"], ["as"]))
        out = words + joint + event if rng.random() < 0.6 else event + joint + words
        if rng.random() < 0.25:
            out = out + rng.choice((["and"], ["then"])) + event
    elif kind == "missing_verb":  # "a dog loudly while a man in the background"
        out = [w for w in words if w not in verbs]
        if len(out) == len(words) or len(out) < 2:
            return None
    elif kind == "incomplete_ending":  # "a man talks and a", "birds chirp in the"
        stops = [i for i, w in enumerate(words[:-1]) if i >= 2 and w in _DANGLING]
        if stops and rng.random() < 0.7:
            out = words[: rng.choice(stops) + 1]
        else:
            out = words + rng.choice((["and"], ["and", "a"], ["while", "the"], ["with"], ["as", "a"], ["of"]))
    else:
        raise ValueError(f"unknown error kind {kind!r}; kinds: {', '.join(ERROR_KINDS)}")
    return " ".join(out)


@torch.no_grad()
def token_states(texts: Sequence[str], *, folder: str | None = None, batch_size: int = 64,
                 progress: Callable[[int], None] | None = None) -> list[torch.Tensor]:
    """Frozen MiniLM last-layer states (L_i, 384) of each normalized text's word pieces ([CLS] and
    [SEP] included: [SEP] marks where the caption ends), batched by length so padding costs little;
    ``progress(n)`` after each batch of n texts."""
    from audiocap.text.minilm import _cached

    tokenizer, model = _cached(folder)
    clean = [normalize(t) or "empty" for t in texts]
    order = sorted(range(len(clean)), key=lambda i: len(clean[i]))
    out: list[torch.Tensor] = [torch.empty(0)] * len(clean)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        batch = tokenizer([clean[i] for i in idx], padding=True, truncation=True, max_length=MAX_TOKENS,
                          return_tensors="pt")
        hidden = model(**batch).last_hidden_state  # (B, L, D)
        for row, i in enumerate(idx):
            out[i] = hidden[row, : int(batch["attention_mask"][row].sum())].clone()
        if progress is not None:
            progress(len(idx))
    return out


def repeat_flags(texts: Sequence[str], *, folder: str | None = None) -> list[torch.Tensor]:
    """(L_i, 3) per word piece of each normalized text: 1 where the piece equals the piece 1, 2
    or 3 places before it (MiniLM's own tokenizer; the last-layer states blur such repeats, the
    input pieces do not: "a a", "bark ##s bark ##s")."""
    from audiocap.text.minilm import _cached

    tokenizer = _cached(folder)[0]
    ids = tokenizer([normalize(t) or "empty" for t in texts], truncation=True, max_length=MAX_TOKENS)["input_ids"]
    out = []
    for row in ids:
        x = torch.tensor(row)
        flags = torch.zeros(len(x), len(GAPS))
        for j, gap in enumerate(GAPS):
            if len(x) > gap:
                flags[gap:, j] = (x[gap:] == x[:-gap]).float()
        flags[0] = flags[-1] = 0  # [CLS], [SEP]
        out.append(flags)
    return out


def pad_states(states: Sequence[torch.Tensor], flags: Sequence[torch.Tensor]
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, L, D) float32 states, (B, L, 3) repeat flags and (B, L) bool mask from lists of (L_i, .)."""
    mask = torch.zeros(len(states), max(len(x) for x in states), dtype=torch.bool)
    for i, x in enumerate(states):
        mask[i, : len(x)] = True
    pad = torch.nn.utils.rnn.pad_sequence
    return pad([x.float() for x in states], batch_first=True), pad(list(flags), batch_first=True), mask


class FluencyHead(nn.Module):
    """Frozen MiniLM states (B, L, 384), repeat flags (B, L, 3) + mask -> logits (B, 5) of :data:`LABELS`.

    A width-3 convolution over word pieces (state and repeat flags) sees local patterns (a word
    twice, a verb's gap, a dangling word before [SEP]), pooled by max and mean, and joins the
    [CLS] state and each flag's maximum (a direct path for "a piece right after itself") in a small MLP."""

    def __init__(self, hidden: int = 64, channels: int = 96, dropout: float = 0.1) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(DIM)
        self.conv = nn.Conv1d(DIM + len(GAPS), channels, kernel_size=3, padding=1)
        self.cls = nn.Linear(DIM, 32)
        self.mlp = nn.Sequential(nn.Linear(2 * channels + 32 + len(GAPS), hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, len(LABELS)))

    def forward(self, states: torch.Tensor, flags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1)
        x = self.norm(states) * m
        h = torch.nn.functional.gelu(self.conv(torch.cat([x, flags * m], -1).transpose(1, 2))).transpose(1, 2)
        peak = h.masked_fill(~m, float("-inf")).amax(1)  # (B, C)
        mean = (h * m).sum(1) / m.sum(1).clamp_min(1)
        return self.mlp(torch.cat([peak, mean, self.cls(x[:, 0]), (flags * m).amax(1)], -1))


class FluencyDetector:
    """A trained head folder (``model.safetensors`` + ``recipe.yaml`` with ``threshold``) on MiniLM."""

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        from audiocap.checkpoint import read_recipe, read_weights

        self.folder = Path(folder) if folder is not None else default_folder()
        file = self.folder / "model.safetensors"
        if not file.is_file():
            raise FileNotFoundError(f"{file}: no fluency detector here; train one with `audiocap train fluency` "
                                    "or use the shipped one (no folder)")
        self.recipe = read_recipe(self.folder)
        self.threshold = float(self.recipe["threshold"])
        m = self.recipe["model"]
        self.head = FluencyHead(hidden=int(m["hidden"]), channels=int(m["channels"]), dropout=0.0)
        self.head.load_state_dict(read_weights(file))
        self.head.eval()

    @torch.no_grad()
    def probabilities(self, texts: Sequence[str], batch_size: int = 256,
                      progress: Callable[[int], None] | None = None) -> np.ndarray:
        """(N, 5) probabilities of :data:`LABELS` for ``texts`` (``progress(n)``: n more texts
        through MiniLM, the slow part)."""
        states, flags = token_states(texts, progress=progress), repeat_flags(texts)
        out = [torch.sigmoid(self.head(*pad_states(states[s : s + batch_size], flags[s : s + batch_size])))
               for s in range(0, len(states), batch_size)]
        return torch.cat(out).double().numpy() if out else np.zeros((0, len(LABELS)))


def default_folder() -> Path:
    from audiocap.pretrained import pretrained_dir

    return pretrained_dir() / FOLDER


@lru_cache(maxsize=2)
def _detector(folder: str | None) -> FluencyDetector:
    return FluencyDetector(folder)


def fluency_error_rate(candidates: Sequence[str], references: Sequence[Sequence[str]] | None = None, *,
                       folder: str | os.PathLike | None = None, progress: ProgressFn | None = None,
                       system: str = "") -> MetricResult:
    """Share of candidates audiocap's detector flags (per item 1.0 = flagged, 0.0 = fluent);
    ``extra`` holds each item's P(error) and P(kind). References are not used (fluency is a
    property of the caption alone); unavailable, with the reason, when the detector or MiniLM is
    missing. ``progress`` gets "fluency_error_rate" events per batch of captions."""
    from audiocap.text.minilm import TextModelError

    phase = Phase(progress, "fluency_error_rate", len(candidates), unit="captions", system=system)
    try:
        det = _detector(None if folder is None else str(folder))
        probs = det.probabilities(list(candidates), progress=phase.advance)
    except (FileNotFoundError, TextModelError, ValueError) as exc:
        phase.finish(detail="unavailable")
        return MetricResult.unavailable("fluency_error_rate", str(exc))
    phase.finish()
    flags = (probs[:, 0] > det.threshold).astype(np.float64)
    extra = {"error_prob": probs[:, 0], **{f"{k}_prob": probs[:, i + 1] for i, k in enumerate(ERROR_KINDS)},
             "threshold": det.threshold}
    return MetricResult("fluency_error_rate", float(flags.mean()), flags, extra=extra)


def spider_audiocap_fluency(spider: MetricResult, fluency: MetricResult) -> MetricResult:
    """SPIDEr with audiocap's fluency penalty: a flagged caption's SPIDEr x (1 - 0.9); corpus = mean."""
    for part in (spider, fluency):
        if not part.available:
            return MetricResult.unavailable("spider_audiocap_fluency", f"{part.name} unavailable: {part.reason}")
    per_item = spider.per_item * (1.0 - PENALTY * fluency.per_item)
    return MetricResult("spider_audiocap_fluency", float(per_item.mean()), per_item)


__all__ = ["ERROR_KINDS", "LABELS", "FluencyDetector", "FluencyHead", "fluency_error_rate", "inject_error",
           "normalize", "pad_states", "repeat_flags", "spider_audiocap_fluency", "token_states", "verb_lexicon"]
