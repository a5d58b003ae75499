"""Real aisfx tower: the frames training reads from the shared feature cache are the frames
``audiocap caption`` computes at inference (fp32), and bf16 inference stays close to them."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from audiocap.data.manifest import Clip, write_manifest


@pytest.fixture(scope="module")
def aisfx_tower():
    from audiocap.train.captioner_data import load_frame_tower

    try:
        return load_frame_tower("aisfx", {"hop_frames": 100})
    except FileNotFoundError as exc:
        pytest.skip(f"aisfx weights unavailable: {exc}")


def _pipeline(tower, tmp_path, precision):
    from audiocap.captioning import CaptionPipeline, LoadedCaptioner
    from audiocap.models.captioner import Captioner, CaptionerConfig
    from audiocap.text.vocab import SPECIALS, Vocab

    vocab = Vocab(list(SPECIALS) + ["w"])
    model = Captioner(CaptionerConfig(vocab_size=len(vocab), frame_dim=512, d_model=32, ff_dim=64, heads=2,
                                      encoder_layers=1, proj_dim=8, max_len=8)).eval()
    member = LoadedCaptioner(model, vocab, {"tower": {"name": "aisfx"}, "clip_seconds": 10.0}, tmp_path)
    return CaptionPipeline([member], beam=1, tower=tower, precision=precision)


def test_cache_frames_equal_inference_frames(aisfx_tower, tmp_path):
    from audiocap.audio.io import load_audio
    from audiocap.train.captioner_data import split_frames

    sr, rng = 44100, np.random.default_rng(0)
    t = np.arange(10 * sr) / sr
    clips = []
    for i, f in enumerate((300.0, 2500.0)):
        wave = 0.2 * np.sin(2 * np.pi * f * t) * (t % 2 < 1) + 0.02 * rng.standard_normal(len(t))
        sf.write(tmp_path / f"c{i}.wav", wave.astype(np.float32), sr)
        clips.append(Clip(id=f"c{i}", audio=f"c{i}.wav", duration=10.0, captions=["a tone"], split="test"))
    write_manifest(tmp_path / "m.jsonl", clips)
    cached = split_frames(tmp_path / "m.jsonl", clips, "test", aisfx_tower, clip_seconds=10.0,
                          cache_dir=tmp_path / "cache")
    assert cached["c0"].shape == (5, 512)  # 5 non-overlapping 2.32 s windows per 10 s, as CLAP
    fp32, bf16 = _pipeline(aisfx_tower, tmp_path, "fp32"), _pipeline(aisfx_tower, tmp_path, "bf16")
    for clip in clips:
        wave = load_audio(tmp_path / clip.audio, sr=sr)
        frames, _ = fp32.window_frames(wave)
        assert len(frames) == 1
        torch.testing.assert_close(frames[0], cached[clip.id], atol=1e-5, rtol=1e-5)
        low = bf16.window_frames(wave)[0][0]
        assert low.dtype == torch.float32
        cos = torch.nn.functional.cosine_similarity(low, cached[clip.id], dim=-1)
        assert cos.min() > 0.999 and not torch.equal(low, cached[clip.id])
