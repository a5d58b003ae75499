"""Caption scores for WSAC experiments: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D.

Thin adapter until audiocap's metrics Evaluator is on main: it uses the coco-caption
reference implementation (pycocoevalcap: PTB tokenizer, Bleu, Meteor 1.5, Rouge, Cider —
coco-caption's "CIDEr" is CIDEr-D: σ = 6 length penalty and clipped counts).
"""

from __future__ import annotations


def score_captions(candidates: list[str], references: list[list[str]]) -> dict[str, float]:
    """Corpus scores of ``candidates`` against their reference lists (coco-caption)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    res = tok.tokenize({i: [{"caption": c}] for i, c in enumerate(candidates)})
    gts = tok.tokenize({i: [{"caption": r} for r in refs] for i, refs in enumerate(references)})
    out: dict[str, float] = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out.update({f"bleu_{n}": float(b) for n, b in enumerate(bleu, start=1)})
    out["meteor"] = float(Meteor().compute_score(gts, res)[0])
    out["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
    out["cider_d"] = float(Cider().compute_score(gts, res)[0])
    return out
