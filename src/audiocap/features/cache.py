"""Disk cache of frozen-tower outputs, one safetensors file per (tower weights, manifest, split).

A frozen tower gives the same output every epoch and every evaluation, so it runs over a split
once. :func:`cache_window_frames` keeps the frames of every window of each clip under a
checkpoint's long-audio policy (what ``eval clap`` and ``eval captioner`` score, computed per
file exactly as ``caption`` computes them). The key hashes the tower's weights and options, the
manifest's path, size and modification time, the split, the policy and the precision, so a
changed model or manifest never reads stale features. Towers run on ``device`` (default: where
the tower already is). The training crops (the first ``max_seconds`` of each clip) are cached by
:mod:`audiocap.train.features` with the same keys and file format.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from audiocap.audio.io import load_audio
from audiocap.audio.policy import AudioPolicy
from audiocap.data.manifest import Clip, audio_path
from audiocap.features.towers import pad_frames, tower_device, window_frames
from audiocap.fileio import atomic_path
from audiocap.progress import Phase, ProgressFn


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


def tower_options(tower: torch.nn.Module) -> list:
    """Scalar options of a tower (e.g. hop_frames); never the train/eval flag."""
    return sorted((k, v) for k, v in vars(tower).items()
                  if isinstance(v, (int, float, str, bool)) and not k.startswith("_") and k != "training")


def write_cache(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
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
def cache_window_frames(tower: torch.nn.Module, manifest: str | os.PathLike, clips: list[Clip], split: str,
                        policy: AudioPolicy, cache_dir: str | os.PathLike | None = None, *,
                        device: str | torch.device | None = None, precision: str = "fp32",
                        batch_size: int = 8, progress: ProgressFn | None = None) -> Path:
    """Compute (or find) the frame embeddings of every window of every clip under ``policy``.

    Each file goes through :func:`audiocap.features.towers.window_frames` on its own, as
    ``caption`` does, in the resolved ``precision`` (``fp32`` or ``bf16``). Returns the cache
    file holding ``frames`` (W, T, D) and ``mask`` (W, T) over all windows in clip order, with
    the clip ids, window counts and window spans (seconds) in its metadata. ``progress`` gets
    "window features" events per clip (then in place of the tqdm bar), or one saying "from cache".
    """
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be resolved to fp32 or bf16, got {precision!r}")
    pol = json.dumps(policy.to_dict(), sort_keys=True)
    key = module_digest(tower, f"windows|{type(tower).__name__}|{pol}|{precision}|{tower_options(tower)}")
    path = Path(cache_dir or default_cache_dir()) / key / f"{manifest_digest(manifest, split)}-windows.safetensors"
    if path.exists():
        Phase(progress, "window features", len(clips), unit="clips").finish(detail="from cache")
        return path
    device = tower_device(tower) if device is None else torch.device(device)
    tower = tower.to(device).eval()
    rows: list[torch.Tensor] = []
    counts, spans = [], []
    phase = Phase(progress, "window features", len(clips), unit="clips")
    for clip in (clips if progress else tqdm(clips, desc=f"caching {split} window features", unit="clip")):
        wave = load_audio(audio_path(manifest, clip), sr=tower.sample_rate)
        frames, sp = window_frames(tower, wave, policy, batch_size=batch_size, device=device, precision=precision)
        rows += frames
        counts.append(len(frames))
        spans.append([[round(a, 6), round(b, 6)] for a, b in sp])
        phase.advance()
    frames, mask = pad_frames(rows)
    meta = {"ids": [c.id for c in clips], "split": split, "windows": counts, "spans": spans,
            "policy": policy.to_dict(), "precision": precision}
    return write_cache(path, {"frames": frames, "mask": mask}, meta)


def read_window_frames(path: str | os.PathLike) -> tuple[dict[str, list[torch.Tensor]], dict]:
    """``{clip id: [frames (T_w, D) of each window]}`` and the metadata of a window cache."""
    tensors, meta = read_cache(path)
    frames, mask = tensors["frames"], tensors["mask"]  # (W, T, D), (W, T)
    out, row = {}, 0
    for cid, n in zip(meta["ids"], meta["windows"]):
        out[cid] = [frames[r][mask[r]].contiguous() for r in range(row, row + n)]
        row += n
    if row != frames.shape[0]:
        raise ValueError(f"{path}: {frames.shape[0]} cached windows, metadata counts {row}; delete the file")
    return out, meta
