"""Captioner model: shapes, incremental decoding equal to full recompute, heads."""

from __future__ import annotations

import pytest
import torch

from audiocap.models.captioner import Captioner, CaptionerConfig


def small(encoder: str = "gru") -> Captioner:
    torch.manual_seed(0)
    cfg = CaptionerConfig(vocab_size=30, frame_dim=16, d_model=32, heads=4, ff_dim=64, encoder=encoder,
                          max_len=12, proj_dim=8, dropout=0.1)
    return Captioner(cfg).eval()


@pytest.mark.parametrize("encoder", ["gru", "transformer"])
def test_incremental_decoding_equals_full_recompute(encoder):
    model = small(encoder)
    frames = torch.randn(3, 9, 16)
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[1, 6:] = False
    ids = torch.randint(4, 30, (3, 7))
    with torch.no_grad():
        full = model(frames, mask, ids)["logits"]  # (3, 7, V)
        memory = model.encode(frames, mask)
        cache = model.start(memory, mask)
        steps = []
        for t in range(7):
            logits, _, cache = model.decode(ids[:, t : t + 1], cache)
            steps.append(logits)
        # two tokens at once after a prefix of five
        cache5 = model.start(memory, mask)
        _, _, cache5 = model.decode(ids[:, :5], cache5)
        tail, _, _ = model.decode(ids[:, 5:], cache5)
    assert cache.length == 7
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(tail, full[:, 5:], atol=1e-5, rtol=1e-5)


def test_padding_frames_do_not_change_output():
    model = small("gru")
    frames = torch.randn(1, 6, 16)
    ids = torch.randint(4, 30, (1, 5))
    padded = torch.cat([frames, torch.randn(1, 4, 16)], 1)
    mask = torch.tensor([[True] * 6 + [False] * 4])
    with torch.no_grad():
        a = model(frames, torch.ones(1, 6, dtype=torch.bool), ids)["logits"]
        b = model(padded, mask, ids)["logits"]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_heads_use_last_non_pad_token_and_shapes():
    model = small()
    frames, mask = torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool)
    ids = torch.tensor([[1, 7, 8, 2, 0, 0], [1, 9, 2, 0, 0, 0]])
    with torch.no_grad():
        out = model(frames, mask, ids)
        logits = model.cl4ac_logits(out["hidden"], ids)
        expect = model.cl4ac_head(out["hidden"][[0, 1], [3, 2]])
        # changing tokens after the last non-pad position cannot change the causal state used
        ids2 = ids.clone()
        ids2[0, 4:] = 0
        assert logits.shape == (2, 2)
        torch.testing.assert_close(logits, expect)
        assert model.audio_embedding(out["memory"], mask).shape == (2, 8)
        assert model.text_embedding(out["hidden"], ids).shape == (2, 8)
    assert out["logits"].shape == (2, 6, 30)


def test_too_long_sequence_raises():
    model = small()
    with pytest.raises(ValueError, match="max_len"):
        model(torch.randn(1, 3, 16), torch.ones(1, 3, dtype=torch.bool), torch.ones(1, 13, dtype=torch.long))
