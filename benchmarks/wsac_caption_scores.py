"""Caption scores for WSAC experiments, from audiocap's own metrics (:mod:`audiocap.metrics`).

One adapter so every WSAC benchmark scores with :class:`audiocap.metrics.captioning.Evaluator`
(coco-caption BLEU-1..4, ROUGE-L and CIDEr-D re-implemented and tested against pycocoevalcap,
METEOR 1.5 through its official jar, Sentence-BERT cosine) — the same code that scores the
supervised captioner, so the rows of one table are comparable.
"""

from __future__ import annotations

WSAC_METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d", "sbert_sim")


def score_captions(candidates: list[str], references: list[list[str]],
                   metrics: tuple[str, ...] = WSAC_METRICS) -> dict[str, float | None]:
    """Corpus scores ``{metric: score}`` of ``candidates`` against their reference lists, computed
    by audiocap's Evaluator (Chen et al., 2015 coco-caption definitions; SPICE is left out because
    its Java run is slow). A metric that cannot run here maps to None, never to an estimate."""
    from audiocap.metrics.captioning import Evaluator

    # an empty caption is scored as the word "empty" (as audiocap's captioner evaluation does):
    # the Evaluator rejects empty candidates, and dropping the item would flatter the corpus score
    results = Evaluator(metrics)([c if c.strip() else "empty" for c in candidates],
                                 [list(r) for r in references])
    return {name: (res.score if res.available else None) for name, res in results.items()}
