"""WSAC gap bridging (σ, Δgap) and inference strategies (NND, projection) on hand-made vectors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from audiocap.decoding.wsac import (
    CaptionMemory, decoder_input, nearest_neighbour, project_on_memory, projection_weights,
)
from audiocap.models.modality_gap import bridge_text_embedding, estimate_gap, estimate_noise_std


def test_noise_std_is_mean_linf_of_same_clip_differences():
    clip_a = torch.tensor([[0.0, 0.0], [0.3, -0.1], [0.0, 0.5]])  # pairs: 0.3, 0.5, 0.6
    clip_b = torch.tensor([[1.0, 1.0], [1.0, 0.8]])  # pair: 0.2
    single = torch.tensor([[9.0, 9.0]])  # no pair: ignored
    assert estimate_noise_std([clip_a, clip_b, single]) == pytest.approx((0.3 + 0.5 + 0.6 + 0.2) / 4)


def test_noise_std_needs_pairs():
    with pytest.raises(ValueError, match="two captions"):
        estimate_noise_std([torch.ones(1, 4)])


def test_gap_is_difference_of_means():
    audio = torch.tensor([[1.0, 0.0], [3.0, 2.0]])
    text = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 4.0]])
    assert torch.allclose(estimate_gap(audio, text), torch.tensor([2.0, -1.0]))
    with pytest.raises(ValueError):
        estimate_gap(audio, torch.ones(3, 5))


def test_bridge_shift_and_noise_statistics():
    text = torch.zeros(20000, 8)
    shifted = bridge_text_embedding(text, shift=torch.arange(8.0))
    assert torch.equal(shifted[5], torch.arange(8.0))
    g = torch.Generator().manual_seed(0)
    noisy = bridge_text_embedding(text, noise_std=math.sqrt(0.013), generator=g)
    assert noisy.var().item() == pytest.approx(0.013, rel=0.03)
    assert abs(noisy.mean().item()) < 0.003
    unit = bridge_text_embedding(torch.ones(3, 8), noise_std=0.5, renormalize=True)
    assert torch.allclose(unit.norm(dim=-1), torch.ones(3))
    assert torch.equal(bridge_text_embedding(text[:2]), text[:2])  # no-op without noise/shift


def _memory():
    return CaptionMemory(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]]),
                         ["a", "b", "c", "d"])


def test_nnd_picks_nearest_memory_item():
    mem = _memory()
    queries = torch.tensor([[0.9, 0.1, 0.0], [0.5, 0.7, 0.1], [0.0, 0.1, 2.0], [0.1, 0.95, 0.0]])
    out = nearest_neighbour(queries, mem)
    expected = mem.embeddings[torch.tensor([0, 2, 3, 1])]
    assert torch.equal(out, expected)
    brute = (F.normalize(queries, dim=-1) @ mem.embeddings.T).argmax(-1)
    assert brute.tolist() == [0, 2, 3, 1]


def test_projection_weights_sum_to_one_and_reduce_to_nnd():
    sims = torch.tensor([[0.2, 0.9, 0.5], [0.1, -0.3, 0.0]])
    for tau in (1.0, 0.1, 0.01):
        w = projection_weights(sims, tau)
        assert torch.allclose(w.sum(-1), torch.ones(2))
        assert (w >= 0).all()
    assert projection_weights(sims, 1.0)[0].max() < 0.5  # warm: spread out
    mem = _memory()
    queries = torch.tensor([[0.9, 0.1, 0.0], [0.5, 0.7, 0.1], [0.1, 0.95, 0.0]])
    cold = project_on_memory(queries, mem, tau=1e-4)
    assert torch.allclose(cold, nearest_neighbour(queries, mem), atol=1e-5)
    warm = project_on_memory(queries, mem, tau=10.0)
    assert torch.allclose(warm.norm(dim=-1), torch.ones(3))
    assert not torch.allclose(warm, nearest_neighbour(queries, mem), atol=1e-2)
    top2 = project_on_memory(queries[:1], mem, tau=1.0, k=2)  # only items 0 and 2 contribute
    assert top2[0, 2] == 0 and top2[0, 0] > 0 and top2[0, 1] > 0


def test_decoder_input_strategies():
    mem = _memory()
    q = torch.tensor([[0.9, 0.1, 0.0]])
    assert torch.equal(decoder_input(q, "direct"), q)
    assert torch.allclose(decoder_input(q, "direct", shift=torch.tensor([0.1, 0.1, 0.0])),
                          torch.tensor([[0.8, 0.0, 0.0]]))
    assert torch.equal(decoder_input(q, "nnd", memory=mem), mem.embeddings[:1])
    with pytest.raises(ValueError, match="memory"):
        decoder_input(q, "nnd")
    with pytest.raises(ValueError, match="temperature"):
        decoder_input(q, "projection", memory=mem, tau=0.0)
