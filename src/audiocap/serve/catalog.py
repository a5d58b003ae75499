"""What the page shows about the library: example queries, a tag list, per-item facts, thumbnails.

Everything here is read from the index's own items (``index.json``: ``duration``, ``captions``,
``tags``, ``license``, ``source``, ``meta``), so the examples a user is offered are sounds the
library really holds. A waveform thumbnail is computed from the item's audio file on first
request (peak envelope, read block by block so long files never sit in memory) and cached; it is
an SVG so the page needs no drawing code and no external library.

Routes added to the app by :func:`add_catalog_routes`:

- ``GET  /v1/library``            item count, example queries, tags (or frequent caption words),
                                  licenses and the duration range (for the filters)
- ``GET  /v1/waveform/{id}``      an SVG waveform thumbnail of a playable item
- ``POST /v1/search/similar``     JSON ``{"id", "k", "offset"}``: "more like this" by item id
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
from fastapi import Response
from pydantic import Field

from audiocap.serve.filters import MAX_CANDIDATES, SearchFilters, filter_and_sort, library_facets

STOPWORDS = frozenset("""a an the and or of in on at to from by with into onto over under for is are
was were be being been it its this that these those as while then than there their they he she
his her him them some someone something somebody several many much more most very up down out off
away near far back again each other one two three four five first second third while during after
before through across around along against between behind above below beside inside outside
does do did has have had being can could will would may might not no yes but so if what which who
whom whose when where why how all any both few own same too just also only loud loudly quiet
quietly softly slowly quickly continuously repeatedly rapidly sound sounds noise noises
background distance distant close heard hear hearing can being like making makes made""".split())

THUMB_W, THUMB_H, THUMB_BINS = 240, 48, 120


class SimilarRequest(SearchFilters):
    """Find the library's sounds most like one of its items ("more like this"), optionally filtered
    and sorted as text searches are (:mod:`audiocap.serve.filters`)."""

    id: str = Field(..., min_length=1, max_length=2000, description="An index item id")
    k: int = Field(10, ge=1, le=100, description="How many results")
    offset: int = Field(0, ge=0, le=10_000, description="Skip this many results (paging)")


def item_facts(item: dict[str, Any] | None) -> dict[str, Any]:
    """The facts about an index item a result card shows: duration (s), tags, license, attribution.

    ``attribution`` is the item's ``meta.attribution`` or ``meta.author`` or its ``source``;
    missing facts are None / empty, never invented.
    """
    if not item:
        return {"duration": None, "tags": [], "license": None, "attribution": None}
    meta = item.get("meta") if isinstance(item.get("meta"), dict) else {}
    dur = item.get("duration")
    attribution = meta.get("attribution") or meta.get("author") or item.get("source") or None
    tags = [str(t) for t in (item.get("tags") or []) if str(t).strip()]
    return {"duration": float(dur) if isinstance(dur, (int, float)) else None,
            "tags": tags[:12], "license": str(item["license"]) if item.get("license") else None,
            "attribution": str(attribution) if attribution else None}


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2 and w not in STOPWORDS]


def library_summary(items: Iterable[dict[str, Any]], *, n_examples: int = 6, n_tags: int = 24) -> dict:
    """Example queries and a tag list built from the library's own items.

    Tags come from the items' ``tags`` when the index has them (``tags_kind: "tags"``); else
    the most frequent content words of the reference captions (``"caption words"``). Each
    example is the shortest reference caption holding one of the most frequent tags/words, so
    the examples cover different sounds; with neither captions nor tags there are no examples.
    """
    items = list(items)
    captions = [str(c) for it in items for c in (it.get("captions") or [])[:1] if str(c).strip()]
    tag_counts = Counter(str(t).strip().lower() for it in items for t in (it.get("tags") or [])
                         if str(t).strip())
    kind = "tags"
    if not tag_counts:
        kind = "caption words"
        tag_counts = Counter(w for c in captions for w in set(_words(c)))
    top = [t for t, _ in tag_counts.most_common(max(n_tags, n_examples * 4))]
    examples: list[str] = []
    by_length = sorted(set(captions), key=lambda c: (len(c.split()), c))
    for term in top:
        if len(examples) >= n_examples:
            break
        for cap in by_length:
            if 2 <= len(cap.split()) <= 9 and term in cap.lower() and cap not in examples:
                examples.append(cap.rstrip("."))
                break
    if not examples and kind == "tags":
        examples = top[:n_examples]
    return {"items": len(items), "examples": examples, "tags_kind": kind,
            "tags": [{"tag": t, "count": tag_counts[t]} for t in top[:n_tags]]}


@lru_cache(maxsize=2048)
def _peaks(path: str, mtime_ns: int, bins: int) -> tuple[tuple[float, ...], float]:
    """(peak per bin in [0, 1], seconds) of an audio file, read in blocks (mono = max over channels).

    Decoded through audiocap.audio.io, which reads to the end of the stream (a streamed FLAC has
    no length in its header: soundfile's read failed with "psf_fseek() failed") and keeps
    libmpg123's messages off the server's terminal."""
    import contextlib

    from audiocap.audio.io import audio_info, read_blocks

    info = audio_info(path)  # counts a streamed FLAC's frames
    frames, sr = info.frames, info.sample_rate
    edges = np.linspace(0, max(frames, 1), bins + 1).astype(np.int64)
    peaks = np.zeros(bins, dtype=np.float32)
    pos = 0
    with contextlib.closing(read_blocks(path)) as blocks:
        for data in blocks:
            data = data[: max(frames - pos, 0)]  # a header claiming less than the file holds
            if not len(data):
                break
            amp = np.abs(data).max(axis=1)  # (n,)
            first = np.searchsorted(edges, pos, side="right") - 1
            last = np.searchsorted(edges, pos + len(amp) - 1, side="right") - 1
            for b in range(max(first, 0), min(last, bins - 1) + 1):
                lo, hi = max(edges[b] - pos, 0), min(edges[b + 1] - pos, len(amp))
                if hi > lo:
                    peaks[b] = max(peaks[b], float(amp[lo:hi].max()))
            pos += len(amp)
    top = float(peaks.max()) if peaks.size else 0.0
    norm = peaks / top if top > 0 else peaks
    return tuple(round(float(p), 3) for p in np.nan_to_num(norm)), frames / float(sr or 1)


def waveform_svg(path: str | Path, *, bins: int = THUMB_BINS) -> str:
    """An SVG waveform thumbnail (peak envelope, mirrored around the centre line) of ``path``."""
    p = Path(path)
    peaks, _ = _peaks(str(p), p.stat().st_mtime_ns, bins)
    mid, step = THUMB_H / 2, THUMB_W / max(len(peaks), 1)
    top = " ".join(f"{i * step:.1f},{mid - max(v, 0.02) * (mid - 1):.1f}" for i, v in enumerate(peaks))
    bottom = " ".join(f"{i * step:.1f},{mid + max(v, 0.02) * (mid - 1):.1f}"
                      for i, v in reversed(list(enumerate(peaks))))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {THUMB_W} {THUMB_H}" '
            f'width="{THUMB_W}" height="{THUMB_H}" preserveAspectRatio="none">'
            f'<rect width="100%" height="100%" fill="#eef2f8"/>'
            f'<polygon points="{top} {bottom}" fill="#1f5fbf"/></svg>')


def add_catalog_routes(app, backend, run: Callable, *, api_error: type, max_k: int,
                       hits_out: Callable, response_model: type, no_match: Callable,
                       playable: Callable[[str], Path | None] | None = None) -> None:
    """Register ``/v1/library``, ``/v1/waveform/{id}`` and ``/v1/search/similar`` on ``app``.

    ``run`` is the app's bounded runner (``await run(fn, *args, model=...)``); ``hits_out`` and
    ``no_match`` turn backend hits into the response the other search routes give;
    ``playable(id)`` is the file the app may read for an item (the same check as
    ``/v1/audio``; default ``backend.audio_path``), called in the pool.
    """
    from audiocap.audio.io import AudioError, load_audio

    playable = playable or backend.audio_path
    items_of = getattr(backend, "items", None)
    by_id: dict[str, dict] = {str(it.get("id")): it for it in (items_of() if items_of else [])}
    summary = library_summary(by_id.values()) | library_facets(list(by_id.values()))
    app.state.catalog = by_id

    @app.get("/v1/library", tags=["meta"])
    async def library() -> dict:
        """What the library holds: item count, example queries from its captions, its tags, and what
        the filters can offer (its licenses, its shortest and longest duration)."""
        return summary

    @app.get("/v1/waveform/{item_id:path}", tags=["audio"],
             responses={200: {"content": {"image/svg+xml": {}}}})
    async def waveform(item_id: str):
        """An SVG waveform thumbnail of a playable item (computed from its audio, then cached)."""
        path = await run(playable, item_id, model=False)
        if path is None:
            raise api_error(404, "unknown_id", f"no playable item with id {item_id[:200]!r}")
        try:
            svg = await run(waveform_svg, str(path), model=False)
        except (OSError, RuntimeError, ValueError) as exc:
            raise api_error(422, "bad_audio", f"cannot read the audio of {item_id[:200]!r}: {exc}") from None
        return Response(svg, media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=3600",
                                 "X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})

    @app.post("/v1/search/similar", response_model=response_model, tags=["search"])
    async def similar(body: SimilarRequest):
        """Rank the library's sounds by CLAP similarity to one of its items (the item itself left out)."""
        if body.offset + body.k > max_k:
            raise api_error(422, "k_too_large", f"offset + k = {body.offset + body.k} exceeds this "
                            f"server's limit of {max_k} results")
        path = await run(playable, body.id, model=False)
        if path is None:
            raise api_error(404, "unknown_id", f"no playable item with id {body.id[:200]!r}")
        try:
            wave = await run(partial_load(load_audio, path, backend.sample_rate), model=False)
        except AudioError as exc:
            raise api_error(422, "bad_audio", str(exc)) from None
        if body.active():  # the whole ranking, filtered, as for text searches
            hits = await run(backend.search_audio, wave, min(len(by_id), MAX_CANDIDATES) or max_k + 1)
            hits = filter_and_sort([h for h in hits if h.id != body.id], by_id, body, limit=max_k)
        else:
            hits = [h for h in await run(backend.search_audio, wave, body.offset + body.k + 1) if h.id != body.id]
        hits = hits[body.offset:body.offset + body.k]
        return response_model(query=body.id, k=body.k, offset=body.offset, results=hits_out(hits),
                              no_close_match=no_match(hits))


def partial_load(load_audio: Callable, path: Path, sr: int) -> Callable[[], np.ndarray]:
    """A no-argument call that decodes ``path`` to mono float32 at ``sr`` (run in the pool)."""
    return lambda: load_audio(path, sr=int(sr))
