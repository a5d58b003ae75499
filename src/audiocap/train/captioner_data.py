"""Captioner data: frozen-tower frame embeddings cached on disk, caption pairs, batching.

The frozen audio tower (``aisfx`` or any tower of :func:`audiocap.encoders.build_audio_encoder`)
is run once per clip; its frame embeddings (T, D) are stored in one safetensors file per
(tower, manifest, split) under the recipe's cache folder, so training epochs only read tensors.
Training items are (clip, caption) pairs over every caption of every clip.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.utils.data import Dataset

from audiocap.data.dataset import pad_stack
from audiocap.data.manifest import Clip, audio_path
from audiocap.fileio import atomic_path
from audiocap.text.vocab import Vocab


class FrameTower(Protocol):
    """A frozen audio tower: waveform (B, N) at ``sample_rate`` -> frame embeddings (B, T, D)."""

    sample_rate: int
    frame_dim: int

    def __call__(self, wave: Tensor) -> Tensor: ...


def load_frame_tower(name: str, options: dict[str, Any] | None = None) -> nn.Module:
    """The frozen tower ``name`` from the audio-encoder registry, in eval mode, no gradients."""
    from audiocap.encoders import build_audio_encoder

    tower = build_audio_encoder(name, **(options or {}))
    tower.eval().requires_grad_(False)
    return tower


@torch.no_grad()
def embed_waves(tower: FrameTower, waves: Sequence[np.ndarray], *, batch_size: int = 8) -> list[Tensor]:
    """Frame embeddings (T_i, D) of each waveform; equal-length waves are batched together."""
    out: list[Tensor | None] = [None] * len(waves)
    device = next(iter(tower.parameters()), torch.empty(0)).device if isinstance(tower, nn.Module) else "cpu"
    by_len: dict[int, list[int]] = {}
    for i, w in enumerate(waves):
        by_len.setdefault(len(w), []).append(i)
    for idx in by_len.values():
        for s in range(0, len(idx), batch_size):
            chunk = idx[s : s + batch_size]
            wave = torch.from_numpy(np.stack([waves[i] for i in chunk])).float().to(device)
            frames = tower(wave).float().cpu()  # (b, T, D)
            for i, f in zip(chunk, frames):
                out[i] = f.contiguous()
    return out  # type: ignore[return-value]


def window_frames(tower: FrameTower, wave: np.ndarray, *, window: float,
                  batch_size: int = 8) -> tuple[list[Tensor], list[tuple[float, float]]]:
    """Cut ``wave`` (at the tower's rate) into ``window``-second windows and embed each.

    Returns the frame embeddings (T_i, D) of every window and its (start, end) in seconds. A
    wave no longer than one window is one window; otherwise windows follow each other and the
    last one is shorter (its zero padding from :func:`split_windows` is removed), so every
    sample is captioned and none is invented.
    """
    from audiocap.audio.io import split_windows

    sr = tower.sample_rate
    n, win_n = len(wave), int(round(window * sr))
    if n <= win_n:
        segs, spans = [wave], [(0.0, n / sr)]
    else:
        windows, starts = split_windows(wave, sr=sr, window=window, last="pad")
        first = [int(round(s * sr)) for s in starts]
        segs = [w[: min(win_n, n - a)] for w, a in zip(windows, first)]
        spans = [(a / sr, min(a + win_n, n) / sr) for a in first]
    return embed_waves(tower, segs, batch_size=batch_size), spans


def cache_features(manifest: str | os.PathLike, clips: Sequence[Clip], tower: FrameTower, *, tower_key: str,
                   cache_dir: str | os.PathLike, window: float, progress: bool = True) -> dict[str, Tensor]:
    """Frame embeddings of ``clips`` by clip id, computed once and cached in ``cache_dir``.

    Clips longer than ``window`` seconds are embedded window by window and the frames
    concatenated, exactly as :mod:`audiocap.captioning` does for one caption per file. The
    cache file name hashes the tower key, the window, the manifest path and the clip ids with
    their audio paths, so a changed manifest or tower never reuses stale features.
    """
    from tqdm import tqdm

    from audiocap.audio.io import load_audio

    ident = json.dumps([tower_key, window, str(Path(manifest).resolve()), [(c.id, c.audio) for c in clips]])
    key = hashlib.sha1(ident.encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"frames-{tower_key.replace('/', '_')}-{key}.safetensors"
    if path.exists():
        return load_file(str(path))
    feats: dict[str, Tensor] = {}
    for clip in tqdm(clips, desc=f"frames ({tower_key})", unit="clip", disable=not progress):
        wave = load_audio(audio_path(manifest, clip), sr=tower.sample_rate)
        feats[clip.id] = torch.cat(window_frames(tower, wave, window=window)[0], 0).contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(feats, str(tmp))
    return feats


class CaptionPairs(Dataset):
    """(frame embeddings, caption ids, clip index) items.

    ``captions="all"``: one item per caption of every clip. ``"sample"``: one item per clip,
    whose caption is drawn at random (torch's global generator, so seeded runs repeat) each time
    it is read, i.e. every epoch sees each clip once with one of its captions. ``"first"``: one
    item per clip with its first caption (a cheap, fixed validation set).
    """

    def __init__(self, clips: Sequence[Clip], feats: dict[str, Tensor], tokenized: Sequence[Sequence[list[str]]],
                 vocab: Vocab, *, max_words: int, captions: str = "all") -> None:
        if captions not in ("all", "sample", "first"):
            raise ValueError(f"captions must be 'all', 'sample' or 'first', got {captions!r}")
        self.feats = [feats[c.id] for c in clips]
        encoded = [[vocab.encode(toks, max_len=max_words) for toks in caps] for caps in tokenized]
        if captions == "all":
            self.items = [(ci, [ids]) for ci, caps in enumerate(encoded) for ids in caps]
        elif captions == "first":
            self.items = [(ci, caps[:1]) for ci, caps in enumerate(encoded) if caps]
        else:
            self.items = [(ci, caps) for ci, caps in enumerate(encoded) if caps]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Tensor, list[int], int]:
        ci, caps = self.items[i]
        ids = caps[0] if len(caps) == 1 else caps[int(torch.randint(len(caps), ()))]
        return self.feats[ci], ids, ci


def collate_pairs(batch: list[tuple[Tensor, list[int], int]], pad_id: int = 0) -> dict[str, Tensor]:
    """Pad frames (B, T, D) with mask (B, T) and captions (B, L); keep clip indices (B,)."""
    frames, _, mask = pad_stack([b[0] for b in batch])
    caps = nn.utils.rnn.pad_sequence([torch.tensor(b[1]) for b in batch], batch_first=True, padding_value=pad_id)
    return {"frames": frames, "frame_mask": mask, "caption_ids": caps, "clip": torch.tensor([b[2] for b in batch])}


def pad_frames(frames: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Stack variable-length frame embeddings into (B, T, D) plus mask (B, T)."""
    padded, _, mask = pad_stack(frames)
    return padded, mask
