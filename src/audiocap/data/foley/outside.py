"""The outside test set: single recordings from the five reserved packages, never trained on.

``sources.yaml`` lists, under ``reserved``, five packages that no preset may use; ``outside.yaml`` maps their files to
existing lexicon labels by file name. :func:`build_outside` turns each distinct recording (MD5
dedupe) into one test clip: cleaned like the builder's event library (:func:`library.clean`:
trim, fade, loudness-normalize), cut to at most 10 s, stored as 32 kHz 16-bit FLAC, tagged with
its label's lexicon tag and captioned from the lexicon clauses. It measures how a model trained
on the builder's data generalizes to recordings from unseen sources (zero-shot classification
and retrieval, issue 14 item 5).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from audiocap.data.foley import captions as cap
from audiocap.data.foley.library import SR, build_library
from audiocap.data.foley.sources import DEFAULT_CACHE, SourceError, read_registry, source_recordings
from audiocap.data.manifest import Clip, write_manifest
from audiocap.fileio import atomic_path, atomic_write_text

MAX_SECONDS = 10.0


def load_outside_registry(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Load ``outside.yaml`` (or ``path``) and check that every rule names a lexicon label.

    The registry has ``sources`` (one entry per reserved package of ``sources.yaml``, same rule
    format). A label the lexicon lacks is an error naming the file and the package.
    """
    reg, where = read_registry(path, "outside.yaml", "the outside registry")
    if not isinstance(reg.get("sources"), dict):
        raise SourceError(f"{where}: the outside registry needs a 'sources' mapping")
    lex = cap.lexicon()["labels"]
    for name, spec in reg["sources"].items():
        bad = sorted({r["label"] for r in spec["files"]} - set(lex))
        if bad:
            raise SourceError(f"{where}: source '{name}' maps to label(s) {bad} that lexicon.yaml "
                              "lacks; add them to the lexicon or drop the rules")
    return reg


def outside_captions(label: str, n: int = 3) -> list[str]:
    """Up to ``n`` captions for a single-event clip: the label's lexicon clauses as sentences.

    "a dog barks" becomes "A dog barks."; the clauses are the reviewed phrases the builder's
    captions use, so :func:`captions.labels_in` recovers exactly ``label`` from each.
    """
    clauses = cap.lexicon()["labels"][label]["clause"][:n]
    return [c[0].upper() + c[1:] + "." for c in clauses]


def build_outside(out: str | os.PathLike, *, cache: str | os.PathLike | None = None,
                  registry: str | os.PathLike | dict | None = None, jobs: int = 1) -> Path:
    """Build the outside test set in ``out`` and return the path of ``out/manifest.jsonl``.

    One clip per distinct recording (MD5 dedupe, smallest id kept), split "test", at most
    10 s, FLAC written atomically; ``DATACARD.md`` lists clips per class and package. Packages
    are fetched with ``apt-get download`` into ``cache`` (default ~/.cache/audiocap/foley).
    """
    out = Path(out)
    cache = Path(cache) if cache else DEFAULT_CACHE
    reg = registry if isinstance(registry, dict) else load_outside_registry(registry)
    lex = cap.lexicon()["labels"]
    recs = []
    for name in sorted(reg["sources"]):
        recs.extend(source_recordings(name, reg["sources"][name], cache))
    recs.sort(key=lambda r: r.id)
    events, dropped = build_library(recs, cache, jobs=jobs)
    rows: list[Clip] = []
    for k, ev in enumerate(events):
        wave = ev.wave[: int(MAX_SECONDS * SR)]
        rel = f"audio/test/outside_{k:04d}.flac"
        target = out / rel
        pcm = np.clip(np.round(wave * 32767.0), -32768, 32767).astype(np.int16)
        with atomic_path(target, suffix=".flac") as tmp:
            sf.write(tmp, pcm, SR, format="FLAC", subtype="PCM_16")
        rec = ev.rec
        rows.append(Clip(
            id=f"outside_{k:04d}", audio=rel, duration=round(len(wave) / SR, 3),
            captions=outside_captions(rec.label), tags=[lex[rec.label]["tag"]], split="test",
            source=f"outside:{rec.package}", license=rec.license,
            meta={"labels": [rec.label], "package": rec.package, "path": rec.path,
                  "version": rec.version, "author": rec.author, "md5": ev.md5}))
    if not rows:
        raise SourceError(f"{out}: the outside registry selected no usable recording (dropped: {dropped})")
    manifest = out / "manifest.jsonl"
    write_manifest(manifest, rows)
    atomic_write_text(out / "DATACARD.md", datacard(rows, dropped))
    return manifest


def datacard(rows: list[Clip], dropped: list[dict]) -> str:
    """Markdown data card: clips per class x package, totals, and the dropped recordings."""
    pkgs = sorted({r.meta["package"] for r in rows})
    count = Counter((r.meta["labels"][0], r.meta["package"]) for r in rows)
    labels = sorted({r.meta["labels"][0] for r in rows})
    lines = ["# Outside test set (reserved packages, never trained on)", "",
             f"{len(rows)} clips, {len(labels)} classes, {len(pkgs)} packages; one clip per distinct "
             "recording, cleaned and cut to <= 10 s, 32 kHz FLAC, split 'test'. Labels come from "
             "file names (outside.yaml), not from listening.", "",
             "| class | tag | " + " | ".join(pkgs) + " | total |",
             "|---|---|" + "---|" * len(pkgs) + "---|"]
    lex = cap.lexicon()["labels"]
    for lab in labels:
        cells = [str(count.get((lab, p), 0) or "") for p in pkgs]
        lines.append(f"| {lab} | {lex[lab]['tag']} | " + " | ".join(cells)
                     + f" | {sum(count.get((lab, p), 0) for p in pkgs)} |")
    totals = [str(sum(count.get((lab, p), 0) for lab in labels)) for p in pkgs]
    lines.append("| **total** | | " + " | ".join(totals) + f" | {len(rows)} |")
    if dropped:
        lines += ["", "## Dropped", ""] + [f"- {d['id']}: {d['reason']}" for d in dropped]
    return "\n".join(lines) + "\n"
