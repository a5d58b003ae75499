"""Fill (or find) the frozen aisfx tower cache of one manifest split and print its path: the
``--frames`` file of benchmarks/clap_quality.py (fp32 frames, as ``audiocap index build`` computes
them; 10-s clips are one window of the shipped models' policy).

    python scripts/cache_split_frames.py data/foley-full/manifest-12k.jsonl test fp32
"""

from __future__ import annotations

import sys

from audiocap.data.manifest import read_manifest
from audiocap.encoders import build_audio_encoder
from audiocap.train.features import cache_audio_frames


def main(manifest: str, split: str, precision: str = "fp32", hop_frames: int = 100) -> None:
    clips = [c for c in read_manifest(manifest) if c.split == split and c.captions]
    tower = build_audio_encoder("aisfx", hop_frames=hop_frames)
    print(cache_audio_frames(tower, manifest, clips, split, max_seconds=10.0, precision=precision))


if __name__ == "__main__":
    main(*sys.argv[1:])
