"""Filters and sorting for the library's search results: duration range, tag, license; relevance,
duration or name order.

The filters read the facts the index keeps for each item (``duration``, ``tags``, ``license``:
:func:`audiocap.serve.catalog.item_facts`), so an item without a fact never passes a filter on it.
Filtering runs over the best :data:`MAX_CANDIDATES` items of the ranking (the whole library when
it is smaller), so a filter does not leave a page empty while matching items exist further down.
Sorting by duration or name re-orders the best ``max_k`` items that pass the filters (the results
a user can page through), not the whole library: "shortest first" among the sounds that match.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field

MAX_CANDIDATES = 2_000  # ranked items the filters look through (an approximate index re-ranks k x refine)


class SearchFilters(BaseModel):
    """Optional filters and order of a search (all off by default)."""

    min_duration: float | None = Field(None, ge=0, le=1e6, description="Only sounds at least this many seconds long")
    max_duration: float | None = Field(None, ge=0, le=1e6, description="Only sounds at most this many seconds long")
    tag: str | None = Field(None, max_length=200, description="Only sounds carrying this tag (case-insensitive)")
    license: str | None = Field(None, max_length=200, description="Only sounds under this license, e.g. CC0-1.0 "
                                "(an item under 'CC-BY-SA-3.0; GPL-2+' matches either)")
    sort: Literal["relevance", "duration", "name"] = Field(
        "relevance", description="relevance: best match first; duration: shortest first; name: by id, A-Z "
        "(duration and name re-order the best matches that pass the filters)")

    def active(self) -> bool:
        """Whether any filter or a non-default order is asked for."""
        return (self.min_duration is not None or self.max_duration is not None or bool(self.tag)
                or bool(self.license) or self.sort != "relevance")


def licenses_of(item: dict[str, Any] | None) -> list[str]:
    """The licenses an item is under: its ``license`` split at ';' and ',' ("CC-BY-SA-3.0; GPL-2+")."""
    text = str((item or {}).get("license") or "")
    return [part.strip() for part in re.split(r"[;,]", text) if part.strip()]


def passes(item: dict[str, Any] | None, f: SearchFilters) -> bool:
    """Whether an index item passes the filters of ``f``."""
    item = item or {}
    if f.min_duration is not None or f.max_duration is not None:
        dur = item.get("duration")
        if not isinstance(dur, (int, float)):
            return False
        if (f.min_duration is not None and dur < f.min_duration - 1e-6) or \
                (f.max_duration is not None and dur > f.max_duration + 1e-6):
            return False
    if f.tag and f.tag.strip().lower() not in {str(t).strip().lower() for t in item.get("tags") or []}:
        return False
    if f.license and f.license.strip().lower() not in {lic.lower() for lic in licenses_of(item)}:
        return False
    return True


def filter_and_sort(hits: list, catalog: dict[str, dict], f: SearchFilters, *, limit: int) -> list:
    """The hits (best first) whose items pass ``f``, at most ``limit`` of them, in ``f.sort`` order.

    Items of unknown duration sort after the others; ties keep the relevance order.
    """
    kept = [h for h in hits if passes(catalog.get(h.id), f)][:limit]
    if f.sort == "duration":
        def seconds(h) -> float:
            dur = (catalog.get(h.id) or {}).get("duration")
            return float(dur) if isinstance(dur, (int, float)) else float("inf")
        kept.sort(key=seconds)
    elif f.sort == "name":
        kept.sort(key=lambda h: h.id.lower())
    return kept


def library_facets(items: list[dict[str, Any]], *, max_tags: int = 500) -> dict[str, Any]:
    """What the filters can offer: every tag (most used first, at most ``max_tags``; the summary's
    tag list holds only the top few), the licenses with their counts, the shortest / longest duration."""
    from collections import Counter

    tags = Counter(str(t).strip() for it in items for t in it.get("tags") or [] if str(t).strip())
    counts = Counter(lic for it in items for lic in licenses_of(it))
    durations = [float(it["duration"]) for it in items if isinstance(it.get("duration"), (int, float))]
    return {"tag_names": [t for t, _ in tags.most_common(max_tags)],
            "licenses": [{"license": lic, "count": n} for lic, n in counts.most_common()],
            "duration_range": [min(durations), max(durations)] if durations else None}
