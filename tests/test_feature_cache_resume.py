"""Frozen-tower caching resumes after a crash (audiocap.train.features.cache_audio_frames).

Caching the training split is the longest step of a CLAP or captioner run (hours for 25,000
clips on a CPU); a killed run used to start it again from the first clip. Finished shards are
now kept under ``<cache>.parts/``: the rerun embeds only the rest, and the result equals an
uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiocap.data.manifest import Clip, read_manifest, write_manifest
from audiocap.train.features import cache_audio_frames, read_cache

SR = 8000


class Tower(torch.nn.Module):
    """Frames = mean and energy of 0.25-s blocks; counts the clips it embeds; can fail or crawl."""

    sample_rate = SR

    def __init__(self, fail_after: int | None = None, delay: float = 0.0):
        super().__init__()
        self.proj = torch.nn.Linear(2, 3)
        torch.nn.init.constant_(self.proj.weight, 0.5), torch.nn.init.constant_(self.proj.bias, 0.1)
        # private: the cache key hashes a tower's public scalar options
        self._seen, self._fail_after, self._delay = 0, fail_after, delay

    @property
    def seen(self) -> int:
        return self._seen

    def forward(self, wave):  # (B, N) -> (B, T, 3)
        if self._fail_after is not None and self._seen >= self._fail_after:
            raise RuntimeError("tower crashed")
        self._seen += wave.shape[0]
        time.sleep(self._delay)
        blocks = wave[:, : wave.shape[1] // 2000 * 2000].reshape(wave.shape[0], -1, 2000)
        return self.proj(torch.stack([blocks.mean(-1), blocks.pow(2).mean(-1)], -1))


def make_manifest(root: Path, n: int = 40) -> Path:
    rng = np.random.default_rng(0)
    clips = []
    for i in range(n):
        seconds = 1.0 + (i % 3) * 0.5  # ragged lengths: shards pad differently than the whole file
        sf.write(root / f"c{i:03d}.wav", rng.uniform(-0.5, 0.5, int(SR * seconds)).astype(np.float32), SR)
        clips.append(Clip(id=f"c{i:03d}", audio=f"c{i:03d}.wav", duration=seconds, captions=["x"], split="train"))
    return write_manifest(root / "manifest.jsonl", clips)


def test_a_crashed_cache_resumes_at_the_first_unfinished_shard(tmp_path):
    manifest = make_manifest(tmp_path)
    clips = read_manifest(manifest)
    whole = read_cache(cache_audio_frames(Tower(), manifest, clips, "train", tmp_path / "a", batch_size=4))[0]

    with pytest.raises(RuntimeError, match="tower crashed"):
        cache_audio_frames(Tower(fail_after=26), manifest, clips, "train", tmp_path / "b", batch_size=4, shard_size=8)
    parts = list((tmp_path / "b").rglob("*.parts/*.safetensors"))
    assert len(parts) == 3  # clips 0-23 are saved; the shard of clips 24-31 was lost in the crash
    again = Tower()
    path = cache_audio_frames(again, manifest, clips, "train", tmp_path / "b", batch_size=4, shard_size=8)
    assert again.seen == 40 - 24
    resumed, meta = read_cache(path)
    assert meta["ids"] == [c.id for c in clips]
    assert torch.equal(resumed["mask"], whole["mask"]) and torch.equal(resumed["frames"], whole["frames"])
    assert not list((tmp_path / "b").rglob("*.parts"))  # cleaned up once the cache file exists


def test_parts_of_other_clips_are_not_reused(tmp_path):
    manifest = make_manifest(tmp_path, n=16)
    clips = read_manifest(manifest)
    with pytest.raises(RuntimeError):
        cache_audio_frames(Tower(fail_after=8), manifest, clips, "train", tmp_path / "c", batch_size=4, shard_size=8)
    (part,) = list((tmp_path / "c").rglob("*.parts/00000.safetensors"))
    other = read_cache(part)
    from audiocap.features.cache import write_cache

    write_cache(part, other[0], {"ids": ["someone", "else"] + other[1]["ids"][2:]})
    again = Tower()
    cache_audio_frames(again, manifest, clips, "train", tmp_path / "c", batch_size=4, shard_size=8)
    assert again.seen == 16


SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_feature_cache_resume import Tower
    from audiocap.data.manifest import read_manifest
    from audiocap.train.features import cache_audio_frames
    manifest, cache = sys.argv[1], sys.argv[2]
    cache_audio_frames(Tower(delay=0.5), manifest, read_manifest(manifest), "train", cache, batch_size=4, shard_size=8)
""")


def test_sigkill_mid_cache_loses_only_the_shard_in_progress(tmp_path):
    manifest = make_manifest(tmp_path)
    clips = read_manifest(manifest)
    cache = tmp_path / "k"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                          os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(tests=str(Path(__file__).parent)), str(manifest),
                             str(cache)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(list(cache.rglob("*.parts/*.safetensors"))) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "the caching process ended early"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    saved = len(list(cache.rglob("*.parts/*.safetensors")))
    assert 2 <= saved < 5 and not list(cache.rglob("*-audio.safetensors"))
    again = Tower()
    path = cache_audio_frames(again, manifest, clips, "train", cache, batch_size=4, shard_size=8)
    assert again.seen == 40 - 8 * saved
    whole = read_cache(cache_audio_frames(Tower(), manifest, clips, "train", tmp_path / "w", batch_size=4))[0]
    assert torch.equal(read_cache(path)[0]["frames"], whole["frames"])
