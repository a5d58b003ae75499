"""The WSAC benchmark helpers: scores come from audiocap's Evaluator, and the supervised
captioner's metrics JSON (Evaluator format) is read into plain numbers."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(BENCH))


def test_supervised_scores_reads_evaluator_json():
    table = _load("wsac_audio_table")
    data = {"meta": {}, "ids": ["a"], "metrics": {
        "bleu_4": {"available": True, "score": 0.15, "per_item": [0.15]},
        "meteor": {"available": True, "score": 0.13, "per_item": [0.13]},
        "rouge_l": {"available": True, "score": 0.31, "per_item": [0.31]},
        "cider_d": {"available": True, "score": 0.23, "per_item": [0.23]},
        "sbert_sim": {"available": False, "reason": "no model"}}}
    sup = table.supervised_scores(data)
    assert sup == {"bleu_4": 0.15, "meteor": 0.13, "rouge_l": 0.31, "cider_d": 0.23, "spice": None,
                   "spider": None, "sbert_sim": None}
    # a flat {name: score} dict (hyphenated names too) still works
    assert table.supervised_scores({"cider-d": 0.5, "bleu_4": 0.1})["cider_d"] == 0.5


def test_score_captions_uses_audiocap_metrics():
    scores_mod = _load("wsac_caption_scores")
    from audiocap.metrics.ngram import cider_d

    cands = ["a dog barks loudly", "rain falls on a roof", ""]
    refs = [["a dog is barking", "a dog barks"], ["rain on a metal roof", "heavy rain falls"],
            ["water runs", "a stream flows"]]
    got = scores_mod.score_captions(cands, refs, metrics=("cider_d", "bleu_1"))
    assert set(got) == {"cider_d", "bleu_1"}
    # the empty caption is scored as "empty" (not dropped), exactly as the Evaluator would
    want = cider_d(["a dog barks loudly", "rain falls on a roof", "empty"], refs)
    assert got["cider_d"] == pytest.approx(want.score)


def test_table_gives_percent_of_supervised_cider_and_spider():
    table = _load("wsac_audio_table")
    rows = [{"name": "noise", "strategy": "direct",
             "scores": {"bleu_4": 0.2, "meteor": 0.2, "rouge_l": 0.4, "cider_d": 0.5, "spice": 0.1, "spider": 0.3,
                        "sbert_sim": 0.5}}]
    sup = {"bleu_4": 0.1, "meteor": 0.1, "rouge_l": 0.3, "cider_d": 1.0, "spice": 0.2, "spider": 0.6, "sbert_sim": None}
    lines = table.render(rows, sup, "supervised (beam 3)")
    assert lines[2].startswith("| supervised (beam 3) | – | 0.1000 |") and "| n/a |" in lines[2]
    assert rows[0]["pct_supervised_cider_d"] == 50.0 and rows[0]["pct_supervised_spider"] == 50.0
    assert lines[3].endswith("| 50.0 | 50.0 |")
    pending = table.render(rows, None)
    assert "pending" in pending[2] and rows[0]["pct_supervised_spider"] is None
