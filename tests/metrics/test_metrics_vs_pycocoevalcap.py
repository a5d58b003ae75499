"""BLEU, ROUGE-L, CIDEr-D (and METEOR) equal pycocoevalcap, corpus and per item."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from audiocap.metrics.base import MetricInputError
from audiocap.metrics.evaluator import bleu, cider_d, meteor, rouge_l

sys.path.insert(0, str(Path(__file__).parent))
from helpers_metrics import audiocaps_groups, clotho_pairs  # noqa: E402


def coco_inputs(cands, refs):
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": r} for r in rs] for i, rs in enumerate(refs)})
    res = tok.tokenize({i: [{"caption": c}] for i, c in enumerate(cands)})
    return gts, res


def corpora(shared):
    c1 = clotho_pairs(shared, cand=1)
    c2 = clotho_pairs(shared, cand=2)
    groups = audiocaps_groups(shared, "test")
    ac = ([g[0] for g in groups], [g[1:] for g in groups])
    return {"clotho_c1": c1, "clotho_c2": c2, "audiocaps_test": ac}


@pytest.mark.parametrize("corpus", ["clotho_c1", pytest.param("clotho_c2", marks=pytest.mark.slow),
                                    pytest.param("audiocaps_test", marks=pytest.mark.slow)])
def test_ngram_metrics_equal_pycocoevalcap(shared, corpus):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    cands, refs = corpora(shared)[corpus]
    gts, res = coco_inputs(cands, refs)
    b_score, b_items = Bleu(4).compute_score(gts, res, verbose=0)
    ours = bleu(cands, refs)
    for k in range(4):
        got = ours[f"bleu_{k + 1}"]
        assert abs(got.score - b_score[k]) < 1e-6
        np.testing.assert_allclose(got.per_item, b_items[k], atol=1e-6, rtol=0)
    r_score, r_items = Rouge().compute_score(gts, res)
    got = rouge_l(cands, refs)
    assert abs(got.score - r_score) < 1e-6
    np.testing.assert_allclose(got.per_item, r_items, atol=1e-6, rtol=0)
    c_score, c_items = Cider().compute_score(gts, res)
    got = cider_d(cands, refs)
    assert abs(got.score - c_score) < 1e-6
    np.testing.assert_allclose(got.per_item, c_items, atol=1e-6, rtol=0)
    assert 0.1 < got.score < 3  # a real corpus, not a degenerate one


def check_meteor(cands, refs):
    from pycocoevalcap.meteor.meteor import Meteor

    gts, res = coco_inputs(cands, refs)
    reference = Meteor()  # starts its JVM now, so both JVMs load side by side
    got = meteor(cands, refs)
    score, items = reference.compute_score(gts, res)
    assert got.available, got.reason
    assert abs(got.score - score) < 1e-4
    np.testing.assert_allclose(got.per_item, items, atol=1e-4, rtol=0)


def test_meteor_subset_equals_pycocoevalcap(shared):
    cands, refs = clotho_pairs(shared, cand=1)
    check_meteor(cands[:30], refs[:30])


@pytest.mark.slow
@pytest.mark.parametrize("corpus", ["clotho_c1", "clotho_c2", "audiocaps_test"])
def test_meteor_full_equals_pycocoevalcap(shared, corpus):
    check_meteor(*corpora(shared)[corpus])


def test_hand_checked_values():
    # identical caption: every metric is perfect
    assert bleu(["a dog barks"], [["a dog barks"]], n=3)["bleu_3"].score == pytest.approx(1.0)
    assert rouge_l(["a dog barks"], [["a dog barks", "cats"]]).score == pytest.approx(1.0)
    # ROUGE-L by hand: LCS("a dog barks loudly", "a dog is barking loudly") = 3 ("a dog loudly")
    p, r = 3 / 4, 3 / 5
    assert rouge_l(["a dog barks loudly"], [["a dog is barking loudly"]]).score == pytest.approx(
        (1 + 1.2**2) * p * r / (r + 1.2**2 * p))
    # BLEU-1 by hand: 3 of 4 unigrams match, candidate longer than ref -> no brevity penalty
    assert bleu(["a big dog barks"], [["a dog barks"]], n=1)["bleu_1"].score == pytest.approx(0.75)
    # CIDEr-D: with one item every n-gram has df = N = 1, so all weights vanish -> 0
    assert cider_d(["a dog barks"], [["a dog barks"]]).score == 0.0


@pytest.mark.parametrize("cands, refs, match", [
    (["a", "b"], [["a"]], "2 candidates but 1 reference"),
    (["a dog", "  "], [["x"], ["y"]], "item 1: candidate caption is empty"),
    (["a dog", "b"], [["x"], []], "item 1: reference list is empty"),
    (["a dog", 5], [["x"], ["y"]], "item 1: candidate is int"),
    (["a dog"], [["x", None]], "item 0: reference 1 is NoneType"),
    (["a dog"], ["x"], "item 0: references must be a list"),
])
def test_bad_input_names_the_item(cands, refs, match):
    for fn in (bleu, rouge_l, cider_d, meteor):
        with pytest.raises(MetricInputError, match=match):
            fn(cands, refs)
