"""The long-audio policy: window spans, parsing, the defaults of old checkpoints, the recipe round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiocap.audio.policy import (
    DEFAULT_POLICY,
    AudioPolicy,
    PolicyError,
    audio_policy_of,
    audio_windows,
    policy_from_recipe,
    pool_embeddings,
    window_spans,
)


def test_spans_overlap_shorter_and_hop():
    sr = 10
    assert window_spans(250, sr=sr, policy=AudioPolicy()) == [(0, 100), (100, 200), (150, 250)]
    assert window_spans(250, sr=sr, policy=AudioPolicy(last="shorter")) == [(0, 100), (100, 200), (200, 250)]
    assert window_spans(300, sr=sr, policy=AudioPolicy()) == [(0, 100), (100, 200), (200, 300)]  # exact fit
    assert window_spans(300, sr=sr, policy=AudioPolicy(hop_seconds=8.0)) == [(0, 100), (80, 180), (160, 260),
                                                                             (200, 300)]
    assert window_spans(40, sr=sr, policy=AudioPolicy()) == [(0, 40)]  # short: whole, never padded
    assert window_spans(100, sr=sr, policy=AudioPolicy()) == [(0, 100)]
    with pytest.raises(ValueError, match="empty wave"):
        window_spans(0, sr=sr, policy=AudioPolicy())


@pytest.mark.parametrize("n", [1, 99, 100, 101, 250, 999, 1234])
@pytest.mark.parametrize("policy", [AudioPolicy(), AudioPolicy(hop_seconds=3.0), AudioPolicy(last="shorter")])
def test_windows_cover_every_sample_and_never_exceed_a_clip(n, policy):
    spans = window_spans(n, sr=10, policy=policy)
    covered = np.zeros(n, bool)
    for a, b in spans:
        assert 0 <= a < b <= n and b - a <= 100
        covered[a:b] = True
    assert covered.all() and spans[-1][1] == n and spans[0][0] == 0


def test_audio_windows_returns_slices_and_seconds():
    wave = np.arange(250, dtype=np.float32)
    segs, secs = audio_windows(wave, sr=10, policy=AudioPolicy())
    assert [s[0] for s in segs] == [0, 100, 150] and secs[-1] == (15.0, 25.0)
    with pytest.raises(ValueError, match="mono"):
        audio_windows(np.zeros((2, 10), np.float32), sr=10, policy=AudioPolicy())


def test_pool_is_the_normalized_mean():
    embs = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    assert np.allclose(pool_embeddings(embs), [2 ** -0.5, 2 ** -0.5])
    with pytest.raises(ValueError):
        pool_embeddings(np.zeros((0, 4), np.float32))


def test_parsing_rejects_bad_sections_naming_the_key():
    with pytest.raises(PolicyError, match="hop_seconds"):
        AudioPolicy(clip_seconds=5.0, hop_seconds=6.0)
    with pytest.raises(PolicyError, match="ckpt/recipe.yaml: unknown audio_policy keys \\['window'\\]"):
        AudioPolicy.from_dict({"window": 10}, where="ckpt/recipe.yaml")
    with pytest.raises(PolicyError, match="combine"):
        AudioPolicy.from_dict({"combine": "max"})
    p = AudioPolicy(clip_seconds=4.0, hop_seconds=2.0, combine="concat")
    assert AudioPolicy.from_dict(p.to_dict()) == p and AudioPolicy().hop_seconds == 10.0


def test_old_checkpoints_get_the_documented_default():
    assert policy_from_recipe({"kind": "clap", "model": {}}) == DEFAULT_POLICY
    cap = policy_from_recipe({"kind": "captioner", "clip_seconds": 4.0})
    assert cap == AudioPolicy(clip_seconds=4.0, hop_seconds=4.0, combine="concat")
    assert policy_from_recipe({"kind": "wsac"}).combine == "mean"
    assert audio_policy_of(object()) == DEFAULT_POLICY


def test_save_checkpoint_stores_the_policy_and_loaders_read_it(tmp_path):
    from audiocap.checkpoint import read_recipe, save_checkpoint

    p = AudioPolicy(clip_seconds=5.0, hop_seconds=2.5)
    save_checkpoint(tmp_path / "a", {"w": torch.zeros(1)}, kind="clap", recipe={"model": {}}, audio_policy=p)
    assert read_recipe(tmp_path / "a")["audio_policy"] == {"clip_seconds": 5.0, "hop_seconds": 2.5,
                                                             "last": "overlap", "combine": "mean"}
    assert audio_policy_of(tmp_path / "a") == p
    save_checkpoint(tmp_path / "b", {"w": torch.zeros(1)}, kind="clap", recipe={"model": {}})
    assert "audio_policy" not in read_recipe(tmp_path / "b") and audio_policy_of(str(tmp_path / "b")) == DEFAULT_POLICY
