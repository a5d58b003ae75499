"""Shared fixtures: the read-only shared/ folder and small audio files written by the tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The project's read-only shared/ folder (AUDIOCAP_SHARED or ../shared beside the repo)."""
    return Path(os.environ.get("AUDIOCAP_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not (path / "data").is_dir():
        pytest.fail(f"shared data not found at {path}; set AUDIOCAP_SHARED")
    return path


def write_tone(path: Path, *, seconds: float = 1.0, sr: int = 16000, freq: float = 440.0,
               channels: int = 1, subtype: str | None = None) -> Path:
    """Write a sine tone (amplitude 0.3) to ``path``; the format follows the suffix."""
    t = np.arange(int(seconds * sr)) / sr
    wave = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sr, subtype=subtype)
    return path


@pytest.fixture
def tone(tmp_path: Path):
    """Factory fixture: ``tone("a.wav", seconds=2)`` writes a tone under tmp_path."""
    def make(name: str = "tone.wav", **kw) -> Path:
        return write_tone(tmp_path / name, **kw)
    return make
