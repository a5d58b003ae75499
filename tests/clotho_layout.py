"""A tiny Clotho-layout folder for the paper recipes' smoke runs (issue 17 item 3).

The caption files are the first rows of the real Clotho v2.1 CSVs in ``<shared>/data/clotho``,
copied line for line; each clip's audio is a short real sound (1-3 s) found by the foley builder:
recordings it has already fetched into its cache (``~/.cache/audiocap/foley``; nothing is
downloaded here), else the speech it renders offline with espeak-ng (the builder's
``espeak-ng-speech`` source, a few voices and sentences of it). Each file keeps the Clotho file
name, so the real importer (``audiocap data import clotho``) pairs them.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import soundfile as sf

SPLITS = ("development", "validation", "evaluation")
SR = 16000
MAX_SECONDS = 3.0


def cached_recordings(cache: Path) -> list:
    """Recordings of the default preset's package sources that are already unpacked in the foley
    ``cache`` with their archive beside (so :func:`fetch_source` finds them without a download)."""
    from audiocap.data.foley.sources import SourceError, load_registry, source_recordings

    reg, recs = load_registry(), []
    for name in reg["presets"]["default"]:
        spec = reg["sources"][name]
        fetch = spec["fetch"]
        if fetch["method"] not in ("apt", "pip", "npm") or "extract" in spec:
            continue
        package = fetch.get("package", name)
        if not any((cache / "unpacked").glob(f"{name}_*/.audiocap-complete")):
            continue
        if not any((cache / "downloads").glob(f"{package}*")) and not any(
                (cache / "downloads").glob(f"{package.replace('-', '_')}*")):
            continue
        try:
            recs += [r for r in source_recordings(name, spec, cache) if r.role == "event"]
        except SourceError:
            continue
    return recs


def speech_recordings(cache: Path) -> list:
    """The builder's espeak-ng speech source, cut down to 6 voices x 4 sentences, rendered into ``cache``."""
    from audiocap.data.foley.sources import load_registry, source_recordings

    spec = load_registry()["sources"]["espeak-ng-speech"]
    fetch = spec["fetch"]
    small = {**spec, "fetch": {**fetch, "every": 1, "sentences": fetch["sentences"][:4],
                               "voices": {k: v[:3] for k, v in fetch["voices"].items()}}}
    return source_recordings("espeak-ng-speech", small, cache)


def stand_in_sounds(n: int, scratch: Path, *, labels: int = 6) -> tuple[str, list]:
    """``(where, recordings)``: ``n`` recordings of at most ``labels`` labels (spread over the sorted
    label list), taken in turn, so the clips differ and each label is carried by several clips."""
    from audiocap.data.foley.sources import DEFAULT_CACHE

    recs, where = cached_recordings(DEFAULT_CACHE), f"foley cache {DEFAULT_CACHE}"
    if len({r.label for r in recs}) < 4:
        recs, where = speech_recordings(scratch / "foley-cache"), "espeak-ng speech (foley builder source)"
    by_label: dict[str, list] = {}
    for r in sorted(recs, key=lambda r: r.id):
        by_label.setdefault(r.label, []).append(r)
    names = sorted(k for k, v in by_label.items() if len(v) >= -(-n // labels))
    names = [names[round(i * (len(names) - 1) / max(1, labels - 1))] for i in range(min(labels, len(names)))]
    by_label = {k: by_label[k] for k in dict.fromkeys(names)}
    turns = itertools.chain.from_iterable(itertools.zip_longest(*by_label.values()))
    chosen = [r for r in turns if r is not None][:n]
    assert len(chosen) == n, f"only {len(chosen)} stand-in recordings in {where}"
    return where, chosen


def write_clip(src: str, dest: Path) -> float:
    """Write ``src`` as mono 16-kHz WAV of at most 3 s (at least 1 s: padded with silence); returns seconds."""
    from audiocap.audio.io import load_audio

    wave = load_audio(src, sr=SR)[: int(MAX_SECONDS * SR)]
    if wave.size < SR:
        wave = np.pad(wave, (0, SR - wave.size))
    dest.parent.mkdir(parents=True, exist_ok=True)
    sf.write(dest, wave.astype(np.float32), SR)
    return wave.size / SR


def build_clotho_layout(shared: Path, root: Path, rows: dict[str, int]) -> dict:
    """``root/captions/clotho_captions_<split>.csv`` (the first ``rows[split]`` rows of the real files)
    and ``root/audio/<split>/<file_name>``. Returns ``{"where": ..., "labels": {(split, name): label}}``."""
    import csv

    picked: list[tuple[str, str]] = []
    (root / "captions").mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        lines = (shared / "data" / "clotho" / f"clotho_captions_{split}.csv").read_text(encoding="utf-8")
        kept = lines.splitlines(keepends=True)[: 1 + rows.get(split, 0)]
        (root / "captions" / f"clotho_captions_{split}.csv").write_text("".join(kept), encoding="utf-8")
        picked += [(split, row["file_name"]) for row in csv.DictReader(kept)]
    where, recs = stand_in_sounds(len(picked), root)
    labels = {}
    for (split, name), rec in zip(picked, recs):
        write_clip(rec.file, root / "audio" / split / name)
        labels[(split, name)] = rec.label
    return {"where": where, "labels": labels}
