"""The long-audio policy: how a file longer than a model's training clip is cut into windows and
how the per-window results combine. One policy per checkpoint, one function for every path.

A model is trained on clips of ``clip_seconds`` (CLAP: the first ``clip_seconds`` of each
clip; captioners: the same), so at inference a longer file is cut into windows of that length
every ``hop_seconds``. :func:`audio_windows` is the one place that cuts: indexing, audio
queries, the web service, ``eval clap``, ``caption``, ``eval captioner`` and WSAC all call it,
so the audio a model is scored on is the audio a user gets. The window results combine by

- ``"mean"`` (embedding models: CLAP, and WSAC, which decodes a CLAP embedding): the
  L2-normalized mean of the window embeddings (:func:`pool_embeddings`), one vector per file;
- ``"concat"`` (captioners): the frozen-tower frame embeddings of all windows are concatenated
  in time and captioned once (``audiocap caption`` prints that caption, ``eval captioner``
  scores it); ``caption --per-window`` prints one caption per window instead.

A file no longer than one window is one window, taken whole (never padded). The last, partial
window is shifted back to end at the file's end (``last="overlap"``: every window is a full
training-length clip, nothing is padded or dropped) or kept shorter (``last="shorter"``).

Every new checkpoint stores its policy in the ``audio_policy`` section of ``recipe.yaml``.
Checkpoints saved before that get the documented default: 10 s windows, 10 s hop,
``last="overlap"`` (what search did before), with a captioner recipe's own ``clip_seconds``
as window and hop (what ``caption`` did before). Windowing long inputs into model-length
segments and pooling the segment embeddings follows CLAP (Elizalde et al., ICASSP 2023) and
the usual fusion-free evaluation of LAION-CLAP (Wu et al., ICASSP 2023).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import numpy as np

from audiocap.checkpoint import POLICY_KEY, read_recipe
LASTS = ("overlap", "shorter")
COMBINES = ("mean", "concat")
KIND_COMBINE = {"clap": "mean", "wsac": "mean", "captioner": "concat"}
DEFAULT_CLIP_SECONDS = 10.0


class PolicyError(ValueError):
    """An ``audio_policy`` section is malformed; the message names the key and what is allowed."""


@dataclass(frozen=True)
class AudioPolicy:
    """How a model sees audio longer than its training clip (module docstring)."""

    clip_seconds: float = DEFAULT_CLIP_SECONDS  # window length = the training clip length
    hop_seconds: float | None = None  # start-to-start distance of windows; None = clip_seconds
    last: Literal["overlap", "shorter"] = "overlap"  # the final, partial window
    combine: Literal["mean", "concat"] = "mean"  # how window results become one result per file

    def __post_init__(self) -> None:
        if not self.clip_seconds > 0:
            raise PolicyError(f"audio_policy.clip_seconds must be > 0, got {self.clip_seconds}")
        if self.hop_seconds is None:
            object.__setattr__(self, "hop_seconds", float(self.clip_seconds))
        if not 0 < self.hop_seconds <= self.clip_seconds:  # a longer hop would skip audio
            raise PolicyError(f"audio_policy.hop_seconds must be in (0, clip_seconds={self.clip_seconds}], "
                              f"got {self.hop_seconds}")
        if self.last not in LASTS:
            raise PolicyError(f"audio_policy.last must be one of {', '.join(LASTS)}, got {self.last!r}")
        if self.combine not in COMBINES:
            raise PolicyError(f"audio_policy.combine must be one of {', '.join(COMBINES)}, got {self.combine!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``recipe.yaml`` (floats, strings)."""
        d = asdict(self)
        d["clip_seconds"], d["hop_seconds"] = float(d["clip_seconds"]), float(d["hop_seconds"])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "recipe") -> "AudioPolicy":
        """Parse an ``audio_policy`` section; unknown keys are an error naming ``where``."""
        if not isinstance(data, dict):
            raise PolicyError(f"{where}: audio_policy must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PolicyError(f"{where}: unknown audio_policy keys {unknown}; known: {sorted(known)}")
        try:
            return cls(**data)
        except PolicyError as exc:
            raise PolicyError(f"{where}: {exc}") from None
        except (TypeError, ValueError) as exc:  # e.g. clip_seconds: "long"
            raise PolicyError(f"{where}: audio_policy values of the wrong type ({exc})") from None


DEFAULT_POLICY = AudioPolicy()


def window_spans(n_samples: int, *, sr: int, policy: AudioPolicy) -> list[tuple[int, int]]:
    """``(start, end)`` sample spans of the windows of a wave of ``n_samples`` at ``sr`` Hz.

    One span ``(0, n)`` when the wave is no longer than a window; otherwise windows of
    ``clip_seconds`` every ``hop_seconds`` and a last window after :attr:`AudioPolicy.last`.
    """
    if n_samples <= 0:
        raise ValueError("cannot window an empty wave (0 samples)")
    win, hop = int(round(policy.clip_seconds * sr)), int(round(policy.hop_seconds * sr))
    if win < 1 or hop < 1:
        raise PolicyError(f"audio_policy {policy} is shorter than one sample at {sr} Hz")
    if n_samples <= win:
        return [(0, n_samples)]
    spans = [(s, s + win) for s in range(0, n_samples - win + 1, hop)]
    if spans[-1][1] < n_samples:  # samples left after the last full window
        if policy.last == "overlap":
            spans.append((n_samples - win, n_samples))
        else:
            spans.append((spans[-1][0] + hop, n_samples))
    return spans


def audio_windows(wave: np.ndarray, *, sr: int, policy: AudioPolicy
                  ) -> tuple[list[np.ndarray], list[tuple[float, float]]]:
    """Cut a mono wave (N,) at ``sr`` into the windows of ``policy``: the one function every
    inference, evaluation and serving path calls (module docstring).

    Returns the window waves (views, float32) and their ``(start, end)`` in seconds.
    """
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"audio_windows takes a mono wave (N,), got shape {wave.shape}")
    spans = window_spans(wave.shape[0], sr=sr, policy=policy)
    return [wave[a:b] for a, b in spans], [(a / sr, b / sr) for a, b in spans]


def stream_windows(chunks: Iterable[np.ndarray], *, sr: int, policy: AudioPolicy
                   ) -> Iterator[tuple[np.ndarray, tuple[float, float]]]:
    """The windows of :func:`audio_windows`, cut from a wave that arrives in chunks (mono float32
    at ``sr``, e.g. :func:`audiocap.audio.io.stream_audio`): ``(window wave, (start, end) s)`` in
    order, equal to cutting the concatenated wave.

    Full windows are given as soon as their samples have arrived; only the last ``clip_seconds``
    (plus one chunk) are kept, which is all the final window of :attr:`AudioPolicy.last` needs,
    so memory does not grow with the length of the file.
    """
    win, hop = int(round(policy.clip_seconds * sr)), int(round(policy.hop_seconds * sr))
    if win < 1 or hop < 1:
        raise PolicyError(f"audio_policy {policy} is shorter than one sample at {sr} Hz")
    buf, offset, total, nxt = np.zeros(0, dtype=np.float32), 0, 0, 0  # offset: buf[0]'s sample index
    for chunk in chunks:
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.ndim != 1:
            raise ValueError(f"stream_windows takes mono chunks (n,), got shape {chunk.shape}")
        buf, total = np.concatenate([buf, chunk]), total + chunk.shape[0]
        while nxt + win <= total:  # a full window (the first one is also the whole of a wave of win samples)
            yield buf[nxt - offset : nxt - offset + win], (nxt / sr, (nxt + win) / sr)
            nxt += hop
        keep = max(offset, total - win)  # the next full window and the final one start after total - win
        buf, offset = buf[keep - offset :], keep
    if total == 0:
        raise ValueError("cannot window an empty wave (0 samples)")
    if total < win:  # one window, taken whole
        yield buf, (0.0, total / sr)
    elif nxt - hop + win < total:  # samples left after the last full window
        start = total - win if policy.last == "overlap" else nxt
        yield buf[start - offset :], (start / sr, total / sr)


def pool_embeddings(embs: np.ndarray) -> np.ndarray:
    """The ``"mean"`` combination: L2-normalized mean of window embeddings (W, D) -> (D,)."""
    embs = np.asarray(embs, dtype=np.float32)
    if embs.ndim != 2 or embs.shape[0] == 0:
        raise ValueError(f"pool_embeddings needs (W >= 1, D) window embeddings, got shape {embs.shape}")
    mean = embs.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


def default_policy(kind: str | None = None, recipe: dict[str, Any] | None = None) -> AudioPolicy:
    """The policy of a checkpoint saved before policies were stored (module docstring)."""
    clip = DEFAULT_CLIP_SECONDS
    if kind == "captioner" and recipe and recipe.get("clip_seconds"):
        clip = float(recipe["clip_seconds"])  # what ``caption`` windowed such checkpoints with
    return AudioPolicy(clip_seconds=clip, combine=KIND_COMBINE.get(kind or "clap", "mean"))


def policy_from_recipe(recipe: dict[str, Any], kind: str | None = None, *, where: str = "recipe") -> AudioPolicy:
    """The ``audio_policy`` of a checkpoint recipe, or :func:`default_policy` when it has none."""
    kind = kind or recipe.get("kind")
    if recipe.get(POLICY_KEY) is not None:
        return AudioPolicy.from_dict(recipe[POLICY_KEY], where=where)
    return default_policy(kind, recipe)


def audio_policy_of(obj: Any) -> AudioPolicy:
    """The policy of a loaded model, a recipe dict or a checkpoint folder (default when none).

    Accepts an :class:`AudioPolicy`; anything with an ``audio_policy`` attribute (a CLAP model
    loaded by :func:`audiocap.inference.load_clap`, an embedder); anything with a ``recipe``
    dict (a loaded captioner or WSAC model); a recipe dict; a checkpoint folder path.
    """
    if isinstance(obj, AudioPolicy):
        return obj
    attached = getattr(obj, "audio_policy", None)
    if isinstance(attached, AudioPolicy):
        return attached
    if isinstance(obj, dict):
        return policy_from_recipe(obj)
    if isinstance(obj, (str, os.PathLike)):
        return policy_from_recipe(read_recipe(obj), where=f"{obj}/recipe.yaml")
    recipe = getattr(obj, "recipe", None)
    if isinstance(recipe, dict):
        return policy_from_recipe(recipe)
    return DEFAULT_POLICY


def with_policy(recipe: dict[str, Any], policy: AudioPolicy) -> dict[str, Any]:
    """A copy of ``recipe`` with its top-level ``audio_policy`` section set to ``policy``."""
    return {**recipe, POLICY_KEY: policy.to_dict()}


__all__ = ["AudioPolicy", "COMBINES", "DEFAULT_POLICY", "PolicyError", "POLICY_KEY", "audio_policy_of",
           "audio_windows", "default_policy", "policy_from_recipe", "pool_embeddings", "stream_windows",
           "window_spans", "with_policy"]
