"""Retrieval metrics on hand-computed examples (ties, k larger than the collection)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiocap.metrics.retrieval import audio_to_text, rank_metrics, retrieval_report, text_to_audio

# 3 clips, 4 captions: captions 0 and 1 describe clip 0, caption 2 clip 1, caption 3 clip 2
AUDIO_OF_TEXT = [0, 0, 1, 2]
SIM_AT = np.array([  # (A, T)
    [0.9, 0.1, 0.5, 0.3],  # clip 0: order t0 t2 t3 t1 -> relevant at ranks 1 and 4
    [0.2, 0.8, 0.4, 0.6],  # clip 1: order t1 t3 t2 t0 -> relevant at rank 3
    [0.7, 0.7, 0.1, 0.7],  # clip 2: t0, t1, t3 tie; relevant t3
])


def test_audio_to_text_hand_computed_pessimistic_ties():
    m = audio_to_text(SIM_AT, AUDIO_OF_TEXT)
    # clip 2's caption ties with two others -> ranked after them (rank 3)
    assert m["R@1"] == pytest.approx(1 / 3)
    assert m["R@5"] == 1.0 and m["R@10"] == 1.0  # k > collection (4 captions)
    ap = [(1 / 1 + 2 / 4) / 2, 1 / 3, 1 / 3]
    assert m["mAP@10"] == pytest.approx(np.mean(ap))


def test_tie_policies():
    opt = audio_to_text(SIM_AT, AUDIO_OF_TEXT, ties="optimistic")
    assert opt["R@1"] == pytest.approx(2 / 3)
    assert opt["mAP@10"] == pytest.approx(np.mean([0.75, 1 / 3, 1.0]))
    stable = audio_to_text(SIM_AT, AUDIO_OF_TEXT, ties="stable")  # t0, t1, t3 -> rank 3
    assert stable["mAP@10"] == pytest.approx(np.mean([0.75, 1 / 3, 1 / 3]))
    with pytest.raises(ValueError, match="ties"):
        audio_to_text(SIM_AT, AUDIO_OF_TEXT, ties="random")


def test_text_to_audio_hand_computed():
    m = text_to_audio(SIM_AT.T, AUDIO_OF_TEXT)
    # ranks of the relevant clip per caption: 1, 3, 2, 1
    assert m["R@1"] == pytest.approx(0.5)
    assert m["R@5"] == 1.0 and m["R@10"] == 1.0  # k > collection (3 clips)
    assert m["mAP@10"] == pytest.approx(np.mean([1, 1 / 3, 1 / 2, 1]))
    both = retrieval_report(torch.tensor(SIM_AT), AUDIO_OF_TEXT)
    assert both["text_to_audio"] == pytest.approx(m)


def test_constant_scores_get_worst_rank():
    n = 20
    m = text_to_audio(np.zeros((n, n)), np.arange(n))
    assert m["R@1"] == 0.0 and m["R@10"] == 0.0 and m["mAP@10"] == 0.0  # rank n = 20 > 10
    m = text_to_audio(np.zeros((4, 4)), np.arange(4))
    assert m["R@1"] == 0.0 and m["R@5"] == 1.0 and m["mAP@10"] == pytest.approx(1 / 4)


def test_map_uses_min_of_relevant_and_k():
    # one query, 12 relevant items ranked first: AP@10 = 1 (denominator min(12, 10))
    sim = np.linspace(1, 0, 15)[None, :]
    rel = np.zeros((1, 15), dtype=bool)
    rel[0, :12] = True
    assert rank_metrics(sim, rel)["mAP@10"] == pytest.approx(1.0)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="caption 1 points at clip 7"):
        text_to_audio(np.zeros((2, 3)), [0, 7])
    with pytest.raises(ValueError, match="query 0 has no relevant"):
        rank_metrics(np.zeros((1, 3)), np.zeros((1, 3), dtype=bool))
    with pytest.raises(ValueError, match="NaN"):
        text_to_audio(np.full((2, 2), np.nan), [0, 1])
