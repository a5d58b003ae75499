"""Frozen audio towers and their on-disk caches: what training, inference, evaluation and serving share.

:mod:`audiocap.features.towers` builds a frozen tower from the encoder registry and turns
waveforms (or the windows of a long file, :func:`audiocap.audio.policy.audio_windows`) into
frame embeddings; :mod:`audiocap.features.cache` keeps tower outputs of a manifest split on disk.
Nothing here imports :mod:`audiocap.train` (training imports this package, never the reverse).
"""

from audiocap.features.cache import (
    cache_window_frames,
    default_cache_dir,
    manifest_digest,
    module_digest,
    read_cache,
    read_window_frames,
    write_cache,
)
from audiocap.features.towers import (
    PRECISIONS,
    embed_waves,
    load_frame_tower,
    pad_frames,
    resolve_precision,
    tower_autocast,
    tower_device,
    window_frames,
)

__all__ = ["PRECISIONS", "cache_window_frames", "default_cache_dir", "embed_waves", "load_frame_tower",
           "manifest_digest", "module_digest", "pad_frames", "read_cache", "read_window_frames",
           "resolve_precision", "tower_autocast", "tower_device", "window_frames", "write_cache"]
