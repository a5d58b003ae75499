"""Synthetic data for the CLAP tests: tones whose pitch class matches their captions and tags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from audiocap.data.manifest import Clip, write_manifest

CLASSES = {  # name: (frequency Hz, captions)
    "beep": (1500.0, ["a high pitched beep", "a shrill electronic beep sounds"]),
    "hum": (110.0, ["a low hum drones", "a deep humming noise"]),
    "noise": (None, ["white noise hisses", "a hissing static noise"]),
    "click": (-1.0, ["rapid clicking sounds", "a series of sharp clicks"]),
}


def synth(kind: float | None, sr: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    if kind is None:
        return (0.2 * rng.standard_normal(t.size)).astype(np.float32)
    if kind < 0:
        x = np.zeros(t.size, np.float32)
        x[:: sr // 20] = 0.9
        return x
    f = kind * (1 + 0.05 * rng.standard_normal())
    return (0.3 * np.sin(2 * np.pi * f * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def write_dataset(root: Path, *, per_class: int = 6, sr: int = 16000, seconds: float = 1.0) -> Path:
    """Write FLAC clips and a manifest: per class, the last clip is test, the one before val."""
    rng = np.random.default_rng(0)
    clips = []
    for name, (kind, caps) in CLASSES.items():
        for i in range(per_class):
            rel = f"audio/{name}_{i}.flac"
            (root / "audio").mkdir(parents=True, exist_ok=True)
            sf.write(root / rel, synth(kind, sr, seconds, rng), sr)
            split = "test" if i == per_class - 1 else "val" if i == per_class - 2 else "train"
            clips.append(Clip(id=f"{name}_{i}", audio=rel, duration=seconds, captions=list(caps),
                              tags=[name, "synthetic"], split=split, source="test", license="CC0"))
    return write_manifest(root / "manifest.jsonl", clips)


def write_tiny_bert(folder: Path) -> Path:
    """A 2-layer, 32-wide BERT with MiniLM's WordPiece vocabulary, saved with save_pretrained."""
    import torch
    from transformers import BertConfig, BertModel

    from transformers import AutoTokenizer

    from audiocap.text.minilm import minilm_path

    tok = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    BertModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
