"""Tell sound events from inputs that are not one: silence, too-short clips, stationary signals.

The captioner describes *something* for any input (issue 20 item 1: "a person is typing" for a
pure tone, "a galloping horse" for a silent WAV), so a caption alone does not say whether there
was a sound to describe. :func:`judge` looks at the waveform itself, before any model:

- **silence**: RMS below ``SILENCE_RMS_DBFS`` and peak below ``SILENCE_PEAK`` (digital silence,
  dither, a disconnected microphone). The caption is then the word "silence".
- **low_confidence**: shorter than ``MIN_SECONDS`` (too little to recognise), or **stationary**:
  sound events start, stop and change (footsteps, a bark, a door), so their band energies vary
  from frame to frame; pure tones, hums, clipped squares and steady noise do not. The
  stationarity score is the mean over active bands of each band's standard deviation in time
  (dB; :func:`band_levels`). The caption is kept and marked.

``confidence`` (0-1) is ``s / (s + STATIONARITY_THRESHOLD)`` for a stationarity score ``s``:
0.5 at the flag threshold, as the search confidence is 0.5 at its match threshold
(:mod:`audiocap.calibration`); 0 for silence and too-short inputs.

Calibration of ``STATIONARITY_THRESHOLD``: ``python benchmarks/nonevent_flags.py --manifest
data/foley-default/manifest.jsonl --out benchmarks/results/nonevent.json`` (``audiocap demo``'s
data) prints the minimum stationarity over the 240 clips of split "val" (decoded at the shipped
captioner's 44.1 kHz); the threshold is half of it, so a clip is flagged only if it varies less
than half as much as the steadiest validation clip. Figures and the test-split flag rates:
docs/results.md, "Non-event inputs (issue 20 item 1)".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

SILENCE_RMS_DBFS = -60.0  # silence: RMS below this and peak below SILENCE_PEAK (full scale 1.0)
SILENCE_PEAK = 0.01  # (the quietest real val/test clip: -55.6 dBFS RMS; the lowest peak 0.066)
MIN_SECONDS = 0.3
STATIONARITY_THRESHOLD = 1.94  # dB; half the minimum over data/foley-default "val" (3.88 dB)

ANALYSIS_SR = 16000  # every input is judged at one rate, so the score does not depend on it
FRAME_SECONDS, HOP_SECONDS = 0.064, 0.032
SMOOTH_FRAMES = 2  # energies averaged over 2 hops: halves the chance fluctuation of steady noise
BAND_EDGES_HZ = (50.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 8000.0)  # no DC/infrasound; octaves
FLOOR_BELOW_PEAK_DB = 60.0  # band levels under (loudest frame's total level - 60 dB) are the floor
FLOOR_DBFS = -100.0
LEVEL_FLOOR_DBFS = -200.0
BLOCK_SAMPLES = 1 << 20  # long inputs are measured block by block

Flag = Literal["silence", "low_confidence"]
SILENCE_CAPTION = "silence"  # the caption of silent audio (the captioner is not run on it)


@dataclass(frozen=True)
class Judgement:
    """What :func:`judge` found: ``flag`` None means a sound event the models can describe."""

    flag: Flag | None
    confidence: float  # 0-1: how much the input looks like a sound event
    reason: str  # one phrase for people: "silence", "too short (0.10 s < 0.3 s)", "a steady signal..."
    seconds: float
    rms_dbfs: float
    peak: float
    stationarity: float | None  # dB; None when not measured (silence, too short)

    def to_dict(self) -> dict:
        return asdict(self)


def level(wave: np.ndarray) -> tuple[float, float]:
    """``(RMS in dBFS, peak)`` of a float waveform (full scale 1.0). RMS is floored at
    ``LEVEL_FLOOR_DBFS`` (all zeros), so judgements stay finite and their JSON valid. Summed in
    float64 blocks: no float64 copy of a long file."""
    if wave.size == 0:
        return LEVEL_FLOOR_DBFS, 0.0
    energy, peak = 0.0, 0.0
    for s in range(0, wave.size, BLOCK_SAMPLES):
        x = wave[s : s + BLOCK_SAMPLES].astype(np.float64)
        energy, peak = energy + float(x @ x), max(peak, float(np.max(np.abs(x))))
    rms = (energy / wave.size) ** 0.5
    return max(20.0 * float(np.log10(max(rms, 1e-300))), LEVEL_FLOOR_DBFS), peak


def band_levels(wave: np.ndarray, sr: int) -> np.ndarray:
    """Band energies (frames, bands) in dB of ``wave`` at ``sr``, resampled to ``ANALYSIS_SR``.

    Blackman-Harris frames of ``FRAME_SECONDS`` every ``HOP_SECONDS`` (sidelobes under -92 dB,
    so a tone or DC does not leak into other bands), energies summed in ``BAND_EDGES_HZ`` bands
    and averaged over ``SMOOTH_FRAMES`` hops, then floored at the loudest frame's total level
    (all frequencies, DC included) minus ``FLOOR_BELOW_PEAK_DB`` and at ``FLOOR_DBFS``: faint
    leakage that flickers with phase is floor, not variation, and DC or infrasound alone (a
    file at a 1 Hz sample rate) leaves every band at the floor. Frames are taken in blocks, so
    memory stays small for long files.
    """
    from audiocap.audio.io import resample

    x = resample(np.asarray(wave, dtype=np.float32), int(sr), ANALYSIS_SR)  # float32; frames in float64
    n, hop = int(FRAME_SECONDS * ANALYSIS_SR), int(HOP_SECONDS * ANALYSIS_SR)
    if len(x) < n:
        x = np.pad(x, (0, n - len(x)))
    window = blackman_harris(n)
    freqs = np.fft.rfftfreq(n, 1.0 / ANALYSIS_SR)
    band = np.searchsorted(BAND_EDGES_HZ, freqs, side="right") - 1  # bin -> band (>= last edge: none)
    to_bands = (band[:, None] == np.arange(len(BAND_EDGES_HZ) - 1)).astype(np.float64)  # (bins, bands)
    starts = np.arange(0, len(x) - n + 1, hop)
    energies, loudest = [], 0.0
    for s in range(0, len(starts), 1024):
        frames = np.lib.stride_tricks.sliding_window_view(x, n)[starts[s : s + 1024]] * window
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 / np.sum(window**2)
        energies.append(power @ to_bands)
        loudest = max(loudest, float(power.sum(axis=1).max()))
    e = np.concatenate(energies)
    if len(e) >= SMOOTH_FRAMES > 1:
        c = np.cumsum(np.vstack([np.zeros((1, e.shape[1])), e]), axis=0)
        e = (c[SMOOTH_FRAMES:] - c[:-SMOOTH_FRAMES]) / SMOOTH_FRAMES
    db = 10.0 * np.log10(e + 1e-20)
    return np.maximum(db, max(10.0 * np.log10(loudest + 1e-20) - FLOOR_BELOW_PEAK_DB, FLOOR_DBFS))


def blackman_harris(n: int) -> np.ndarray:
    """The 4-term Blackman-Harris window (Harris 1978), ``n`` samples, symmetric."""
    x = 2.0 * np.pi * np.arange(n) / (n - 1)
    return 0.35875 - 0.48829 * np.cos(x) + 0.14128 * np.cos(2 * x) - 0.01168 * np.cos(3 * x)


def stationarity(wave: np.ndarray, sr: int) -> float:
    """How much the band energies vary in time (dB): the mean over bands that are ever above
    the floor of each band's standard deviation over frames. 0 for a tone, DC or silence."""
    db = band_levels(wave, sr)
    active = db.max(axis=0) > db.min()
    return float(db[:, active].std(axis=0).mean()) if active.any() else 0.0


def judge(wave: np.ndarray, sr: int) -> Judgement:
    """Judge a mono float waveform at ``sr``: silence, low confidence (too short or steady), or
    a sound event (``flag`` None). Thresholds: module constants (module docstring)."""
    seconds = len(wave) / float(sr)
    rms_dbfs, peak = level(wave)
    common = {"seconds": round(seconds, 4), "rms_dbfs": round(rms_dbfs, 2), "peak": round(peak, 5)}
    if rms_dbfs < SILENCE_RMS_DBFS and peak < SILENCE_PEAK:
        return Judgement("silence", 0.0, "silence", stationarity=None, **common)
    if seconds < MIN_SECONDS:
        return Judgement("low_confidence", 0.0, f"too short ({seconds:.2f} s < {MIN_SECONDS} s)",
                         stationarity=None, **common)
    s = stationarity(wave, sr)
    confidence = round(s / (s + STATIONARITY_THRESHOLD), 4)
    if s < STATIONARITY_THRESHOLD:
        return Judgement("low_confidence", confidence, "a steady signal: tone, hum, DC or noise",
                         stationarity=round(s, 4), **common)
    return Judgement(None, confidence, "sound event", stationarity=round(s, 4), **common)
