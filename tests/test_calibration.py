"""Search calibration: Platt confidence, the 1 %-false-positive match threshold, storage, search()."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audiocap import calibration
from audiocap.calibration import Calibration, CalibrationError


def test_fit_recovers_the_crossing_and_the_negative_tail():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(0.5, 0.1, 4000), rng.normal(0.1, 0.1, 40000)
    cal = calibration.fit(pos, neg)
    assert cal.a > 0
    # equal variances and equal class weights: confidence 0.5 half way between the means
    assert abs(float(cal.platt(0.3)) - 0.5) < 0.03
    assert float(cal.platt(0.6)) > 0.95 and float(cal.platt(0.0)) < 0.05
    assert abs(float(cal.confidence(cal.threshold)) - 0.5) < 1e-12  # shown confidence: 50 % at the threshold
    assert abs(cal.threshold - np.quantile(neg, 0.99)) < 1e-12
    assert abs(cal.info["recall_at_threshold"] - np.mean(pos >= cal.threshold)) < 1e-12
    assert np.all(np.diff(cal.confidence(np.linspace(-1, 1, 50))) > 0)


def test_fit_refuses_a_model_that_cannot_tell_matches_apart():
    rng = np.random.default_rng(1)
    with pytest.raises(CalibrationError, match="not usable"):
        calibration.fit(rng.normal(0.0, 0.1, 500), rng.normal(0.3, 0.1, 500))
    with pytest.raises(CalibrationError, match=">= 10"):
        calibration.fit(np.ones(3), np.zeros(100))


def test_apply_save_load_and_bad_files(tmp_path):
    cal = Calibration(a=20.0, b=-6.0, threshold=0.35)
    hits = cal.apply([{"id": "x", "score": 0.5}, {"id": "y", "score": 0.2}])
    assert hits[0]["match"] is True and hits[1]["match"] is False
    assert hits[0]["confidence"] == round(1 / (1 + np.exp(-(20 * (0.5 - 0.35)))), 4)
    assert hits[1]["confidence"] < 0.5 < hits[0]["confidence"]
    calibration.save(cal, tmp_path)
    assert calibration.load(tmp_path) == cal
    assert calibration.load(tmp_path / "nothing") is None
    (tmp_path / "calibration.json").write_text(json.dumps({"a": "nan", "b": 0, "threshold": 0.1}))
    with pytest.raises(CalibrationError, match="finite"):
        calibration.load(tmp_path)
    (tmp_path / "calibration.json").write_text("{not json")
    with pytest.raises(CalibrationError, match="unreadable"):
        calibration.load(tmp_path)


def test_pair_scores_uses_labels_for_negatives():
    audio = np.eye(3)
    caps = np.eye(3)[[0, 1]]  # caption 0 of clip 0, caption 1 of clip 1
    tags = ["dog", "rain"]
    tag_emb = np.eye(3)[[0, 2]]
    labels = [["dog"], ["dog", "rain"], ["rain"]]
    pos, neg = calibration.pair_scores(audio, caps, [0, 1], tag_emb, labels, tags)
    # captions: clip 0 shares "dog" with clip 1, so only clip 2 is its negative; clip 1 shares with all
    # tags: "dog" positives clips 0, 1, negative clip 2; "rain" positives 1, 2, negative 0
    assert sorted(pos.tolist()) == sorted([1.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    assert sorted(neg.tolist()) == [0.0, 0.0, 0.0]


def test_library_size_raises_the_match_threshold_to_half_a_false_match_per_query():
    rng = np.random.default_rng(2)
    pos, neg = rng.normal(0.5, 0.1, 4000), rng.normal(0.0, 0.1, 200_000)
    cal = calibration.fit(pos, neg)
    assert cal.threshold_for(None) == cal.threshold == cal.threshold_for(10)  # 0.5/10 > 1 %: no change
    t800 = cal.threshold_for(800)  # 0.5/800 of negatives reach it
    assert abs(np.mean(neg >= t800) - 0.5 / 800) < 2e-4 and t800 > cal.threshold
    assert cal.threshold_for(100_000) >= t800
    # a library of 800 non-matching clips: the best score is usually no match at t800, often one at 1 %
    best = rng.normal(0.0, 0.1, (300, 800)).max(1)
    assert np.mean(best >= t800) < 0.6 and np.mean(best >= cal.threshold) > 0.99
    assert Calibration.from_dict(cal.to_dict()).threshold_for(800) == t800
    hits = cal.apply([{"score": float(t800) - 1e-6}], n_items=800)
    assert hits[0]["match"] is False and cal.apply([{"score": float(t800) - 1e-6}])[0]["match"] is True
