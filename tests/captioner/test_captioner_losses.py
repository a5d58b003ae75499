"""Caption CE, CL4AC pairing/labels and NT-Xent on hand-made inputs."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from audiocap.losses import aux_weight, caption_ce, cl4ac_loss, cl4ac_mismatch, nt_xent


def test_caption_ce_ignores_pad():
    logits = torch.zeros(1, 3, 4)
    logits[0, 0, 2] = 10.0  # confident, correct
    targets = torch.tensor([[2, 1, 0]])  # third is pad: ignored
    ce = caption_ce(logits, targets, pad_id=0)
    expect = (F.cross_entropy(logits[0, 0:1], targets[0, 0:1]) + math.log(4)) / 2
    assert abs(ce.item() - expect.item()) < 1e-6


def test_cl4ac_mismatch_rolls_and_flags_identical_captions():
    ids = torch.tensor([[1, 5, 2], [1, 6, 2], [1, 6, 2], [1, 7, 2]])
    rolled, valid = cl4ac_mismatch(ids)
    assert rolled.tolist() == [[1, 7, 2], [1, 5, 2], [1, 6, 2], [1, 6, 2]]
    assert valid.tolist() == [True, True, False, True]  # item 2 got an identical caption
    _, valid = cl4ac_mismatch(ids, group=torch.tensor([0, 1, 2, 0]))
    assert valid.tolist() == [False, True, False, True]  # item 0 got a caption of its own clip


def test_cl4ac_loss_labels():
    big = 20.0
    good_match = torch.tensor([[-big, big], [-big, big]])  # says "matched"
    good_mis = torch.tensor([[big, -big], [-big, big]])  # first says "mismatched", second is wrong
    loss = cl4ac_loss(good_match, good_mis, torch.tensor([True, False]))
    assert loss.item() < 1e-6  # the wrong one is excluded by valid=False
    loss = cl4ac_loss(good_match, good_mis, torch.tensor([True, True]))
    assert abs(loss.item() - 2 * big / 4) < 1e-4  # 4 pairs, one costs 2*big


def test_nt_xent_hand_made():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # normalization makes scale irrelevant
    tau = 0.5
    # cos sims: diag 1, off 0 -> each row: -log(e^2 / (e^2 + e^0))
    expect = -math.log(math.exp(2) / (math.exp(2) + 1))
    assert abs(nt_xent(a, t, temperature=tau).item() - expect) < 1e-6
    swapped = nt_xent(a, t.flip(0), temperature=tau).item()
    assert abs(swapped - (-math.log(1 / (math.exp(2) + 1)))) < 1e-6


def test_aux_weight_delay():
    assert [aux_weight(e, weight=0.1, ce_only_epochs=2) for e in range(4)] == [0.0, 0.0, 0.1, 0.1]


def test_nt_xent_same_clip_is_not_a_negative():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # items 0 and 1: same clip
    t = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    tau = 0.5
    grouped = nt_xent(a, t, temperature=tau, groups=torch.tensor([7, 7, 8])).item()
    one = -math.log(math.exp(2) / (math.exp(2) + 1))  # rows 0, 1: only clip 8 is a negative
    two = -math.log(math.exp(2) / (math.exp(2) + 2))  # row 2: both captions of clip 7 are negatives
    assert abs(grouped - (2 * one + two) / 3) < 1e-6
    assert nt_xent(a, t, temperature=tau).item() > grouped + 0.1
