"""Captioner data: frozen-tower frame embeddings from the shared feature cache, caption pairs, batching.

The frozen audio tower (``aisfx`` or any tower of :func:`audiocap.encoders.build_audio_encoder`)
is run once per clip through :mod:`audiocap.train.features` (the cache CLAP uses too), so
training epochs only read tensors. Training items are (clip, caption) pairs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from audiocap.data.manifest import Clip
from audiocap.features.towers import load_frame_tower, pad_frames  # noqa: F401 (the training entry points)
from audiocap.text.vocab import Vocab


def split_frames(manifest: str | os.PathLike, clips: Sequence[Clip], split: str, tower: nn.Module, *,
                 clip_seconds: float, cache_dir: str | os.PathLike | None = None,
                 device: str | torch.device | None = None, precision: str = "fp32") -> dict[str, Tensor]:
    """Frame embeddings (T_i, D) of ``clips`` by clip id, from the frozen-tower feature cache.

    Uses :func:`audiocap.train.features.cache_audio_frames`, the cache CLAP training fills, with
    each clip cut to its first ``clip_seconds`` (the first window of the long-audio policy), so a
    CLAP and a captioner recipe with the same tower, manifest and clip length share one file
    and the tower runs over the audio once. ``split`` names the clip list in the cache key
    (e.g. ``"train[:480]"`` for a subset); ``precision`` is the tower's arithmetic (part of the key).
    """
    from audiocap.features.towers import tower_device
    from audiocap.train.features import cache_audio_frames, read_cache

    path = cache_audio_frames(tower, manifest, list(clips), split, cache_dir or None, max_seconds=float(clip_seconds),
                              device=tower_device(tower) if device is None else device, precision=precision)
    tensors, meta = read_cache(path)
    row = {cid: i for i, cid in enumerate(meta["ids"])}
    missing = [c.id for c in clips if c.id not in row]
    if missing:
        raise ValueError(f"{path}: feature cache lacks clips {missing[:3]} of {manifest} [{split}]; "
                         "delete the file so it is recomputed")
    frames, mask = tensors["frames"], tensors["mask"]  # (N, T, D), (N, T)
    return {c.id: frames[row[c.id]][mask[row[c.id]]].contiguous() for c in clips}


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
    frames, mask = pad_frames([b[0] for b in batch])
    caps = nn.utils.rnn.pad_sequence([torch.tensor(b[1]) for b in batch], batch_first=True, padding_value=pad_id)
    return {"frames": frames, "frame_mask": mask, "caption_ids": caps, "clip": torch.tensor([b[2] for b in batch])}
