"""Caption metrics of DCASE Task 6A and one :class:`Evaluator` that runs a chosen set.

Every metric takes ``candidates`` (list[str], one per item) and ``references``
(list[list[str]]), keyword-only hyper-parameters, and returns :class:`MetricResult` objects with
the corpus score and per-item scores. The n-gram metrics follow coco-caption (Chen et al., 2015)
exactly (tested against pycocoevalcap); METEOR and SPICE run the official jars. A metric that
cannot run here is returned with ``available=False`` and the reason, never estimated.
``fluency_error_rate`` and ``spider_audiocap_fluency`` use audiocap's own fluency-error detector
(:mod:`audiocap.metrics.fluency`), not FENSE's, so they carry audiocap's names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from audiocap.fileio import atomic_write_json
from audiocap.metrics.base import MetricInputError, MetricResult, check_inputs, prepare
from audiocap.metrics.fluency import fluency_error_rate, spider_audiocap_fluency
from audiocap.metrics.meteor import meteor
from audiocap.metrics.ngram import bleu, cider_d, ngram_metrics, rouge_l
from audiocap.metrics.spice import spice, spice_many, spider, spider_fl
from audiocap.progress import Phase, ProgressFn
from audiocap.text.tokenize import ptb_tokenize

__all__ = [
    "ALL_METRICS", "DEFAULT_METRICS", "Evaluator", "MetricInputError", "MetricResult", "bleu",
    "cider_d", "fluency_error_rate", "meteor", "ngram_metrics", "rouge_l", "sbert_sim", "sbert_sim_many", "spice",
    "spice_many", "spider", "spider_audiocap_fluency", "spider_fl", "vocab",
]

ALL_METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d", "spice",
               "spider", "spider_fl", "sbert_sim", "vocab", "fluency_error_rate", "spider_audiocap_fluency")
DEFAULT_METRICS = ALL_METRICS


def vocab(candidates: list[str], references: list[list[str]], *,
          tokenized: bool = False) -> MetricResult:
    """Vocabulary size: number of distinct PTB tokens over all candidates (corpus-level only;
    a common diversity measure in audio captioning, e.g. DCASE 2023 Task 6A). ``extra`` gives
    the references' vocabulary size and the candidate/reference ratio."""
    cands, refs = prepare(candidates, references, tokenized=tokenized)
    cand_vocab = {w for c in cands for w in c.split()}
    ref_vocab = {w for rs in refs for r in rs for w in r.split()}
    return MetricResult("vocab", float(len(cand_vocab)), None,
                        extra={"references": len(ref_vocab),
                               "ratio": len(cand_vocab) / max(len(ref_vocab), 1)})


def sbert_sim(candidates: list[str], references: list[list[str]], *,
              model_folder: str | None = None, batch_size: int = 128,
              progress: ProgressFn | None = None) -> MetricResult:
    """Sentence-embedding similarity: cosine of all-MiniLM-L6-v2 embeddings (Reimers & Gurevych,
    2019) between a candidate and each reference, averaged over references; corpus = mean.

    This is the SBERT half of FENSE's idea with a different model and without FENSE's fluency
    detector, so it is *not* FENSE and is never reported under that name. Raw (untokenized)
    captions are embedded.
    """
    return sbert_sim_many({"": candidates}, references, model_folder=model_folder,
                          batch_size=batch_size, progress=progress)[""]


def sbert_sim_many(systems: dict[str, list[str]], references: list[list[str]], *,
                   model_folder: str | None = None, batch_size: int = 128,
                   progress: ProgressFn | None = None) -> dict[str, MetricResult]:
    """:func:`sbert_sim` of several systems against the same references, embedding the
    references once: ``{system: MetricResult}`` (each equal to its own :func:`sbert_sim` up to
    float rounding, since texts are embedded in other batches). ``progress`` gets "sbert_sim"
    events counting the captions embedded (references and candidates)."""
    for cands in systems.values():
        check_inputs(cands, references)
    from audiocap.text.minilm import TextModelError, sentence_embeddings  # imported here: it loads torch
    flat = [r for refs in references for r in refs]
    texts = flat + [c for cands in systems.values() for c in cands]
    phase = Phase(progress, "sbert_sim", len(texts), unit="captions")
    try:
        emb = sentence_embeddings(texts, folder=model_folder, batch_size=batch_size,
                                  progress=phase.advance).cpu().double().numpy()
    except TextModelError as exc:
        phase.finish(detail="unavailable")
        return {name: MetricResult.unavailable("sbert_sim", str(exc)) for name in systems}
    phase.finish()
    n = len(references)
    ref, pos = emb[: len(flat)], len(flat)  # (R, D)
    ref_item = np.repeat(np.arange(n), [len(r) for r in references])  # (R,)
    out = {}
    for name in systems:
        cand, pos = emb[pos : pos + n], pos + n  # (N, D)
        cos = (cand[ref_item] * ref).sum(1)  # (R,)
        per_item = np.bincount(ref_item, weights=cos, minlength=n) / np.bincount(ref_item, minlength=n)
        out[name] = MetricResult("sbert_sim", float(per_item.mean()), per_item)
    return out


class Evaluator:
    """Run a chosen set of caption metrics on one corpus, tokenizing once.

    ``metrics``: names from :data:`ALL_METRICS` (default: all). ``spice_dir`` points at a SPICE
    folder (default ``$AUDIOCAP_SPICE_DIR`` or the user cache). ``spice_workers`` JVMs parse
    SPICE's item shards at the same time (same values as one run).

    ``progress`` receives :class:`audiocap.progress.Progress` events of every phase, in this order:
    "tokenize", "bleu, rouge_l, cider_d", "meteor" (per item as the jar returns them), "spice"
    (items of finished JVM shards; the detail says what each JVM does and whether the references
    came from the parse cache), "sbert_sim" and "fluency_error_rate" (per batch); per-system phases
    carry the system's name. :class:`audiocap.progress.ProgressView` draws them; ``str(event)``
    is a readable line, so a callback that only prints its argument keeps working.
    """

    def __init__(self, metrics: Iterable[str] | None = None, *,
                 spice_dir: str | os.PathLike | None = None, spice_memory: str = "8G",
                 progress: ProgressFn | None = None, spice_workers: int = 1):
        self.metrics = list(metrics) if metrics is not None else list(DEFAULT_METRICS)
        unknown = [m for m in self.metrics if m not in ALL_METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(ALL_METRICS)}")
        self.spice_dir = spice_dir
        self.spice_memory = spice_memory
        self.spice_workers = spice_workers
        self.progress = progress

    def __call__(self, candidates: list[str], references: list[list[str]]) -> dict[str, MetricResult]:
        """Compute the chosen metrics; returns ``{name: MetricResult}`` in the requested order."""
        return self.evaluate_many({"": candidates}, references)[""]

    def evaluate_many(self, systems: dict[str, list[str]],
                      references: list[list[str]]) -> dict[str, dict[str, MetricResult]]:
        """Score several systems on the same references: ``{system: {metric: MetricResult}}``.

        Every metric is computed per system exactly as :meth:`__call__` would; only SPICE is
        batched, running the official jar once for all systems (see
        :func:`~audiocap.metrics.spice.spice_many`), which makes an ablation table with SPICE
        cost one JVM start and one parse of the references instead of one per row.
        """
        want = set(self.metrics)
        if not systems:
            return {}
        prepared: dict[str, tuple[list[str], list[list[str]]]] = {}
        refs_tok: list[list[str]] | None = None
        n_refs = sum(len(r) for r in references)
        with Phase(self.progress, "tokenize", n_refs + sum(map(len, systems.values())), unit="captions") as tok:
            for name, cands in systems.items():  # the references are tokenized once, with the first system
                if refs_tok is None:
                    prepared[name] = prepare(cands, references, tokenized=False)
                    refs_tok = prepared[name][1]
                    tok.advance(n_refs + len(cands))
                else:
                    check_inputs(cands, references)
                    prepared[name] = (ptb_tokenize(list(cands)), refs_tok)
                    tok.advance(len(cands))
        outs: dict[str, dict[str, MetricResult]] = {name: {} for name in systems}

        if want & {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider_d", "spider", "spider_audiocap_fluency"}:
            for name in systems:  # fast (pure Python, per corpus): one event before and one after
                with Phase(self.progress, "bleu, rouge_l, cider_d", len(prepared[name][0]), system=name):
                    outs[name].update(ngram_metrics(*prepared[name], tokenized=True))
        if "meteor" in want:
            for name in systems:
                outs[name]["meteor"] = meteor(*prepared[name], tokenized=True, progress=self.progress, system=name)
        if want & {"spice", "spider", "spider_audiocap_fluency"}:
            batched = spice_many({n: p[0] for n, p in prepared.items()}, refs_tok,
                                 tokenized=True, folder=self.spice_dir, memory=self.spice_memory,
                                 workers=self.spice_workers, progress=self.progress)
            for name in systems:
                outs[name]["spice"] = batched[name]
        for name, (cands, refs) in prepared.items():
            out = outs[name]
            if want & {"spider", "spider_audiocap_fluency"}:
                out["spider"] = spider(out["cider_d"], out["spice"])
            if "spider_fl" in want:
                out["spider_fl"] = spider_fl()
            if "vocab" in want:
                out["vocab"] = vocab(cands, refs, tokenized=True)
        if "sbert_sim" in want:
            for name, res in sbert_sim_many(systems, references, progress=self.progress).items():
                outs[name]["sbert_sim"] = res
        if want & {"fluency_error_rate", "spider_audiocap_fluency"}:
            for name, cands in systems.items():
                fluency = outs[name]["fluency_error_rate"] = fluency_error_rate(
                    list(cands), progress=self.progress, system=name)
                if "spider_audiocap_fluency" in want:
                    outs[name]["spider_audiocap_fluency"] = spider_audiocap_fluency(outs[name]["spider"], fluency)
        return {name: {m: outs[name][m] for m in self.metrics} for name in systems}

    @staticmethod
    def table(results: dict[str, MetricResult], title: str = "caption metrics"):
        """A rich Table: one row per metric with the corpus score or 'unavailable: reason'."""
        from rich.table import Table

        table = Table(title=title)
        table.add_column("metric")
        table.add_column("score", justify="right")
        table.add_column("note")
        for name, res in results.items():
            if not res.available:
                table.add_row(name, "—", f"unavailable: {res.reason}")
            elif name == "vocab":
                table.add_row(name, f"{res.score:.0f}", f"references: {res.extra['references']}")
            else:
                table.add_row(name, f"{res.score:.4f}", "")
        return table

    @staticmethod
    def systems_table(results: dict[str, dict[str, MetricResult]], title: str = "caption metrics",
                      labels: dict[str, str] | None = None):
        """A rich Table with one row per metric and one column per system (``labels`` gives
        short column names); "—" = unavailable, with the reasons in the table's caption."""
        from rich.markup import escape
        from rich.table import Table

        labels = labels or {}
        table = Table(title=title)
        table.add_column("metric")
        for system in results:
            table.add_column(escape(labels.get(system, system)), justify="right")
        reasons = {}
        for name in next(iter(results.values()), {}):
            cells = []
            for res in results.values():
                r = res[name]
                if not r.available:
                    reasons[name] = r.reason
                    cells.append("—")
                else:
                    cells.append(f"{r.score:.0f}" if name == "vocab" else f"{r.score:.4f}")
            table.add_row(name, *cells)
        if reasons:
            table.caption = escape("; ".join(f"{n} unavailable: {why}" for n, why in reasons.items()))
        return table

    @staticmethod
    def to_json(results: dict[str, MetricResult], *, ids: list[str] | None = None,
                meta: dict | None = None) -> dict:
        """JSON-ready dict: ``{"meta": ..., "ids": [...], "metrics": {name: {...}}}``."""
        return {"meta": meta or {}, "ids": ids,
                "metrics": {name: res.to_json() for name, res in results.items()}}

    @classmethod
    def write_json(cls, results: dict[str, MetricResult], path: str | os.PathLike, **kw) -> Path:
        """Write :meth:`to_json` atomically to ``path``."""
        return atomic_write_json(path, cls.to_json(results, **kw))
