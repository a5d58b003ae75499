"""AudioCaptionDataset and collate_audio: padding, masks, lengths, seeded caption sampling."""

from __future__ import annotations

import pytest
import torch

from audiocap.audio import AudioError
from audiocap.data.dataset import AudioCaptionDataset, collate_audio, feature_path, save_features
from audiocap.data.manifest import Clip, write_manifest


@pytest.fixture
def manifest(tmp_path, tone):
    clips = []
    for i, secs in enumerate([0.5, 0.25, 1.0]):
        tone(f"audio/c{i}.wav", seconds=secs, sr=8000, freq=200.0 * (i + 1))
        clips.append(Clip(id=f"set/c {i}", audio=f"audio/c{i}.wav", duration=secs, split="train" if i < 2 else "val",
                          captions=[f"clip {i} caption {k}" for k in range(5)]))
    return write_manifest(tmp_path / "m.jsonl", clips)


def test_collate_pads_and_masks(manifest):
    ds = AudioCaptionDataset(manifest, sr=8000)
    batch = collate_audio([ds[0], ds[1], ds[2]])
    assert batch["wave"].shape == (3, 8000) and batch["wave"].dtype == torch.float32
    assert batch["lengths"].tolist() == [4000, 2000, 8000]
    assert batch["mask"].dtype == torch.bool and batch["mask"].sum(1).tolist() == [4000, 2000, 8000]
    assert batch["mask"][1, :2000].all() and not batch["mask"][1, 2000:].any()
    assert not batch["wave"][1, 2000:].any() and batch["wave"][1, :2000].abs().max() > 0.29
    torch.testing.assert_close(batch["wave"][0, :4000], ds[0]["wave"])
    assert batch["ids"] == ["set/c 0", "set/c 1", "set/c 2"] and len(batch["captions"][0]) == 5
    assert all(c.startswith(f"clip {i} ") for i, c in enumerate(batch["caption"]))


def test_resampling_splits_and_fixed_length(manifest):
    ds = AudioCaptionDataset(manifest, sr=16000, splits=["train"])
    assert len(ds) == 2 and ds[0]["wave"].shape == (8000,)
    fixed = AudioCaptionDataset(manifest, sr=8000, clip_seconds=0.5, crop="start")
    assert [fixed[i]["wave"].shape[0] for i in range(3)] == [4000] * 3
    assert not fixed[1]["wave"][2000:].any()  # short clip zero-padded
    full = AudioCaptionDataset(manifest, sr=8000)[2]["wave"]
    torch.testing.assert_close(fixed[2]["wave"], full[:4000])
    centre = AudioCaptionDataset(manifest, sr=8000, clip_seconds=0.5, crop="center")[2]["wave"]
    torch.testing.assert_close(centre, full[2000:6000])
    rnd = AudioCaptionDataset(manifest, sr=8000, clip_seconds=0.5, crop="random", seed=3)
    starts = set()
    for epoch in range(6):
        rnd.set_epoch(epoch)
        w = rnd[2]["wave"]
        starts.add(next(s for s in range(4001) if torch.equal(full[s : s + 4000], w)))
    assert len(starts) > 1  # crops move between epochs
    with pytest.raises(AudioError, match="too long"):
        AudioCaptionDataset(manifest, sr=8000, max_duration=0.75)[2]


def test_caption_sampling_is_seeded_per_epoch(manifest):
    def draws(seed, epoch):
        ds = AudioCaptionDataset(manifest, sr=8000, seed=seed)
        ds.set_epoch(epoch)
        return [ds[i]["caption"] for i in range(3)]

    assert draws(0, 0) == draws(0, 0) and draws(1, 4) == draws(1, 4)  # reproducible
    per_epoch = [tuple(draws(0, e)) for e in range(8)]
    assert len(set(per_epoch)) > 1  # a new draw each epoch
    seen = {c for epoch in per_epoch for c in epoch if c.startswith("clip 0 ")}
    assert len(seen) >= 3  # draws spread over the clip's captions
    assert [tuple(draws(7, e)) for e in range(8)] != per_epoch  # the seed matters

    every = AudioCaptionDataset(manifest, sr=8000, captions="all")
    assert len(every) == 15
    assert [every[i]["caption"] for i in range(5)] == [f"clip 0 caption {k}" for k in range(5)]
    assert every[5]["id"] == "set/c 1"


def test_cached_features(manifest, tmp_path):
    feats = tmp_path / "feats"
    for i, t in enumerate([3, 5, 2]):
        save_features(feats, f"set/c {i}", torch.full((t, 4), float(i + 1)))
    assert feature_path(feats, "set/c 0").name == "set%2Fc%200.safetensors"
    ds = AudioCaptionDataset(manifest, features_dir=feats)
    batch = collate_audio([ds[i] for i in range(3)])
    assert "wave" not in batch and batch["features"].shape == (3, 5, 4)
    assert batch["lengths"].tolist() == [3, 5, 2] and batch["mask"].sum().item() == 10
    assert batch["features"][0, :3].eq(1).all() and not batch["features"][0, 3:].any()
    feature_path(feats, "set/c 2").unlink()
    with pytest.raises(FileNotFoundError, match="set%2Fc%202.safetensors"):
        ds[2]
