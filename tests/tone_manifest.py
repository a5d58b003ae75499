"""A tiny captioned dataset for training runs in tests: 1-s sine tones at 16 kHz, alternating a
high and a low tone, each with two captions that say which."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CAPTIONS = {440.0: ["a low tone hums", "a low steady tone"], 1760.0: ["a high beep rings", "a high pitched beep"]}


def write_tone_manifest(root: Path, *, n: int, n_train: int, sr: int = 16000) -> Path:
    """Write ``c0.wav .. c{n-1}.wav`` and ``root/manifest.jsonl``: the first ``n_train`` clips are
    split "train", the rest "val"."""
    import soundfile as sf

    from audiocap.data.manifest import Clip, write_manifest

    clips = []
    for i in range(n):
        freq = 440.0 if i % 2 else 1760.0
        sf.write(root / f"c{i}.wav", 0.3 * np.sin(2 * np.pi * freq * np.arange(sr) / sr), sr)
        clips.append(Clip(id=f"c{i}", audio=f"c{i}.wav", duration=1.0, captions=CAPTIONS[freq],
                          split="train" if i < n_train else "val"))
    return write_manifest(root / "manifest.jsonl", clips)
