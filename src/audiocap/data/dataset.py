"""Torch dataset over a manifest, and the collate that pads a batch.

``AudioCaptionDataset`` yields one dict per item: ``id``, ``wave`` (float32 (N,), decoded with
:func:`audiocap.audio.load_audio` at ``sr``) or ``features`` (float32 (T, ...) read from a folder
of cached safetensors files), ``captions`` (all of the clip's captions) and ``caption`` (one).

Caption choice follows the usual audio-captioning training recipes: ``captions="sample"`` draws
one caption per clip per epoch from a generator seeded by (seed, epoch, index), so a run is
reproducible and independent of DataLoader worker order (call :meth:`set_epoch` at each epoch);
``captions="all"`` makes every (clip, caption) pair its own item (Clotho: 5 items per clip).

An optional fixed length (``clip_seconds``) crops longer clips (``crop="random"`` seeded like
the captions, ``"start"``, or ``"center"``) and zero-pads shorter ones; without it, clips keep
their full length and :func:`collate_audio` pads the batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Sequence
from urllib.parse import quote

import numpy as np
import torch
from torch.utils.data import Dataset

from audiocap.audio.io import load_audio
from audiocap.data.manifest import Clip, audio_path, read_manifest
from audiocap.fileio import atomic_path

FEATURE_KEY = "features"


def feature_path(folder: str | Path, clip_id: str) -> Path:
    """Cache file of a clip: ``folder/<percent-encoded id>.safetensors`` (ids may hold '/' or spaces)."""
    return Path(folder) / f"{quote(clip_id, safe='')}.safetensors"


def save_features(folder: str | Path, clip_id: str, features: torch.Tensor) -> Path:
    """Write one clip's features (time first, (T, ...)) atomically where the dataset will look."""
    from safetensors.torch import save_file

    target = feature_path(folder, clip_id)
    with atomic_path(target, suffix=".safetensors") as tmp:
        save_file({FEATURE_KEY: features.detach().cpu().contiguous()}, str(tmp))
    return target


class AudioCaptionDataset(Dataset):
    """Clips of a manifest as dicts of waveform (or cached features) and captions.

    Args (keyword-only after ``manifest``): ``sr`` target sample rate; ``clip_seconds`` fixed
    length or None; ``crop`` policy for longer clips; ``features_dir`` to read cached features
    instead of audio; ``captions`` "sample" | "all"; ``splits`` to keep; ``seed``;
    ``max_duration`` passed to :func:`load_audio` (longer files raise instead of being cut).
    """

    def __init__(
        self,
        manifest: str | Path,
        *,
        sr: int = 32000,
        clip_seconds: float | None = None,
        crop: Literal["random", "start", "center"] = "random",
        features_dir: str | Path | None = None,
        captions: Literal["sample", "all"] = "sample",
        splits: Sequence[str] | None = None,
        seed: int = 0,
        max_duration: float | None = None,
    ) -> None:
        if captions not in ("sample", "all"):
            raise ValueError(f"captions must be 'sample' or 'all', got {captions!r}")
        if crop not in ("random", "start", "center"):
            raise ValueError(f"crop must be 'random', 'start' or 'center', got {crop!r}")
        self.manifest = Path(manifest)
        clips = read_manifest(self.manifest)
        self.clips: list[Clip] = [c for c in clips if splits is None or c.split in splits]
        if captions == "all":
            self.items = [(i, j) for i, c in enumerate(self.clips) for j in range(len(c.captions))]
        else:
            self.items = [(i, -1) for i in range(len(self.clips))]
        self.sr, self.crop, self.captions, self.seed = sr, crop, captions, seed
        self.clip_len = None if clip_seconds is None else int(round(clip_seconds * sr))
        self.features_dir = None if features_dir is None else Path(features_dir)
        self.max_duration = max_duration
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose caption draws and random crops ``__getitem__`` returns."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def _rng(self, index: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index, stream])

    def _fix_length(self, wave: np.ndarray, index: int) -> np.ndarray:
        n, size = wave.shape[0], self.clip_len
        if size is None or n == size:
            return wave
        if n < size:
            return np.pad(wave, (0, size - n))
        if self.crop == "start":
            start = 0
        elif self.crop == "center":
            start = (n - size) // 2
        else:
            start = int(self._rng(index, 1).integers(0, n - size + 1))
        return wave[start : start + size]

    def __getitem__(self, index: int) -> dict[str, Any]:
        ci, cj = self.items[index]
        clip = self.clips[ci]
        item: dict[str, Any] = {"id": clip.id, "captions": list(clip.captions)}
        if self.features_dir is not None:
            from safetensors.torch import load_file

            path = feature_path(self.features_dir, clip.id)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: cached features of clip '{clip.id}' not found "
                                        "(write them with audiocap.data.dataset.save_features)")
            item["features"] = load_file(str(path))[FEATURE_KEY]  # (T, ...)
        else:
            wave = load_audio(audio_path(self.manifest, clip), sr=self.sr, max_duration=self.max_duration)
            item["wave"] = torch.from_numpy(self._fix_length(wave, index).copy())  # (N,)
        if clip.captions:
            j = cj if cj >= 0 else int(self._rng(index, 0).integers(len(clip.captions)))
            item["caption"] = clip.captions[j]
        return item


def pad_stack(tensors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero-pad tensors along their first axis: returns padded (B, L, ...), lengths (B,), mask (B, L)."""
    lengths = torch.tensor([t.shape[0] for t in tensors], dtype=torch.long)  # (B,)
    longest = int(lengths.max())
    out = tensors[0].new_zeros((len(tensors), longest, *tensors[0].shape[1:]))  # (B, L, ...)
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t
    mask = torch.arange(longest)[None, :] < lengths[:, None]  # (B, L), True on real samples
    return out, lengths, mask


def collate_audio(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch dataset items: pad ``wave`` (B, N) or ``features`` (B, T, ...) and add ``lengths``/``mask``.

    ``mask`` is boolean (B, N) (or (B, T)), True where a sample is real and False on padding;
    ``ids``, ``captions`` (list of lists) and ``caption`` (list, when present) stay Python lists.
    """
    if not batch:
        raise ValueError("collate_audio got an empty batch")
    key = "wave" if "wave" in batch[0] else "features"
    padded, lengths, mask = pad_stack([item[key] for item in batch])
    out: dict[str, Any] = {"ids": [item["id"] for item in batch], key: padded, "lengths": lengths, "mask": mask,
                           "captions": [item["captions"] for item in batch]}
    if all("caption" in item for item in batch):
        out["caption"] = [item["caption"] for item in batch]
    return out
