"""The live log-mel front end (audiocap.encoders.frontend: TinyTower's LogMel, Cnn14's filterbank)
against an independent numpy implementation (mel formulas + numpy FFT, filters built loop by loop)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiocap.encoders.frontend import LogMel, hz_to_mel, mel_filterbank, mel_to_hz


def np_mel(hz, scale):
    hz = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    out = hz * 3.0 / 200.0
    hi = hz >= 1000.0
    out[hi] = 15.0 + 27.0 * np.log(hz[hi] / 1000.0) / np.log(6.4)
    return out


def np_hz(mel, scale):
    mel = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    out = mel * 200.0 / 3.0
    hi = mel >= 15.0
    out[hi] = 1000.0 * np.exp(np.log(6.4) / 27.0 * (mel[hi] - 15.0))
    return out


def np_filterbank(sr, n_fft, n_mels, fmin, fmax, scale, norm):
    """Triangles written loop by loop, per band and per FFT bin."""
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    edges = np_hz(np.linspace(np_mel([fmin], scale)[0], np_mel([fmax], scale)[0], n_mels + 2), scale)
    fb = np.zeros((n_mels, freqs.size))
    for m in range(n_mels):
        left, centre, right = edges[m], edges[m + 1], edges[m + 2]
        for k, f in enumerate(freqs):
            if left < f <= centre:
                fb[m, k] = (f - left) / (centre - left)
            elif centre < f < right:
                fb[m, k] = (right - f) / (right - centre)
        if norm == "slaney":
            fb[m] *= 2.0 / (right - left)
    return fb.T


def np_logmel_db(wave, sr, n_fft, hop, n_mels, fmin, fmax):
    """Centred (reflect-padded) periodic-Hann power spectrum, Slaney mels, 10·log10(max(x, 1e-10))."""
    pad = n_fft // 2
    x = np.pad(wave, (pad, pad), mode="reflect")
    n = np.arange(n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)  # periodic Hann
    n_frames = 1 + (x.size - n_fft) // hop
    frames = np.stack([x[t * hop : t * hop + n_fft] for t in range(n_frames)])
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2  # (T, F)
    mel = power @ np_filterbank(sr, n_fft, n_mels, fmin, fmax, "slaney", "slaney")  # (T, M)
    return 10.0 * np.log10(np.maximum(mel, 1e-10))  # (T, M)


def test_mel_scale_anchor_points():
    # Slaney: 1000 Hz is mel 15 and the scale is linear below; HTK: 1000 Hz is ~1000 mel.
    f = torch.tensor([0.0, 500.0, 1000.0, 4000.0], dtype=torch.float64)
    assert hz_to_mel(f, htk=False)[:3].tolist() == pytest.approx([0.0, 7.5, 15.0])
    assert float(hz_to_mel(torch.tensor(1000.0, dtype=torch.float64), htk=True)) == pytest.approx(999.99, abs=0.01)
    for scale in ("slaney", "htk"):
        htk = scale == "htk"
        np.testing.assert_allclose(hz_to_mel(f, htk).numpy(), np_mel(f.numpy(), scale), rtol=1e-12)
        np.testing.assert_allclose(mel_to_hz(hz_to_mel(f, htk), htk).numpy(), f.numpy(), atol=1e-9)


@pytest.mark.parametrize("scale,norm", [("slaney", "slaney"), ("htk", None), ("htk", "slaney")])
def test_filterbank_matches_loop_reference(scale, norm):
    fb = mel_filterbank(sr=16000, n_fft=512, n_mels=40, fmin=20.0, fmax=8000.0, htk=scale == "htk", norm=norm)
    assert fb.shape == (257, 40) and fb.dtype == torch.float32
    ref = np_filterbank(16000, 512, 40, 20.0, 8000.0, scale, norm)
    np.testing.assert_allclose(fb.numpy(), ref, rtol=1e-6, atol=1e-9)


def test_sum_norm_filters_sum_to_one():
    fb = mel_filterbank(sr=44100, n_fft=2048, n_mels=96, fmin=0.0, fmax=22050.0, htk=True, norm="sum")
    ref = np_filterbank(44100, 2048, 96, 0.0, 22050.0, "htk", None)
    np.testing.assert_allclose(fb.numpy(), ref / ref.sum(0, keepdims=True), rtol=1e-5, atol=1e-9)
    with pytest.raises(ValueError, match="unknown mel norm"):
        mel_filterbank(sr=16000, n_fft=512, n_mels=8, fmin=0.0, fmax=8000.0, htk=True, norm="peak")


def test_logmel_matches_numpy_reference():
    rng = np.random.default_rng(0)
    waves = rng.standard_normal((2, 8000)) * 0.1  # (B, N)
    ref = np.stack([np_logmel_db(w, 16000, 512, 160, 40, 50.0, 8000.0) for w in waves])
    out = LogMel(sr=16000, n_fft=512, hop=160, n_mels=40, fmin=50.0)(torch.from_numpy(waves).float())
    assert out.shape == (2, 1 + 8000 // 160, 40) == ref.shape
    np.testing.assert_allclose(out.numpy(), ref, atol=2e-3, rtol=0)


def test_tone_energy_lands_in_its_band():
    sr, f0 = 16000, 1000.0
    t = torch.arange(sr) / sr
    wave = (0.3 * torch.sin(2 * torch.pi * f0 * t))[None]  # (1, N)
    mod = LogMel(sr=sr, n_fft=512, hop=160, n_mels=40, fmin=0.0, fmax=8000.0)
    out = mod(wave)
    assert out.shape == (1, 101, 40)
    band = int(out[0, 50].argmax())
    edges = mel_to_hz(torch.linspace(0, float(hz_to_mel(torch.tensor(8000.0), False)), 42), False)
    assert edges[band] < f0 < edges[band + 2]
    assert not any(k.startswith(("window", "melW")) for k in mod.state_dict())
