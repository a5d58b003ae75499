"""Waveform augmentation for training behind a frozen audio tower.

A frozen tower gives the same output for the same input, so training on cached features would
see each clip exactly one way. Instead, a few augmented versions of every training clip are
rendered once, passed through the tower and cached; each training step then reads one version at
random (the audio side of the "several views" recipe used by CLAP systems, Wu et al. 2023, and of
the DCASE Task 6 systems that apply gain/EQ/reverb/noise/shift before the encoder).

Every transform keeps the sound's identity (what a caption says stays true): gain, a gentle
equalizer (low/high shelf tilt), a short synthetic room reverb, background noise at a high
signal-to-noise ratio, and a circular time shift. Parameters are drawn from a seeded generator,
so version ``k`` of clip ``i`` is the same on every run and machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve, lfilter

__all__ = ["AugmentSpec", "augment_wave", "augment_params"]


@dataclass(frozen=True)
class AugmentSpec:
    """Ranges of the random transforms; each is applied with probability ``p``."""

    p: float = 0.7
    gain_db: tuple[float, float] = (-9.0, 6.0)
    tilt_db: tuple[float, float] = (-8.0, 8.0)  # shelf gain at the low or high end
    rt60_s: tuple[float, float] = (0.15, 0.8)  # reverberation time of the synthetic room
    wet: tuple[float, float] = (0.1, 0.45)  # reverb mix
    snr_db: tuple[float, float] = (15.0, 35.0)  # noise level relative to the signal RMS
    shift_max: float = 0.5  # circular shift, as a share of the clip


def augment_params(spec: AugmentSpec, rng: np.random.Generator) -> dict:
    """Draw the parameters of one augmented version (JSON-able, for the cache's record)."""
    def on() -> bool:
        return bool(rng.random() < spec.p)

    out: dict = {}
    if on():
        out["gain_db"] = float(rng.uniform(*spec.gain_db))
    if on():
        out["tilt"] = {"db": float(rng.uniform(*spec.tilt_db)), "side": "low" if rng.random() < 0.5 else "high",
                       "corner_hz": float(np.exp(rng.uniform(np.log(300.0), np.log(4000.0))))}
    if on():
        out["reverb"] = {"rt60": float(rng.uniform(*spec.rt60_s)), "wet": float(rng.uniform(*spec.wet)),
                         "seed": int(rng.integers(2**31))}
    if on():
        out["noise"] = {"snr_db": float(rng.uniform(*spec.snr_db)), "color": "pink" if rng.random() < 0.5 else "white",
                        "seed": int(rng.integers(2**31))}
    if on():
        out["shift"] = float(rng.uniform(-spec.shift_max, spec.shift_max))
    return out


def _shelf(wave: np.ndarray, sr: int, db: float, corner: float, side: str) -> np.ndarray:
    """One-pole shelf: split at ``corner`` and scale the low or high band by ``db``."""
    a = float(np.exp(-2.0 * np.pi * corner / sr))
    low = lfilter([1.0 - a], [1.0, -a], wave)
    high = wave - low
    g = 10.0 ** (db / 20.0)
    return (low * g + high) if side == "low" else (low + high * g)


def _room(sr: int, rt60: float, seed: int) -> np.ndarray:
    """Synthetic room impulse response: exponentially decaying noise (60 dB down at ``rt60``)."""
    n = max(1, int(rt60 * sr))
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)  # ln(1000) = 6.9078
    ir[0] = 0.0
    return ir / (np.sqrt(np.sum(ir**2)) + 1e-12)


def _noise(n: int, color: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(n)
    if color == "white":
        return white
    spec = np.fft.rfft(white)
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    pink = np.fft.irfft(spec / np.sqrt(f), n)  # 1/f power
    return pink / (pink.std() + 1e-12)


def augment_wave(wave: np.ndarray, sr: int, params: dict) -> np.ndarray:
    """Apply the transforms of ``params`` (from :func:`augment_params`) to a mono wave (N,).

    Returns float32 of the same length, peak-limited to 1.0 so no version clips.
    """
    x = np.asarray(wave, dtype=np.float64)
    n = x.shape[0]
    if n == 0:
        return x.astype(np.float32)
    if "tilt" in params:
        t = params["tilt"]
        x = _shelf(x, sr, t["db"], t["corner_hz"], t["side"])
    if "reverb" in params:
        r = params["reverb"]
        wet = fftconvolve(x, _room(sr, r["rt60"], r["seed"]))[:n]
        wet *= np.sqrt(np.mean(x**2) / (np.mean(wet**2) + 1e-20))
        x = (1.0 - r["wet"]) * x + r["wet"] * wet
    if "noise" in params:
        z = params["noise"]
        rms = np.sqrt(np.mean(x**2))
        if rms > 0:
            x = x + _noise(n, z["color"], z["seed"]) * rms * 10.0 ** (-z["snr_db"] / 20.0)
    if "shift" in params:
        x = np.roll(x, int(round(params["shift"] * n)))
    if "gain_db" in params:
        x = x * 10.0 ** (params["gain_db"] / 20.0)
    peak = float(np.max(np.abs(x)))
    if peak > 1.0:
        x = x / peak
    return x.astype(np.float32)
