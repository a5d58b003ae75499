"""Parts behind the issue-14 CLAP models: attention pooling, the short-text loss, augmentation."""

from __future__ import annotations

import math

import numpy as np
import torch

from audiocap.audio.augment import AugmentSpec, augment_params, augment_wave
from audiocap.losses import multi_positive_nce
from audiocap.models.clap import AttentionPool


def test_attention_pool_starts_as_masked_mean_and_ignores_padding():
    torch.manual_seed(0)
    pool = AttentionPool(8, heads=3, hidden=5)
    x = torch.randn(2, 4, 8)
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    want = torch.stack([x[0].mean(0), x[1, :2].mean(0)])
    assert torch.allclose(pool(x, mask), want, atol=1e-6)
    with torch.no_grad():
        pool.score[2].weight.normal_()
    x2 = x.clone()
    x2[1, 2:] = 1e3  # padded windows must not change the result
    assert torch.allclose(pool(x, mask)[1], pool(x2, mask)[1], atol=1e-5)
    assert not torch.allclose(pool(x, mask)[0], want[0], atol=1e-3)  # trained scores weight windows


def test_multi_positive_nce_matches_hand_computation():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [math.sqrt(0.5), math.sqrt(0.5)]])
    pos = torch.tensor([[True, False, True], [False, True, False]])
    s = 2.0
    lg = s * a @ p.t()  # (2, 3)
    # phrase -> audio: phrases 0, 1, 2 have positives {0}, {1}, {0}
    p2a = [-(lg[0, 0] - torch.logsumexp(lg[:, 0], 0)), -(lg[1, 1] - torch.logsumexp(lg[:, 1], 0)),
           -(lg[0, 2] - torch.logsumexp(lg[:, 2], 0))]
    # audio -> phrase: clip 0 positives {0, 2}, clip 1 {1}
    a2p = [torch.logsumexp(lg[0], 0) - torch.logsumexp(lg[0, [0, 2]], 0), torch.logsumexp(lg[1], 0) - lg[1, 1]]
    want = 0.5 * (torch.stack(p2a).mean() + torch.stack(a2p).mean())
    assert torch.allclose(multi_positive_nce(a, p, pos, s), want, atol=1e-6)
    # a phrase with no positive in the batch is skipped, not counted as a loss of 0
    pos2 = pos.clone()
    pos2[:, 2] = False
    want2 = 0.5 * (torch.stack(p2a[:2]).mean() + torch.stack(
        [torch.logsumexp(lg[0], 0) - lg[0, 0], a2p[1]]).mean())
    assert torch.allclose(multi_positive_nce(a, p, pos2, s), want2, atol=1e-6)
    # the loss falls as clips move toward their phrases
    assert multi_positive_nce(a, p, pos, 10.0) < multi_positive_nce(a, p, pos, 1.0)


def test_augmentation_is_seeded_keeps_length_and_never_clips():
    sr = 16000
    rng = np.random.default_rng(0)
    wave = (0.9 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)).astype(np.float32)
    spec = AugmentSpec(p=1.0)
    params = augment_params(spec, np.random.default_rng([0, 1, 7]))
    assert set(params) == {"gain_db", "tilt", "reverb", "noise", "shift"}
    assert params == augment_params(spec, np.random.default_rng([0, 1, 7]))
    out = augment_wave(wave, sr, params)
    assert out.shape == wave.shape and out.dtype == np.float32
    assert np.max(np.abs(out)) <= 1.0 + 1e-6
    assert np.array_equal(out, augment_wave(wave, sr, params))
    assert not np.allclose(out, wave)
    # a version with nothing drawn is the clean clip; the noise respects the drawn SNR
    assert np.array_equal(augment_wave(wave, sr, {}), wave)
    quiet = 0.5 * wave  # no peak limiting, so the added noise is all the difference
    noisy = augment_wave(quiet, sr, {"noise": {"snr_db": 20.0, "color": "white", "seed": 3}})
    snr = 10 * np.log10(np.mean(quiet.astype(np.float64) ** 2) / np.mean((noisy - quiet).astype(np.float64) ** 2))
    assert abs(snr - 20.0) < 0.5
    assert augment_wave(np.zeros(0, np.float32), sr, params).shape == (0,)
    del rng


def test_split_subset_keeps_rows_captions_and_tags_aligned():
    from audiocap.data.manifest import Clip
    from audiocap.train.clap_data import SplitData, packages_of

    clips = [Clip(id=f"c{i}", audio=f"{i}.flac", duration=1.0, captions=[f"cap {i} a", f"cap {i} b"][: 1 + i % 2],
                  tags=["t"], split="train", source=src, license="CC0")
             for i, src in enumerate(["foley:a", "foley:a,b", "foley:c", "other"])]
    assert [packages_of(c) for c in clips] == [{"a"}, {"a", "b"}, {"c"}, set()]
    s = SplitData("m.jsonl", clips)
    s.frames = torch.arange(4.0).view(4, 1, 1).repeat(1, 2, 3)
    s.mask = torch.ones(4, 2, dtype=torch.bool)
    s.versions = [s.frames + 10]
    s.text_feats = torch.arange(len(s.captions), dtype=torch.float32)[:, None]
    s.tag_hot = torch.tensor([[1], [0], [1], [0]], dtype=torch.bool)
    s.subset([not ({"b"} & packages_of(c)) for c in clips])  # drops c1 and its two captions
    assert [c.id for c in s.clips] == ["c0", "c2", "c3"]
    assert s.captions == ["cap 0 a", "cap 2 a", "cap 3 a", "cap 3 b"]
    assert s.caption_clip.tolist() == [0, 1, 2, 2]
    assert s.frames[:, 0, 0].tolist() == [0.0, 2.0, 3.0] and s.versions[0][:, 0, 0].tolist() == [10.0, 12.0, 13.0]
    assert s.text_feats[:, 0].tolist() == [0.0, 3.0, 4.0, 5.0]
    assert s.tag_hot[:, 0].tolist() == [True, True, False]


def test_prefetch_keeps_order_and_a_bounded_window():
    from concurrent.futures import ThreadPoolExecutor

    from audiocap.train.features import prefetch

    started = []

    def work(i):
        started.append(i)
        return i * i

    with ThreadPoolExecutor(1) as pool:
        out = []
        for k, v in enumerate(prefetch(pool, work, 50, ahead=4)):
            assert len(started) <= k + 5  # never more than `ahead` + 1 submitted beyond what was consumed
            out.append(v)
    assert out == [i * i for i in range(50)]


def test_excluded_packages_leave_the_cached_splits_whole(tmp_path):
    """prepare_data/setup may run twice (train_clap, then Lightning): the second pass must find the
    caches of the whole splits, and training must see only clips without the excluded package."""
    import soundfile as sf

    from audiocap.data.manifest import Clip, write_manifest
    from audiocap.models.clap import build_clap
    from audiocap.train.clap_data import ClapDataModule, DataRecipe

    (tmp_path / "a").mkdir()
    clips = []
    for i in range(8):
        sf.write(tmp_path / "a" / f"{i}.wav", np.full(16000, 0.1 * (i + 1), np.float32), 16000)
        clips.append(Clip(id=f"c{i}", audio=f"a/{i}.wav", duration=1.0, captions=[f"sound {i}"], tags=["t"],
                          split="train" if i < 6 else "val", source="foley:p" if i % 2 else "foley:q", license="CC0"))
    m = write_manifest(tmp_path / "m.jsonl", clips)
    model = build_clap({"audio": "tiny", "audio_kw": {"width": 4, "n_mels": 16}, "text": "minilm", "adapter": False,
                        "embed_dim": 8, "head_hidden": 16})
    dm = ClapDataModule(DataRecipe(manifest=str(m), max_seconds=1.0, cache_dir=str(tmp_path / "cache"),
                                   exclude_packages=["p"]), model, batch_size=2, seed=0)
    for _ in range(2):
        dm.prepare_data()
        dm.setup("fit")
    assert [c.id for c in dm.splits["train"].clips] == ["c0", "c2", "c4"]
    assert [c.id for c in dm.splits["val"].clips] == ["c6"]
    assert dm.splits["train"].frames.shape[0] == 3 and dm._full["train"].frames.shape[0] == 6
    assert len(list((tmp_path / "cache").rglob("*-text.safetensors"))) == 2  # train + val captions, once each
