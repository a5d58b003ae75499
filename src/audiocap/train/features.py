"""Disk cache of frozen-tower outputs, one safetensors file per (tower weights, manifest, split).

A frozen tower gives the same output every epoch, so CLAP training computes it once: audio
frame embeddings (N, T, D) with a validity mask (N, T), and text-tower sentence features
(M, Dt). The cache key hashes the tower's weights and options, the manifest's path, size and
modification time, and the split, so a changed model or manifest never reads stale features.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from audiocap.audio.augment import AugmentSpec, augment_params, augment_wave
from audiocap.audio.io import load_audio
from audiocap.data.manifest import Clip, audio_path
from audiocap.fileio import atomic_path


def default_cache_dir() -> Path:
    """``$AUDIOCAP_CACHE/features`` or ``~/.cache/audiocap/features``."""
    return Path(os.environ.get("AUDIOCAP_CACHE", Path.home() / ".cache" / "audiocap")) / "features"


def module_digest(module: torch.nn.Module, extra: str = "") -> str:
    """Short SHA-1 of a module's state dict (names, shapes, bytes) plus ``extra``."""
    h = hashlib.sha1(extra.encode())
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def manifest_digest(manifest: str | os.PathLike, split: str) -> str:
    """Key part for a manifest split: resolved path, size, mtime and split name."""
    p = Path(manifest).resolve()
    st = p.stat()
    return hashlib.sha1(f"{p}|{st.st_size}|{st.st_mtime_ns}|{split}".encode()).hexdigest()[:16]


def _write(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata={"meta": json.dumps(meta)})
    return path


def read_cache(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Load a cache file: (tensors, metadata dict)."""
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["meta"])
        return {k: f.get_tensor(k) for k in f.keys()}, meta


@torch.no_grad()
def embed_waves(tower: torch.nn.Module, waves: list[np.ndarray], *, batch_size: int = 8,
                device: str | torch.device | None = None, precision: str | None = None) -> list[torch.Tensor]:
    """Frame embeddings (T_i, D) of each waveform through the frozen ``tower``, as float32 on CPU.

    Waves of equal length go through the tower together, ``batch_size`` at a time. The one
    place a frozen tower meets audio: the feature cache below (CLAP and captioner training) and
    captioning at inference both call it, so training and inference frames are computed alike.
    ``precision`` is a resolved ``"fp32"`` or ``"bf16"`` (autocast; see
    :func:`audiocap.captioning.resolve_precision`); None leaves the caller's autocast state alone.
    """
    import contextlib

    from audiocap.captioning import tower_autocast

    if device is None:
        device = next(iter(tower.parameters()), torch.empty(0)).device
    out: list[torch.Tensor | None] = [None] * len(waves)
    groups: dict[int, list[int]] = {}
    for j, w in enumerate(waves):
        groups.setdefault(len(w), []).append(j)
    for idx in groups.values():
        for s in range(0, len(idx), batch_size):
            chunk = idx[s : s + batch_size]
            batch = torch.from_numpy(np.stack([waves[j] for j in chunk])).float().to(device)  # (b, N)
            with tower_autocast(precision, device) if precision else contextlib.nullcontext():
                frames = tower(batch)
            for j, f in zip(chunk, frames.float().cpu()):
                out[j] = f.contiguous()  # (T, D)
    return out  # type: ignore[return-value]


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
                       device: str | torch.device = "cpu", batch_size: int = 8, precision: str = "fp32",
                       augment: tuple[AugmentSpec, int, int] | None = None) -> Path:
    """Compute (or find) the cached frame embeddings of ``clips`` through the frozen ``tower``.
    Returns the cache file path holding ``frames`` (N, T, D), ``mask`` (N, T) and clip ids.
    ``split`` names the clip list in the key: pass a distinct name for a subset of a split.

    ``precision`` (auto|fp32|bf16) is the tower's arithmetic (resolved for ``device``; part of
    the key). ``augment = (spec, seed, version)`` caches augmented version ``version`` >= 1 of
    every clip instead (:mod:`audiocap.audio.augment`; parameters drawn from
    ``[seed, version, clip index]``, so a version is the same on every run). Audio is decoded (and
    augmented) in a background thread while the tower runs.
    """
    from concurrent.futures import ThreadPoolExecutor

    from audiocap.captioning import resolve_precision

    prec = resolve_precision(precision, device)
    opts = {k: v for k, v in vars(tower).items()  # options like hop_frames; never the train/eval flag
            if isinstance(v, (int, float, str, bool)) and not k.startswith("_") and k != "training"}
    aug_key = "" if augment is None else f"|aug={augment[0]}|{augment[1]}|{augment[2]}"
    prec_key = "" if prec == "fp32" else f"|{prec}"  # fp32 keys stay those of earlier caches
    key = module_digest(tower, f"audio|{type(tower).__name__}|{max_seconds}|{sorted(opts.items())}{prec_key}{aug_key}")
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

    rows: list[torch.Tensor] = []
    pending: list[np.ndarray] = []
    desc = f"caching {split} audio features" + ("" if augment is None else f" (augmented v{augment[2]})")
    with ThreadPoolExecutor(1) as pool:
        for wave in tqdm(prefetch(pool, decode, len(clips), ahead=2 * batch_size), total=len(clips), desc=desc,
                         unit="clip", mininterval=5.0):
            pending.append(wave)
            if len(pending) == batch_size:
                rows += embed_waves(tower, pending, batch_size=batch_size, device=device, precision=prec)
                pending.clear()
    rows += embed_waves(tower, pending, batch_size=batch_size, device=device, precision=prec)
    t_max = max(r.shape[0] for r in rows)
    frames = torch.zeros(len(rows), t_max, rows[0].shape[1])
    mask = torch.zeros(len(rows), t_max, dtype=torch.bool)
    for i, r in enumerate(rows):
        frames[i, : r.shape[0]], mask[i, : r.shape[0]] = r, True
    meta = {"ids": [c.id for c in clips], "split": split, "precision": prec,
            "augment": None if augment is None else {"seed": augment[1], "version": augment[2]}}
    return _write(path, {"frames": frames, "mask": mask}, meta)


@torch.no_grad()
def cache_text_features(text_tower: torch.nn.Module, texts: list[str], cache_dir: str | os.PathLike | None = None,
                        *, batch_size: int = 256, device: str | torch.device = "cpu") -> Path:
    """Compute (or find) frozen text-tower features (M, Dt) for ``texts`` (keyed by the texts)."""
    h = hashlib.sha1("\n".join(texts).encode()).hexdigest()[:16]
    path = Path(cache_dir or default_cache_dir()) / module_digest(text_tower, "text") / f"{h}-text.safetensors"
    if path.exists():
        return path
    text_tower = text_tower.to(device).eval()
    out = [text_tower(texts[i : i + batch_size]).float().cpu()
           for i in tqdm(range(0, len(texts), batch_size), desc="caching text features", unit="batch")]
    return _write(path, {"feats": torch.cat(out)}, {"n": len(texts)})
