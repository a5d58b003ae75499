"""CLAP losses on hand-made similarity matrices (expected values computed by hand)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from audiocap.losses import clap_tag_loss, clip_loss, mae, msle, tag_regularizer


def test_clip_loss_identity_two_by_two():
    # logits = I: each row CE = -log(e / (e + 1)) = log(1 + e^-1)
    e = torch.eye(2)
    assert clip_loss(e, e, 1.0).item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)


def test_clip_loss_asymmetric_matrix_both_directions():
    # audio = I (3x3); text rows chosen so sim = text^T: sim = [[1,0,0],[0.6,0.8,0],[0,0,1]]^T
    a = torch.eye(3)
    t = torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])
    s = 2.0
    sim = s * a @ t.t()  # rows = audio: [[2, 1.2, 0], [0, 1.6, 0], [0, 0, 2]]
    assert torch.allclose(sim, torch.tensor([[2.0, 1.2, 0.0], [0.0, 1.6, 0.0], [0.0, 0.0, 2.0]]))
    a2t = [-math.log(math.exp(2) / (math.exp(2) + math.exp(1.2) + 1)),
           -math.log(math.exp(1.6) / (1 + math.exp(1.6) + 1)),
           -math.log(math.exp(2) / (1 + 1 + math.exp(2)))]
    t2a = [-math.log(math.exp(2) / (math.exp(2) + 1 + 1)),          # column 0: [2, 0, 0]
           -math.log(math.exp(1.6) / (math.exp(1.2) + math.exp(1.6) + 1)),  # column 1: [1.2, 1.6, 0]
           -math.log(math.exp(2) / (1 + 1 + math.exp(2)))]          # column 2: [0, 0, 2]
    expected = 0.5 * (sum(a2t) / 3 + sum(t2a) / 3)
    assert clip_loss(a, t, s).item() == pytest.approx(expected, abs=1e-6)


def test_clip_loss_duplicate_groups_removed_from_negatives():
    # pairs 0 and 1 come from the same clip: their cross terms are not negatives
    a = torch.eye(3)
    t = torch.eye(3)
    t[1] = torch.tensor([0.6, 0.8, 0.0])
    full = clip_loss(a, t, 1.0)
    masked = clip_loss(a, t, 1.0, dup_groups=torch.tensor([7, 7, 9]))
    # masked logits: row0 [1, -inf, 0], row1 [-inf, .8, 0], row2 [0, 0, 1]; columns likewise
    r = [-math.log(math.e / (math.e + 1)), -math.log(math.exp(0.8) / (math.exp(0.8) + 1)),
         -math.log(math.e / (1 + 1 + math.e))]
    c = [-math.log(math.e / (math.e + 1)), -math.log(math.exp(0.8) / (math.exp(0.8) + 1)),
         -math.log(math.e / (1 + 1 + math.e))]
    assert masked.item() == pytest.approx(0.5 * (sum(r) + sum(c)) / 3, abs=1e-6)
    assert masked.item() < full.item()


def test_perfect_alignment_and_large_scale_gives_near_zero_loss():
    e = torch.eye(4)
    assert clip_loss(e, e, 100.0).item() < 1e-6


def test_msle_mae_hand_values():
    p = torch.tensor([[0.0, 1.0], [0.5, 0.25]])
    q = torch.tensor([[1.0, 1.0], [0.5, 0.75]])
    assert mae(p, q).item() == pytest.approx((1 + 0 + 0 + 0.5) / 4)
    expected = (math.log(2) ** 2 + 0 + 0 + (math.log(1.25) - math.log(1.75)) ** 2) / 4
    assert msle(p, q).item() == pytest.approx(expected, abs=1e-7)
    assert tag_regularizer(p, q, "mae").item() == pytest.approx(mae(p, q).item())
    with pytest.raises(ValueError, match="msle"):
        tag_regularizer(p, q, "mse")


def test_clap_tag_loss_adds_weighted_regularizer_without_grad_to_frozen():
    e = torch.eye(2)
    trained = torch.tensor([[0.2, 0.9]], requires_grad=True)
    frozen = torch.tensor([[0.4, 0.9]], requires_grad=True)
    total, lc, reg = clap_tag_loss(e, e, 1.0, trained, frozen, weight=3.0, kind="mae")
    assert reg.item() == pytest.approx(0.1)
    assert total.item() == pytest.approx(lc.item() + 0.3, abs=1e-6)
    total.backward()
    assert frozen.grad is None and trained.grad is not None


def test_clap_tag_loss_removes_duplicate_negatives_like_clip_loss():
    """The CLAP trainer calls clap_tag_loss with the batch's duplicate groups: its CLAP part must
    be clip_loss with those groups, not the plain one."""
    g = torch.Generator().manual_seed(0)
    a = F.normalize(torch.randn(4, 8, generator=g), dim=-1)
    t = F.normalize(torch.randn(4, 8, generator=g), dim=-1)
    groups = torch.tensor([0, 0, 1, 2])
    trained, frozen = torch.rand(4, 3, generator=g), torch.rand(4, 3, generator=g)
    total, lc, reg = clap_tag_loss(a, t, 10.0, trained, frozen, weight=0.5, kind="msle", dup_groups=groups)
    assert lc.item() == pytest.approx(clip_loss(a, t, 10.0, dup_groups=groups).item())
    assert lc.item() != pytest.approx(clip_loss(a, t, 10.0).item())
    assert total.item() == pytest.approx(lc.item() + 0.5 * msle(trained, frozen).item())
