"""A 10-minute file captioned per window with the real aisfx tower: no error, bounded memory."""

from __future__ import annotations

import resource
import time

import numpy as np
import pytest
import torch


@pytest.mark.slow
def test_ten_minute_file_per_window(tmp_path, sine_writer):
    from audiocap.captioning import CaptionPipeline, LoadedCaptioner
    from audiocap.models.captioner import Captioner, CaptionerConfig
    from audiocap.text.vocab import SPECIALS, Vocab
    from audiocap.train.captioner_data import load_frame_tower

    tower = load_frame_tower("aisfx", {"hop_frames": 100})  # the recipes' tower: 5 frames per 10 s window
    torch.manual_seed(0)
    vocab = Vocab(list(SPECIALS) + [f"w{i}" for i in range(996)])
    model = Captioner(CaptionerConfig(vocab_size=len(vocab), frame_dim=tower.frame_dim, max_len=27)).eval()
    member = LoadedCaptioner(model, vocab, {"tower": {"name": "aisfx"}, "clip_seconds": 10.0}, tmp_path)
    pipe = CaptionPipeline([member], beam=3, max_len=25, tower=tower, batch_size=8)  # precision auto
    rng = np.random.default_rng(0)
    seconds = 600.5  # 60 full windows + a half-second remainder that must not be dropped (default policy:
    # the last window is shifted back to end at the file's end)
    wave = (0.1 * rng.standard_normal(int(seconds * tower.sample_rate))).astype(np.float32)
    t = time.perf_counter()
    caps = pipe.caption_wave(wave, name="ten-minutes", per_window=True)
    elapsed = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n10-minute file ({pipe.precision}): {len(caps)} windows in {elapsed:.1f} s, peak RSS {peak_mb:.0f} MB")
    assert len(caps) == 61
    assert caps[0].start == 0.0 and caps[-1].end == pytest.approx(seconds, abs=1e-3)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(caps[:-1], caps[1:-1]))
    assert caps[-1].start == pytest.approx(seconds - 10.0, abs=1e-3)
    assert peak_mb < 4000
    t = time.perf_counter()
    whole = pipe.caption_wave(wave, name="ten-minutes", per_window=False)
    print(f"one caption for the whole file: {time.perf_counter() - t:.1f} s")
    assert len(whole) == 1 and whole[0].end == pytest.approx(seconds, abs=1e-3)
