"""Build a foley dataset: sources -> event library -> leakage-free splits -> clips + captions.

The whole build is a pure function of (preset, registry, number of clips, seed): recordings
are sorted by id, splits are assigned per class by hashing recording groups, and each clip's
recipe and captions come from generators seeded with (seed, clip index). Clips are rendered
in worker processes and written atomically (FLAC, 16-bit, 32 kHz), so an interrupted build
keeps its finished clips and a rerun renders only the missing ones; the manifest, datacard
and ATTRIBUTION are written last. A complete build is detected and returned immediately.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from collections import defaultdict
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from audiocap.data.foley import captions as cap
from audiocap.data.foley.compose import make_recipe, render
from audiocap.data.foley.library import SR, Event, build_library, count_bursts
from audiocap.data.foley.sources import DEFAULT_CACHE, collect_recordings, load_registry, registry_digest
from audiocap.data.manifest import Clip, write_manifest
from audiocap.fileio import atomic_path, atomic_write_json

FORMAT_VERSION = 2  # 2: rare labels kept for training, a share of single-event clips
DEFAULT_CLIPS = {"default": 2400, "full": 25000}
MIN_GROUPS = {"event": 3, "background": 2}  # fewer recording groups: the label is heard in train only
SINGLE_SHARE = 0.2  # clips that are one event and nothing else, exact positives for short queries
SPLITS = ("train", "val", "test")


class FoleyError(RuntimeError):
    """The build cannot proceed; the message says which folder or setting and what to do."""


def assign_splits(events: list[Event], train_only: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
    """Map each recording group to train/val/test, class by class (about 80/10/10).

    Groups of a class are ordered by the MD5 of their name; the first max(1, round(0.1 n))
    go to test, the next as many to val when the class has at least 5 groups, the rest to
    train. A group therefore never appears in two splits, and every class with >= 3 groups is
    present in train and test. Labels in ``train_only`` (too few recordings to hold one out)
    put all their groups in train: models hear them, tests cannot score them.
    """
    by_label: dict[str, set[str]] = defaultdict(set)
    for ev in events:
        by_label[ev.rec.label].add(ev.rec.group)
    split: dict[str, str] = {}
    for label in sorted(by_label):
        groups = sorted(by_label[label], key=lambda g: hashlib.md5(g.encode()).hexdigest())
        k = 0 if label in train_only else max(1, round(0.1 * len(groups)))
        n_val = k if len(groups) >= 5 else 0
        for i, g in enumerate(groups):
            s = "test" if i < k else "val" if i < k + n_val else "train"
            if split.setdefault(g, s) != s:
                raise FoleyError(f"recording group {g} has two labels in different splits; "
                                 "give its files distinct groups in sources.yaml")
    return split


def clip_split(index: int) -> str:
    """Clip index -> split: indices ending in 8 are val, 9 test, the rest train (80/10/10)."""
    return {8: "val", 9: "test"}.get(index % 10, "train")


def _usable(events: list[Event]) -> tuple[list[Event], dict[str, str], set[str]]:
    """Keep labels that have a lexicon entry; return (events, excluded labels with the reason,
    train-only labels: fewer distinct recording groups than a held-out split needs)."""
    lex = cap.lexicon()["labels"]
    groups: dict[str, set[str]] = defaultdict(set)
    for ev in events:
        groups[ev.rec.label].add(ev.rec.group)
    excluded, train_only = {}, set()
    for label, gs in groups.items():
        role = "background" if lex.get(label, {}).get("kind") == "background" else "event"
        if label not in lex:
            excluded[label] = "no lexicon entry"
        elif len(gs) < MIN_GROUPS[role]:
            train_only.add(label)
    return [e for e in events if e.rec.label not in excluded], excluded, train_only


# Worker state (inherited through fork): recordings by id and the output folder.
_STATE: dict[str, Any] = {}


def _worker_init() -> None:
    """Turn the SIGTERM of Pool.terminate() into SystemExit so atomic writes clean up."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


def _render_one(item: tuple[str, dict[str, Any]]) -> str:
    rel, recipe = item
    target = Path(_STATE["out"]) / rel
    if not target.exists():
        wave = render(recipe, _STATE["events"])
        pcm = np.clip(np.round(wave * 32767.0), -32768, 32767).astype(np.int16)
        with atomic_path(target, suffix=".flac") as tmp:
            sf.write(tmp, pcm, SR, format="FLAC", subtype="PCM_16")
    return rel


def _complete(out: Path, config: dict[str, Any]) -> bool:
    try:
        done = json.loads((out / "build.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return done.get("config") == config and done.get("complete") is True and (out / "manifest.jsonl").exists()


def build_foley(out: str | os.PathLike, preset: str = "default", clips: int | None = None, seed: int = 0,
                jobs: int | None = None, cache: str | os.PathLike | None = None,
                registry: str | os.PathLike | dict | None = None, progress: bool = True,
                _fail_after: int | None = None) -> Path:
    """Build (or finish, or reuse) a foley dataset in ``out`` and return its manifest path.

    Args:
        out: output folder (audio/, manifest.jsonl, DATACARD.md/.json, ATTRIBUTION.tsv).
        preset: registry preset ("default": small packages; "full": adds large ones).
        clips: number of 10-s clips (default 2,400 for "default", 12,000 for "full").
        seed: seed of every recipe and caption; same seed -> same manifest and audio bytes.
        jobs: worker processes for decoding and rendering (default: CPU count).
        cache: download/unpack/library cache (default ~/.cache/audiocap/foley).
        registry: a registry YAML path or dict instead of the packaged one (tests use this).
    """
    out = Path(out)
    cache = Path(cache) if cache else DEFAULT_CACHE
    reg = registry if isinstance(registry, dict) else load_registry(registry)
    if preset not in reg["presets"]:
        raise FoleyError(f"unknown preset '{preset}' (choose from {', '.join(reg['presets'])})")
    clips = int(clips or DEFAULT_CLIPS.get(preset, 2400))
    if clips < 1:
        raise FoleyError(f"--clips must be >= 1, got {clips}")
    jobs = max(1, int(jobs or os.cpu_count() or 1))
    config = {"format": FORMAT_VERSION, "preset": preset, "clips": clips, "seed": seed, "sr": SR,
              "registry": registry_digest(reg, preset), "lexicon": cap.lexicon_digest()}
    manifest = out / "manifest.jsonl"
    if _complete(out, config):
        return manifest
    prev = out / "build.json"
    if prev.exists():
        old = json.loads(prev.read_text()).get("config") or {}
        audio_keys = [k for k in config if k != "lexicon"]  # a new lexicon only rewrites captions
        if any(old.get(k) != config[k] for k in audio_keys):
            raise FoleyError(f"{out} holds a build with different settings {old}; "
                             "choose another --out or delete that folder")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(prev, {"config": config, "complete": False})

    bar = _Progress(progress)
    recs = collect_recordings(preset, cache, reg, progress=lambda n: bar.status(f"fetching {n}"))
    bar.start("decoding", len(recs))
    events, dropped = build_library(recs, cache, jobs=jobs, progress=bar.update)
    bar.close()
    events, excluded, train_only = _usable(events)
    if not events:
        raise FoleyError(f"preset '{preset}' left no usable recordings (excluded: {excluded})")
    kinds = {k: v["kind"] for k, v in cap.lexicon()["labels"].items()}
    split_of = assign_splits(events, train_only)
    pools: dict[str, dict[str, list[Event]]] = {s: defaultdict(list) for s in SPLITS}
    bgs: dict[str, dict[str, list[Event]]] = {s: defaultdict(list) for s in SPLITS}
    for ev in events:
        (bgs if kinds[ev.rec.label] == "background" else pools)[split_of[ev.rec.group]][ev.rec.label].append(ev)
    by_id = {ev.rec.id: ev for ev in events}
    bursts = {ev.rec.id: count_bursts(ev.wave) for ev in events if kinds[ev.rec.label] == "shot"}

    rows: list[Clip] = []
    work: list[tuple[str, dict[str, Any]]] = []
    for i in range(clips):
        split = clip_split(i)
        if not pools[split]:
            split = "train"
        for max_events in (3, 2, 1):  # a recipe too rich for a 20-word caption loses an event
            recipe = make_recipe(seed, i, split, dict(pools[split]), dict(bgs[split]), kinds, max_events,
                                 single_share=SINGLE_SHARE)
            try:
                caps = cap.make_captions(recipe, bursts, np.random.default_rng([seed, i, 2]))
                break
            except cap.CaptionError:
                if max_events == 1:
                    raise
        rec_ids = sorted({h["rec"] for e in recipe["events"] for h in e["hits"]}
                         | ({recipe["background"]["rec"]} if recipe["background"] else set()))
        labels = [e["label"] for e in recipe["events"]] + ([recipe["background"]["label"]] if recipe["background"] else [])
        lex = cap.lexicon()["labels"]
        rel = f"audio/{split}/foley_{i:06d}.flac"
        rows.append(Clip(
            id=f"foley_{i:06d}", audio=rel, duration=recipe["seconds"], captions=caps,
            tags=[lex[label]["tag"] for label in labels], split=split,
            source="foley:" + ",".join(sorted({by_id[r].rec.package for r in rec_ids})),
            license="; ".join(sorted({by_id[r].rec.license for r in rec_ids})),
            meta={"recipe": recipe, "labels": labels, "recordings": rec_ids}))
        work.append((rel, recipe))

    _STATE.update(out=str(out), events=by_id)
    for stale in (out / "audio").glob("*/.foley_*"):  # temporary files of a killed run
        stale.unlink(missing_ok=True)
    todo = [w for w in work if not (out / w[0]).exists()]
    bar.start("rendering", len(work), initial=len(work) - len(todo))
    done = 0
    if jobs > 1 and len(todo) > 4:
        with get_context("fork").Pool(jobs, initializer=_worker_init) as pool:
            for _ in pool.imap_unordered(_render_one, todo, chunksize=4):
                done += 1
                bar.update(1)
                if _fail_after is not None and done >= _fail_after:
                    raise KeyboardInterrupt(f"injected failure after {done} clips")
    else:
        for item in todo:
            _render_one(item)
            done += 1
            bar.update(1)
            if _fail_after is not None and done >= _fail_after:
                raise KeyboardInterrupt(f"injected failure after {done} clips")
    bar.close()

    from audiocap.data.foley.datacard import write_attribution, write_datacard
    write_manifest(manifest, rows)
    used = sorted({r for c in rows for r in c.meta["recordings"]})
    write_attribution(out / "ATTRIBUTION.tsv", [by_id[r].rec for r in used])
    write_datacard(out, rows, events, split_of, excluded, dropped, config, train_only=train_only)
    atomic_write_json(prev, {"config": config, "complete": True})
    return manifest


class _Progress:
    """A thin tqdm wrapper that can be silenced (progress=False) without branching callers."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.pbar = enabled, None

    def status(self, msg: str) -> None:
        if self.enabled:
            from tqdm import tqdm
            tqdm.write(msg)

    def start(self, desc: str, total: int, initial: int = 0) -> None:
        if self.enabled:
            from tqdm import tqdm
            self.pbar = tqdm(total=total, initial=initial, desc=desc, unit="file" if desc == "decoding" else "clip")

    def update(self, n: int = 1) -> None:
        if self.pbar is not None:
            self.pbar.update(n)

    def close(self) -> None:
        if self.pbar is not None:
            self.pbar.close()
            self.pbar = None
