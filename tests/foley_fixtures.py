"""Tiny synthetic sound sources for the foley builder tests (no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SR_SRC = 22050


def _burst(rng: np.random.Generator, freq: float, dur: float, noise: float) -> np.ndarray:
    t = np.arange(int(dur * SR_SRC)) / SR_SRC
    env = np.exp(-t * rng.uniform(3, 8))
    tone = np.sin(2 * np.pi * freq * t) * (1 - noise) + rng.standard_normal(len(t)) * noise
    return (0.5 * env * tone).astype(np.float32)


def make_sources(root: Path) -> dict:
    """Write distinct synthetic recordings and return a registry dict using them (preset 'tiny')."""
    rng = np.random.default_rng(123)
    spec = {  # folder: (label, count, duration, base frequency, noise share)
        "dog": ("dog_bark", 4, 0.4, 600, 0.3),
        "door": ("door_close", 4, 0.3, 200, 0.6),
        "glass": ("glass_break", 3, 0.5, 3000, 0.8),
        "steps": ("footsteps_gravel", 4, 0.15, 900, 0.9),
        "wind": ("wind", 2, 3.0, 100, 1.0),
        "water": ("water_stream", 2, 2.5, 400, 1.0),
    }
    files = []
    for folder, (label, count, dur, freq, noise) in spec.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            wave = _burst(rng, freq * (1 + 0.15 * k), dur, noise)
            if label in ("wind", "water_stream"):
                wave = (0.2 * rng.standard_normal(int(dur * SR_SRC))).astype(np.float32)
            # silence around the sound so trimming has work to do
            pad = np.zeros(int(0.1 * SR_SRC), np.float32)
            sf.write(root / folder / f"{folder}{k}.wav", np.concatenate([pad, wave, pad]), SR_SRC)
        files.append({"glob": f"{folder}/*.wav", "label": label,
                      **({"role": "background"} if label in ("wind", "water_stream") else {})})
    (root / "silent").mkdir(exist_ok=True)
    sf.write(root / "silent" / "quiet.wav", np.zeros(SR_SRC, np.float32), SR_SRC)
    files.append({"glob": "silent/*.wav", "label": "dog_bark"})
    return {"reserved": ["scorched3d-data"], "presets": {"tiny": ["synth"]},
            "sources": {"synth": {"fetch": {"method": "dir", "path": str(root)}, "license": "CC0-1.0",
                                  "author": "audiocap tests", "files": files}}}
