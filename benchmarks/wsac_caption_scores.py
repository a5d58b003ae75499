"""Caption scores for WSAC experiments, from audiocap's own metrics (:mod:`audiocap.metrics`).

One adapter so every WSAC benchmark scores with :class:`audiocap.metrics.evaluator.Evaluator`
(coco-caption BLEU-1..4, ROUGE-L and CIDEr-D re-implemented and tested against pycocoevalcap,
METEOR 1.5 and SPICE 1.0 through their official jars, SPIDEr, Sentence-BERT cosine, vocabulary
size) — the same code that scores the supervised captioner, so the rows of one table are
comparable. Several systems on the same references share one SPICE run
(:meth:`Evaluator.evaluate_many`).
"""

from __future__ import annotations

WSAC_METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d", "spice", "spider",
                "sbert_sim", "vocab")


def score_systems(systems: dict[str, list[str]], references: list[list[str]],
                  metrics: tuple[str, ...] = WSAC_METRICS) -> dict[str, dict[str, float | None]]:
    """Corpus scores ``{system: {metric: score}}`` of several candidate lists against the same
    references, computed by audiocap's Evaluator (Chen et al., 2015 coco-caption definitions;
    SPICE, Anderson et al. 2016, runs once for all systems). A metric that cannot run here maps to
    None, never to an estimate."""
    from audiocap.metrics.evaluator import Evaluator

    # an empty caption is scored as the word "empty" (as audiocap's captioner evaluation does):
    # the Evaluator rejects empty candidates, and dropping the item would flatter the corpus score
    filled = {name: [c if c.strip() else "empty" for c in cands] for name, cands in systems.items()}
    results = Evaluator(metrics).evaluate_many(filled, [list(r) for r in references])
    return {name: {m: (res.score if res.available else None) for m, res in per.items()}
            for name, per in results.items()}


def score_captions(candidates: list[str], references: list[list[str]],
                   metrics: tuple[str, ...] = WSAC_METRICS) -> dict[str, float | None]:
    """:func:`score_systems` for one system: ``{metric: score}``."""
    return score_systems({"": candidates}, references, metrics)[""]
