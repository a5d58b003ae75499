"""Composer: seeded recipes for 10-second clips and their rendering to waveforms.

A recipe is plain JSON (saved in each manifest line's ``meta``): 1-3 foreground events of
distinct labels over an optional background bed. Each event is a list of *hits* (one source
recording placed at one time): a short "shot" may repeat 1-3 times, a "long" sound plays once
(cropped to at most 5 s), a "sequence" (footsteps, key presses) strings together several short
recordings of its class. Every event gets a distance (near: 0 to -3 dB; far: -9 to -14 dB
plus a 2.5-5 kHz low-pass standing in for air absorption) and each hit may get a random
low-pass so that a source's native bandwidth does not identify it. The recipe is a pure
function of (seed, clip index, event pools), so rebuilding gives the same clips.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audiocap.data.foley.library import FRAME, SR, Event, frame_rms

CLIP_SECONDS = 10.0
MAX_EVENT_SPAN = 5.0


def _lowpass(wave: np.ndarray, cutoff: float | None) -> np.ndarray:
    """Zero-phase FFT low-pass with a half-octave raised-cosine roll-off above ``cutoff`` Hz."""
    if cutoff is None or cutoff >= SR / 2 or len(wave) < 16:
        return wave
    spec = np.fft.rfft(wave.astype(np.float64))
    f = np.fft.rfftfreq(len(wave), 1 / SR)
    hi = cutoff * 2 ** 0.5
    gain = np.clip((hi - f) / (hi - cutoff), 0.0, 1.0)
    gain = 0.5 - 0.5 * np.cos(np.pi * gain)
    return np.fft.irfft(spec * gain, n=len(wave)).astype(np.float32)


def _hit(rng: np.random.Generator, ev: Event, start: float, max_dur: float) -> dict[str, Any]:
    """Place one recording at ``start``; crop long recordings at a random offset."""
    dur = ev.duration
    offset = 0.0
    if dur > max_dur:
        offset = float(rng.uniform(0, dur - max_dur))
        dur = max_dur
    cutoff = float(np.exp(rng.uniform(np.log(5000), np.log(14000)))) if rng.random() < 0.5 else None
    return {"rec": ev.rec.id, "start": round(start, 3), "offset": round(offset, 3),
            "dur": round(dur, 3), "lowpass_hz": None if cutoff is None else round(cutoff)}


def _event(rng: np.random.Generator, label: str, kind: str, pool: list[Event]) -> dict[str, Any]:
    """Draw one foreground event (hits relative to its own onset at 0)."""
    hits: list[dict[str, Any]] = []
    if kind == "sequence":
        fast = any("typing" in e.rec.label for e in pool)
        n = int(rng.integers(12, 28)) if fast else int(rng.integers(4, 9))
        t = 0.0
        for _ in range(n):
            ev = pool[int(rng.integers(len(pool)))]
            h = _hit(rng, ev, t, 1.0)
            if t + h["dur"] > MAX_EVENT_SPAN:
                break
            hits.append(h)
            t += float(rng.uniform(0.08, 0.22) if fast else rng.uniform(0.42, 0.68))
        repeats = 1
    else:
        ev = pool[int(rng.integers(len(pool)))]
        if kind == "long":
            repeats = 1
            hits.append(_hit(rng, ev, 0.0, float(rng.uniform(2.0, MAX_EVENT_SPAN))))
        else:
            repeats = int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
            first = _hit(rng, ev, 0.0, 3.0)
            t = 0.0
            for r in range(repeats):
                if r and t + first["dur"] > MAX_EVENT_SPAN + 1.0:
                    repeats = r
                    break
                hits.append({**first, "start": round(t, 3)})
                t += first["dur"] + float(rng.uniform(0.15, 0.8))
    span = max(h["start"] + h["dur"] for h in hits)
    far = bool(rng.random() < 0.3)
    return {"label": label, "kind": kind, "repeats": repeats, "hits": hits, "span": round(span, 3),
            "distance": "far" if far else "near",
            "gain_db": round(float(rng.uniform(-14, -9) if far else rng.uniform(-3, 0)), 2),
            "far_lowpass_hz": round(float(rng.uniform(2500, 5000))) if far else None}


def _overlaps(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["onset"] < b["onset"] + b["span"] and b["onset"] < a["onset"] + a["span"]


def make_recipe(seed: int, index: int, split: str, pools: dict[str, list[Event]],
                bg_pools: dict[str, list[Event]], kinds: dict[str, str], max_events: int = 3,
                *, single_share: float = 0.0) -> dict[str, Any]:
    """The seeded recipe of clip ``index``: labels, recordings, onsets, gains, filters.

    ``pools`` maps each foreground label to the split's recordings (sorted by id), so a clip
    of one split never hears a recording of another. A ``single_share`` of the clips hold one
    event and no background (so that a one-tag query such as "dog barking" has exact positives);
    the recipe records this as ``single: true``.
    """
    rng = np.random.default_rng([seed, index, 1])
    single = bool(single_share > 0 and np.random.default_rng([seed, index, 3]).random() < single_share)
    labels = sorted(pools)
    n = min(int(rng.choice([1, 2, 3], p=[0.35, 0.4, 0.25])), len(labels), max_events)
    if single:
        n = 1
    chosen = [labels[i] for i in rng.choice(len(labels), size=n, replace=False)]
    events = []
    for label in chosen:
        ev = _event(rng, label, kinds[label], pools[label])
        latest = max(0.2, CLIP_SECONDS - 0.2 - ev["span"])
        ev["onset"] = round(float(rng.uniform(0.2, latest)), 3)
        events.append(ev)
    events.sort(key=lambda e: (e["onset"], e["label"]))
    for ev in events:  # a far (quiet) event overlapping another would be masked: bring it near
        others = [o for o in events if o is not ev]
        if ev["distance"] == "far" and any(_overlaps(ev, o) for o in others):
            ev.update(distance="near", gain_db=round(float(rng.uniform(-3, 0)), 2), far_lowpass_hz=None)
    background = None
    if bg_pools and rng.random() < 0.6 and not single:
        bl = sorted(bg_pools)
        label = bl[int(rng.integers(len(bl)))]
        ev = bg_pools[label][int(rng.integers(len(bg_pools[label])))]
        quietest = min(e["gain_db"] for e in events)
        background = {"label": label, "rec": ev.rec.id,
                      "offset": round(float(rng.uniform(0, max(0.0, ev.duration - 1.0))), 3),
                      "gain_db": round(min(float(rng.uniform(-22, -12)), quietest - 6.0), 2),
                      "lowpass_hz": round(float(np.exp(rng.uniform(np.log(5000), np.log(14000)))))
                      if rng.random() < 0.5 else None}
    recipe = {"seed": seed, "index": index, "split": split, "sr": SR, "seconds": CLIP_SECONDS,
              "events": events, "background": background}
    if single:
        recipe["single"] = True
    return recipe


def _bed(wave: np.ndarray, offset: float, n: int) -> np.ndarray:
    """Loop a background recording from ``offset`` to ``n`` samples with 0.25 s crossfades."""
    # loop only the sustained part: many beds fade in and out inside the file itself
    rms = frame_rms(wave)
    steady = np.flatnonzero(rms >= np.median(rms) * 10 ** (-10 / 20))
    hop = int(FRAME * SR)
    if len(steady) and (steady[-1] - steady[0] + 1) * hop >= SR:
        wave = wave[steady[0] * hop: (steady[-1] + 1) * hop]
    start = int(offset * SR) % max(1, len(wave))
    seg = np.concatenate([wave[start:], wave[:start]]) if start else wave
    xf = min(int(0.25 * SR), len(seg) // 4)
    out = np.zeros(n, dtype=np.float32)
    pos, step = 0, max(1, len(seg) - xf)
    ramp = np.linspace(0, 1, xf, dtype=np.float32) if xf else np.zeros(0, np.float32)
    while pos < n:
        piece = seg.copy()
        if pos > 0 and xf:
            piece[:xf] *= ramp
        if xf:
            piece[-xf:] *= ramp[::-1]
        m = min(len(piece), n - pos)
        out[pos:pos + m] += piece[:m]
        pos += step
    return out


def render(recipe: dict[str, Any], events_by_id: dict[str, Event]) -> np.ndarray:
    """Mix a recipe into a (N,) float32 waveform at :data:`SR`, peak-limited to 0.99."""
    n = int(round(recipe["seconds"] * SR))
    mix = np.zeros(n, dtype=np.float32)
    bg = recipe["background"]
    if bg:
        bed = _bed(events_by_id[bg["rec"]].wave, bg["offset"], n)
        mix += _lowpass(bed, bg["lowpass_hz"]) * np.float32(10 ** (bg["gain_db"] / 20))
    for ev in recipe["events"]:
        gain = np.float32(10 ** (ev["gain_db"] / 20))
        for h in ev["hits"]:
            src = events_by_id[h["rec"]].wave
            a = int(round(h["offset"] * SR))
            piece = src[a: a + int(round(h["dur"] * SR))].astype(np.float32)
            fade = min(int(0.01 * SR), len(piece) // 4)
            if fade and (a > 0 or a + len(piece) < len(src)):
                r = np.linspace(0, 1, fade, dtype=np.float32)
                piece = piece.copy()
                piece[:fade] *= r
                piece[-fade:] *= r[::-1]
            piece = _lowpass(piece, h["lowpass_hz"])
            piece = _lowpass(piece, ev["far_lowpass_hz"])
            s = int(round((ev["onset"] + h["start"]) * SR))
            m = min(len(piece), n - s)
            if m > 0:
                mix[s:s + m] += piece[:m] * gain
    peak = float(np.abs(mix).max())
    if peak > 0.99:
        mix *= np.float32(0.99 / peak)
    return mix
