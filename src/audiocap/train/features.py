"""Disk cache of frozen-tower outputs, one safetensors file per (tower weights, manifest, split).

A frozen tower gives the same output every epoch, so CLAP training computes it once: audio
frame embeddings (N, T, D) with a validity mask (N, T), and text-tower sentence features
(M, Dt). The cache key hashes the tower's weights and options, the manifest's path, size and
modification time, and the split, so a changed model or manifest never reads stale features.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from audiocap.audio.augment import AugmentSpec, augment_params, augment_wave
from audiocap.audio.io import load_audio
from audiocap.data.manifest import Clip, audio_path
from audiocap.features.cache import (default_cache_dir, manifest_digest, module_digest, read_cache,  # noqa: F401
                                     tower_options, write_cache)
from audiocap.features.towers import embed_waves, pad_frames, resolve_precision, tower_device


def prefetch(pool, fn, n: int, *, ahead: int):
    """Yield ``fn(0) .. fn(n-1)`` in order, computed in ``pool`` at most ``ahead`` items in advance
    (``Executor.map`` would submit all n at once and hold every decoded clip in memory)."""
    from collections import deque

    pending: deque = deque()
    for i in range(n):
        pending.append(pool.submit(fn, i))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


@torch.no_grad()
def cache_audio_frames(tower: torch.nn.Module, manifest: str | os.PathLike, clips: list[Clip], split: str,
                       cache_dir: str | os.PathLike | None = None, *, max_seconds: float | None = None,
                       device: str | torch.device | None = None, batch_size: int = 8, precision: str = "fp32",
                       augment: tuple[AugmentSpec, int, int] | None = None, shard_size: int = 1024) -> Path:
    """Compute (or find) the cached frame embeddings of ``clips`` through the frozen ``tower``.
    Returns the cache file path holding ``frames`` (N, T, D), ``mask`` (N, T) and clip ids.
    ``split`` names the clip list in the key: pass a distinct name for a subset of a split.

    ``precision`` (auto|fp32|bf16) is the tower's arithmetic (resolved for ``device``; part of
    the key). ``augment = (spec, seed, version)`` caches augmented version ``version`` >= 1 of
    every clip instead (:mod:`audiocap.audio.augment`; parameters drawn from
    ``[seed, version, clip index]``, so a version is the same on every run). Audio is decoded (and
    augmented) in a background thread while the tower runs.

    The work is saved every ``shard_size`` clips (rounded up to whole batches) under
    ``<cache file>.parts/``: a run that is killed resumes at the first unfinished shard, with the
    same result as an uninterrupted run; the parts are deleted once the cache file is written.
    """
    shard_size = max(1, -(-shard_size // batch_size)) * batch_size  # shards end on batch boundaries
    from concurrent.futures import ThreadPoolExecutor

    device = tower_device(tower) if device is None else device
    prec = resolve_precision(precision, device)
    aug_key = "" if augment is None else f"|aug={augment[0]}|{augment[1]}|{augment[2]}"
    prec_key = "" if prec == "fp32" else f"|{prec}"  # fp32 keys stay those of earlier caches
    key = module_digest(tower, f"audio|{type(tower).__name__}|{max_seconds}|{tower_options(tower)}{prec_key}{aug_key}")
    path = Path(cache_dir or default_cache_dir()) / key / f"{manifest_digest(manifest, split)}-audio.safetensors"
    if path.exists():
        return path
    tower = tower.to(device).eval()
    sr = int(tower.sample_rate)

    def decode(i: int) -> np.ndarray:
        wave = load_audio(audio_path(manifest, clips[i]), sr=sr)
        wave = wave[: int(max_seconds * sr)] if max_seconds else wave
        if augment is not None:
            spec, seed, version = augment
            wave = augment_wave(wave, sr, augment_params(spec, np.random.default_rng([seed, version, i])))
        return wave

    desc = f"caching {split} audio features" + ("" if augment is None else f" (augmented v{augment[2]})")
    parts = path.with_name(path.name.removesuffix(".safetensors") + ".parts")
    shards = [range(a, min(a + shard_size, len(clips))) for a in range(0, len(clips), shard_size)]
    done = {i: _read_shard(parts / f"{i:05d}.safetensors", [clips[j].id for j in shard])
            for i, shard in enumerate(shards)}
    done = {i: rows for i, rows in done.items() if rows is not None}
    todo = [j for i, shard in enumerate(shards) if i not in done for j in shard]
    bar = tqdm(total=len(clips), initial=len(clips) - len(todo), desc=desc, unit="clip", mininterval=5.0)
    with ThreadPoolExecutor(1) as pool:
        waves = prefetch(pool, lambda k: decode(todo[k]), len(todo), ahead=2 * batch_size)
        for i, shard in enumerate(shards):
            if i in done:
                continue
            rows: list[torch.Tensor] = []
            for start in range(0, len(shard), batch_size):  # shards start on batch boundaries: same batches as one pass
                batch = [next(waves) for _ in range(min(batch_size, len(shard) - start))]
                rows += embed_waves(tower, batch, batch_size=batch_size, device=device, precision=prec)
                bar.update(len(batch))
            done[i] = rows
            _write_shard(parts / f"{i:05d}.safetensors", rows, [clips[j].id for j in shard])
    bar.close()
    frames, mask = pad_frames([r for i in range(len(shards)) for r in done[i]])
    meta = {"ids": [c.id for c in clips], "split": split, "precision": prec,
            "augment": None if augment is None else {"seed": augment[1], "version": augment[2]}}
    write_cache(path, {"frames": frames, "mask": mask}, meta)
    shutil.rmtree(parts, ignore_errors=True)
    return path


def _write_shard(path: Path, rows: list[torch.Tensor], ids: list[str]) -> None:
    """One finished shard of a cache being built, in the cache's own format (frames, mask, ids)."""
    frames, mask = pad_frames(rows)
    write_cache(path, {"frames": frames, "mask": mask}, {"ids": ids})


def _read_shard(path: Path, ids: list[str]) -> list[torch.Tensor] | None:
    """The rows of a shard written by an interrupted run, or None if absent, unreadable or of other clips."""
    if not path.is_file():
        return None
    try:
        tensors, meta = read_cache(path)
    except Exception:  # a torn file cannot exist (atomic writes), but a foreign one may: recompute
        return None
    if meta.get("ids") != ids:
        return None
    return [f[m].clone() for f, m in zip(tensors["frames"], tensors["mask"])]


@torch.no_grad()
def cache_text_features(text_tower: torch.nn.Module, texts: list[str], cache_dir: str | os.PathLike | None = None,
                        *, batch_size: int = 256, device: str | torch.device | None = None) -> Path:
    """Compute (or find) frozen text-tower features for ``texts`` (keyed by the texts): pooled
    outputs (M, Dt), or for a tower that trains its top layers the token states below them
    (M, L, Dt + 1) in float16, padded to the longest text (``TextTower.cache_features``)."""
    kind = getattr(text_tower, "cache_kind", "pooled")
    h = hashlib.sha1("\n".join(texts).encode()).hexdigest()[:16]
    extra = "text" if kind == "pooled" else f"text|{kind}"
    path = Path(cache_dir or default_cache_dir()) / module_digest(text_tower, extra) / f"{h}-text.safetensors"
    if path.exists():
        return path
    device = tower_device(text_tower) if device is None else device
    text_tower = text_tower.to(device).eval()
    encode = getattr(text_tower, "cache_features", text_tower)
    out = [encode(texts[i : i + batch_size]).float().cpu()
           for i in tqdm(range(0, len(texts), batch_size), desc="caching text features", unit="batch")]
    if kind != "pooled":  # token states: pad every batch to the longest text, store half precision
        width = max(o.shape[1] for o in out)
        out = [torch.nn.functional.pad(o, (0, 0, 0, width - o.shape[1])).half() for o in out]
    return write_cache(path, {"feats": torch.cat(out)}, {"n": len(texts)})


@torch.no_grad()
def cache_image_features(image_tower: torch.nn.Module, manifest: str | os.PathLike, clips: list[Clip],
                         cache_dir: str | os.PathLike | None = None, *, batch_size: int = 64,
                         device: str | torch.device | None = None) -> Path:
    """Compute (or find) frozen image-tower features (N, Di) of the clips' pictures (CLAIP), with
    ``has`` (N,) saying which clips have one (rows of clips without a picture are zero). The key
    hashes the tower's weights and each picture's resolved path, size and modification time, so a
    replaced picture is read again."""
    from audiocap.data.manifest import image_path
    from audiocap.encoders.image import ImageError, load_image

    paths = [image_path(manifest, c) for c in clips]
    h = hashlib.sha1()
    for p in paths:
        if p is None:
            h.update(b"-\n")
            continue
        try:
            st = p.stat()
        except OSError:
            raise ImageError(f"{p}: picture not found; fix the clip's 'image' path in {manifest}") from None
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    size = int(image_tower.image_size)
    path = (Path(cache_dir or default_cache_dir()) / module_digest(image_tower, f"image|{size}")
            / f"{h.hexdigest()[:16]}-image.safetensors")
    if path.exists():
        return path
    device = tower_device(image_tower) if device is None else device
    image_tower = image_tower.to(device).eval()
    feats = torch.zeros(len(clips), int(image_tower.dim))
    has = torch.tensor([p is not None for p in paths])
    todo = [i for i, p in enumerate(paths) if p is not None]
    for start in tqdm(range(0, len(todo), batch_size), desc="caching image features", unit="batch"):
        idx = todo[start:start + batch_size]
        batch = torch.stack([load_image(paths[i], size) for i in idx]).to(device)
        feats[idx] = image_tower(batch).float().cpu()
    return write_cache(path, {"feats": feats, "has": has}, {"ids": [c.id for c in clips]})
