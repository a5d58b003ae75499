"""Datacard and attribution files written beside every foley build.

``ATTRIBUTION.tsv`` lists every source recording heard in the dataset with its package,
version, path, license and author (attribution and share-alike terms of the sources apply to
the mixtures). ``DATACARD.md`` / ``DATACARD.json`` give counts per class and split, durations,
licenses, what was excluded and why, and how the data differ from Clotho.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from audiocap.data.foley.captions import word_count
from audiocap.data.foley.library import Event
from audiocap.data.foley.sources import Recording
from audiocap.data.manifest import Clip
from audiocap.fileio import atomic_write_json, atomic_write_text

CLOTHO_DIFFERENCES = [
    "Clips are synthetic mixtures of 1-3 recorded (or synthesized) events over an optional "
    "background bed, not field recordings; every clip lasts exactly 10 s (Clotho: 15-30 s).",
    "Captions are generated from the mixing recipe with a reviewed lexicon, so they are true "
    "by construction but less varied than Clotho's crowd-sourced captions; they name every "
    "event and never guess.",
    "Splits are by source recording: no recording heard in train occurs in val or test.",
    "Audio is 32 kHz mono FLAC (Clotho: 44.1 kHz); towers resample on load.",
    "Sources are game and educational sound libraries shipped by Debian/PyPI packages, so "
    "the domain leans to animals, footsteps, doors, vehicles and tools; domestic and urban "
    "scenes are thinner than in Clotho (Freesound).",
]


def write_attribution(path: Path, recs: list[Recording]) -> Path:
    """One TSV row per source recording: id, package, version, path, license, author."""
    lines = ["recording\tpackage\tversion\tpath\tlicense\tauthor"]
    for r in sorted(recs, key=lambda r: r.id):
        cells = [r.id, r.package, r.version, r.path, r.license, r.author]
        lines.append("\t".join(c.replace("\t", " ").replace("\n", " ") for c in cells))
    return atomic_write_text(path, "\n".join(lines) + "\n")


def summarize(rows: list[Clip], events: list[Event], split_of: dict[str, str]) -> dict[str, Any]:
    """Counts per class (clips and recordings per split), per license, caption lengths."""
    clips_per = defaultdict(Counter)
    for c in rows:
        for label in c.meta["labels"]:
            clips_per[label][c.split] += 1
    recs_per = defaultdict(Counter)
    seconds_per = Counter()
    for ev in events:
        recs_per[ev.rec.label][split_of[ev.rec.group]] += 1
        seconds_per[ev.rec.label] += ev.duration
    lic = Counter(ev.rec.license for ev in events)
    words = [word_count(s) for c in rows for s in c.captions]
    classes = {label: {"clips": dict(clips_per[label]), "recordings": dict(recs_per[label]),
                       "recording_seconds": round(seconds_per[label], 1)} for label in sorted(recs_per)}
    return {
        "clips": dict(Counter(c.split for c in rows)),
        "hours": round(sum(c.duration for c in rows) / 3600, 2),
        "classes": classes,
        "n_classes": len(classes),
        "recordings": len(events),
        "recording_licenses": dict(lic),
        "caption_words": {"min": min(words), "max": max(words), "mean": round(sum(words) / len(words), 2)},
        "vocabulary": len({w.lower() for c in rows for s in c.captions for w in s.replace(".", "").replace(",", "").split()}),
    }


def write_datacard(out: Path, rows: list[Clip], events: list[Event], split_of: dict[str, str],
                   excluded: dict[str, str], dropped: list[dict], config: dict[str, Any], *,
                   train_only: set[str] | frozenset[str] = frozenset()) -> Path:
    """Write DATACARD.json and a readable DATACARD.md; return the markdown path."""
    s = summarize(rows, events, split_of)
    s.update(config=config, excluded_classes=excluded, train_only_classes=sorted(train_only),
             single_event_clips=sum(1 for c in rows if c.meta.get("recipe", {}).get("single")),
             dropped_recordings=dropped,
             differences_from_clotho=CLOTHO_DIFFERENCES)
    atomic_write_json(out / "DATACARD.json", s)
    md = [f"# audiocap foley dataset ({config['preset']} preset, seed {config['seed']})", "",
          f"{sum(s['clips'].values())} clips of 10 s ({s['hours']} h) at 32 kHz mono FLAC; "
          f"splits {s['clips']}; {s['n_classes']} classes from {s['recordings']} source recordings.",
          f"Captions: 5 per clip, {s['caption_words']['min']}-{s['caption_words']['max']} words "
          f"(mean {s['caption_words']['mean']}), vocabulary {s['vocabulary']} words.", "",
          "## Classes", "", "| class | clips train/val/test | recordings train/val/test | seconds |",
          "|---|---|---|---|"]
    for label, c in s["classes"].items():
        cl, rc = c["clips"], c["recordings"]
        md.append(f"| {label} | {cl.get('train', 0)}/{cl.get('val', 0)}/{cl.get('test', 0)} | "
                  f"{rc.get('train', 0)}/{rc.get('val', 0)}/{rc.get('test', 0)} | {c['recording_seconds']} |")
    md += ["", "## Licenses of the source recordings", ""]
    md += [f"- {k}: {v} recordings" for k, v in sorted(s["recording_licenses"].items())]
    md += ["", "Mixtures inherit the terms of their sources: see ATTRIBUTION.tsv for every "
           "recording's package, path, license and author; each manifest line names its licenses.",
           "", "## Excluded classes", ""]
    md += [f"- {k}: {v}" for k, v in sorted(excluded.items())] or ["- none"]
    md += ["", "## Train-only classes", "",
           "Too few distinct recordings to hold one out: every clip with these is in train, so the "
           "models hear them but no test figure covers them.", ""]
    md += [f"- {k}" for k in sorted(train_only)] or ["- none"]
    md += ["", f"Single-event clips (one event, no background): {s['single_event_clips']}"]
    md += ["", f"Dropped recordings (silent, undecodable or duplicate): {len(dropped)}", "",
           "## How this differs from Clotho", ""] + [f"- {d}" for d in CLOTHO_DIFFERENCES]
    return atomic_write_text(out / "DATACARD.md", "\n".join(md) + "\n")
