"""audiocap's fluency-error detector: synthetic errors, training, the shipped head, the metrics (issue 19)."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest
from typer.testing import CliRunner

from audiocap.metrics.base import MetricResult
from audiocap.metrics.fluency import (
    ERROR_KINDS, FluencyDetector, default_folder, fluency_error_rate, inject_error, normalize,
    spider_audiocap_fluency, verb_lexicon,
)

VERBS = verb_lexicon(["a dog is barking", "a dog barks", "a car passes by", "passing cars", "a baby cries",
                      "a baby crying", "water running", "a man runs", "rain under the ceiling", "a bird sings",
                      "birds singing", "a door was opened", "opening a door", "making noise", "it makes noise"])


def test_verb_lexicon_finds_verb_forms_without_a_tagger():
    for verb in ("barks", "barking", "passes", "cries", "runs", "sings", "makes", "opened", "is", "was"):
        assert verb in VERBS, verb
    for noun in ("ceiling", "dog", "noise", "door", "rain", "cars"):
        assert noun not in VERBS, noun


def test_each_injected_error_has_its_shape():
    rng = random.Random(0)
    cap = "A dog barks loudly, while a car passes by."
    assert normalize(cap) == "a dog barks loudly while a car passes by"
    for _ in range(30):
        w = inject_error(cap, "repeated_word", rng, VERBS).split()
        assert len(w) > 9 and any(a == b for a, b in zip(w, w[1:]))
        e = inject_error(cap, "repeated_event", rng, VERBS)
        assert e.count("a dog barks loudly") >= 2
        v = inject_error(cap, "missing_verb", rng, VERBS)
        assert v == "a dog loudly while a car by"
        i = inject_error(cap, "incomplete_ending", rng, VERBS).split()
        assert i[-1] in ("a", "an", "the", "and", "of", "with", "in", "on", "while", "as", "to", "is", "are", "by",
                         "from")
    assert inject_error("a dog in the park", "missing_verb", rng, VERBS) is None  # no verb to drop
    assert inject_error("rain", "repeated_word", rng, VERBS) is None
    with pytest.raises(ValueError, match="unknown error kind 'typo'"):
        inject_error(cap, "typo", rng, VERBS)


def test_penalised_spider_multiplies_flagged_items_by_a_tenth():
    spider = MetricResult("spider", 0.3, np.array([0.2, 0.4]))
    flags = MetricResult("fluency_error_rate", 0.5, np.array([1.0, 0.0]))
    res = spider_audiocap_fluency(spider, flags)
    np.testing.assert_allclose(res.per_item, [0.02, 0.4])
    assert res.score == pytest.approx(0.21) and res.name == "spider_audiocap_fluency"
    gone = spider_audiocap_fluency(MetricResult.unavailable("spider", "no SPICE"), flags)
    assert not gone.available and "spider unavailable: no SPICE" in gone.reason


def test_missing_detector_is_unavailable_naming_the_file(tmp_path):
    res = fluency_error_rate(["a dog barks"], folder=tmp_path)
    assert not res.available and str(tmp_path / "model.safetensors") in res.reason


def _tiny_shared(shared, tmp_path, n=40):
    """The first rows of each caption CSV of ../shared, so a training run takes seconds."""
    for rel in ("clotho/clotho_captions_development.csv", "clotho/clotho_captions_validation.csv",
                "clotho/clotho_captions_evaluation.csv", "audiocaps/train.csv", "audiocaps/val.csv",
                "audiocaps/test.csv"):
        src, dst = shared / "data" / rel, tmp_path / "data" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        with open(src, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))[: n + 1]
        with open(dst, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(rows)
    return tmp_path


def test_training_writes_a_detector_that_reloads(shared, tmp_path):
    from audiocap.config import load_recipe
    from audiocap.train.fluency import FluencyRecipe, train_fluency

    root = _tiny_shared(shared, tmp_path / "shared")
    recipe = load_recipe(FluencyRecipe, None, [f"data.shared={root}", "data.train_captions=60",
                                               "data.dev_captions=16", "data.test_captions=16", "train.epochs=3",
                                               f"train.out={tmp_path / 'run'}"])
    report = train_fluency(recipe)
    assert len(report["dev_accuracy_per_epoch"]) == 3 and 0.5 <= report["threshold"] < 1
    assert report["test"]["captions"] == 16 and set(report["test"]["detected"]) == set(ERROR_KINDS)
    assert json.loads((tmp_path / "run" / "report.json").read_text()) == report
    det = FluencyDetector(tmp_path / "run" / "checkpoint")
    assert det.threshold == pytest.approx(report["threshold"])
    res = fluency_error_rate(["a dog barks", "a dog barks and a dog barks and a"], folder=tmp_path / "run" / "checkpoint")
    assert res.available and set(res.per_item) <= {0.0, 1.0}
    np.testing.assert_array_equal(res.per_item, res.extra["error_prob"] > det.threshold)


# -- the shipped detector -------------------------------------------------------------------------

needs_shipped = pytest.mark.skipif(not (default_folder() / "model.safetensors").is_file(),
                                   reason="no shipped fluency detector in this build")


@needs_shipped
def test_shipped_detector_flags_the_errors_it_was_trained_for():
    bad = ["a door opens then a door opens and meanwhile a door opens", "a man talks and a",
           "a dog barks barks barks loudly", "a car engine and a man in the distance",
           "birds chirp while the wind blows and", "rain falls on the the roof"]
    good = ["a door opens and closes", "a man talks while a dog barks in the background",
            "birds chirp while the wind blows", "rain falls on a metal roof", "a car engine idles and revs"]
    res = fluency_error_rate(bad + good)
    assert res.per_item.tolist() == [1.0] * len(bad) + [0.0] * len(good), res.extra["error_prob"]
    assert res.score == pytest.approx(len(bad) / (len(bad) + len(good)))


@needs_shipped
def test_shipped_detector_rarely_flags_human_captions(shared):
    """Held-out human captions (Clotho evaluation, not used in training) are seldom flagged, and
    the same captions with an injected error mostly are."""
    with open(shared / "data" / "clotho" / "clotho_captions_evaluation.csv", newline="", encoding="utf-8") as fh:
        caps = [row["caption_1"] for row in csv.DictReader(fh)][:120]
    human = fluency_error_rate(caps)
    assert human.score <= 0.08
    rng = random.Random(7)
    broken = [inject_error(c, k, rng, VERBS) for c, k in zip(caps, ERROR_KINDS * 30)]
    broken = [b for b in broken if b]
    assert fluency_error_rate(broken).score >= 0.6


@needs_shipped
def test_evaluator_and_cli_report_audiocaps_fluency_metrics(tmp_path):
    from audiocap.cli import app
    from audiocap.metrics.evaluator import Evaluator

    refs = [["a door opens and closes", "a door is opened"], ["a man talks", "a person speaks"]]
    cands = ["a door opens and a door opens and a door opens", "a man talks"]
    res = Evaluator(["cider_d", "fluency_error_rate", "spider_audiocap_fluency"], spice_dir=tmp_path / "no")(cands, refs)
    assert list(res) == ["cider_d", "fluency_error_rate", "spider_audiocap_fluency"]
    assert res["fluency_error_rate"].per_item.tolist() == [1.0, 0.0] and res["fluency_error_rate"].score == 0.5
    assert not res["spider_audiocap_fluency"].available and "spice" in res["spider_audiocap_fluency"].reason
    pred, ref = tmp_path / "pred.csv", tmp_path / "refs.csv"
    pred.write_text("file_name,caption\na.wav,a door opens and a door opens and a door opens\nb.wav,a man talks\n")
    ref.write_text("file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
                   "a.wav,a door opens,a door closes,a door creaks,a door bangs,a door shuts\n"
                   "b.wav,a man talks,a man speaks,someone talks,a person speaks,a man is talking\n")
    out = tmp_path / "m.json"
    r = CliRunner().invoke(app, ["eval", "captions", "--pred", str(pred), "--refs", str(ref), "--metrics",
                                 "cider_d,fluency_error_rate", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "fluency_error_rate" in r.output and "0.5000" in r.output
    data = json.loads(out.read_text())["metrics"]["fluency_error_rate"]
    assert data["per_item"] == [1.0, 0.0] and data["error_prob"][0] > data["threshold"] > data["error_prob"][1]
