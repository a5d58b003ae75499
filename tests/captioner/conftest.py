"""Captioner test fixtures: a stand-in frozen tower (fixed random projection of framed audio)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from framed_tower import FramedProjection


@pytest.fixture(scope="session")
def standin_tower():
    """The stand-in frozen tower class (instantiate it: ``standin_tower()``)."""
    return FramedProjection


def write_sine(path, *, seconds: float, sr: int = 8000, freq: float = 440.0):
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)
    return path


@pytest.fixture(scope="session")
def sine_writer():
    return write_sine
