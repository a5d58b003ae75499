"""Caption loaders shared by the metric tests (Clotho / AudioCaps CSVs in shared/data)."""

from __future__ import annotations

import csv
from pathlib import Path


def clotho_rows(shared: Path, split: str = "evaluation") -> list[dict]:
    with open(shared / "data" / "clotho" / f"clotho_captions_{split}.csv", newline="",
              encoding="utf-8") as f:
        return list(csv.DictReader(f))


def clotho_pairs(shared: Path, cand: int = 1, split: str = "evaluation"):
    """Candidates = caption_<cand>, references = the other four captions of the clip."""
    rows = clotho_rows(shared, split)
    cands = [r[f"caption_{cand}"] for r in rows]
    refs = [[r[f"caption_{k}"] for k in range(1, 6) if k != cand] for r in rows]
    return cands, refs


def audiocaps_groups(shared: Path, split: str = "test") -> list[list[str]]:
    """Captions grouped per clip (youtube_id, start_time), in file order."""
    groups: dict[tuple[str, str], list[str]] = {}
    with open(shared / "data" / "audiocaps" / f"{split}.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            groups.setdefault((r["youtube_id"], r["start_time"]), []).append(r["caption"])
    return list(groups.values())


def all_captions(shared: Path) -> list[str]:
    caps = []
    for split in ("development", "validation", "evaluation"):
        for r in clotho_rows(shared, split):
            caps += [r[f"caption_{k}"] for k in range(1, 6)]
    for split in ("train", "val", "test"):
        with open(shared / "data" / "audiocaps" / f"{split}.csv", newline="",
                  encoding="utf-8") as f:
            caps += [r["caption"] for r in csv.DictReader(f)]
    return caps
