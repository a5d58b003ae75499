"""Foley builder: determinism, resumability, caption truth, leakage-free splits (synthetic sources)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiocap.data.foley import FoleyError, build_foley
from audiocap.data.foley.captions import MAX_WORDS, MIN_WORDS, labels_in, word_count
from audiocap.data.manifest import audio_path, read_manifest
from foley_fixtures import make_sources

N = 30


def _digest(out: Path) -> dict[str, str]:
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "build.json")
    return {p.relative_to(out).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("foley")
    reg = make_sources(root / "src")
    cache = root / "cache"
    out = root / "ref"
    build_foley(out, preset="tiny", clips=N, seed=7, jobs=1, cache=cache, registry=reg, progress=False)
    return root, reg, cache, out


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tiny):
    root, reg, cache, ref = tiny
    again = root / "again"
    build_foley(again, preset="tiny", clips=N, seed=7, jobs=2, cache=cache, registry=reg, progress=False)
    assert _digest(again) == _digest(ref)
    other = root / "other"
    build_foley(other, preset="tiny", clips=N, seed=8, jobs=1, cache=cache, registry=reg, progress=False)
    assert (other / "manifest.jsonl").read_bytes() != (ref / "manifest.jsonl").read_bytes()


@pytest.mark.parametrize("jobs", [1, 2])
def test_interrupted_build_resumes_to_identical_output(tiny, jobs):
    root, reg, cache, ref = tiny
    out = root / f"interrupted{jobs}"
    with pytest.raises(KeyboardInterrupt):
        build_foley(out, preset="tiny", clips=N, seed=7, jobs=jobs, cache=cache, registry=reg,
                    progress=False, _fail_after=9)
    flacs = [p for p in out.rglob("*.flac") if not p.name.startswith(".")]
    assert 9 <= len(flacs) <= N
    if jobs == 1:
        assert len(flacs) == 9
    assert not (out / "manifest.jsonl").exists()
    for p in flacs:  # every kept clip is whole
        assert sf.info(p).frames == 10 * 32000
    build_foley(out, preset="tiny", clips=N, seed=7, jobs=jobs, cache=cache, registry=reg, progress=False)
    assert _digest(out) == _digest(ref)  # same files, same bytes, no temporary leftovers


def test_complete_build_is_a_noop_and_other_settings_are_refused(tiny):
    root, reg, cache, ref = tiny
    before = {p: p.stat().st_mtime_ns for p in ref.rglob("*") if p.is_file()}
    m = build_foley(ref, preset="tiny", clips=N, seed=7, jobs=1, cache=cache, registry=reg, progress=False)
    assert m == ref / "manifest.jsonl"
    assert before == {p: p.stat().st_mtime_ns for p in ref.rglob("*") if p.is_file()}
    with pytest.raises(FoleyError, match="different settings"):
        build_foley(ref, preset="tiny", clips=N + 1, seed=7, jobs=1, cache=cache, registry=reg, progress=False)


def test_captions_name_exactly_the_recipe_events(tiny):
    _, _, _, ref = tiny
    clips = read_manifest(ref / "manifest.jsonl")
    assert len(clips) == N
    for clip in clips:
        recipe = clip.meta["recipe"]
        expected = {e["label"] for e in recipe["events"]}
        if recipe["background"]:
            expected.add(recipe["background"]["label"])
        assert set(clip.meta["labels"]) == expected
        assert len(set(clip.captions)) == 5
        for caption in clip.captions:
            assert MIN_WORDS <= word_count(caption) <= MAX_WORDS, caption
            assert labels_in(caption) == expected, (caption, expected)
        assert len(clip.tags) == len(expected)


def test_splits_share_no_source_recording(tiny):
    _, _, _, ref = tiny
    clips = read_manifest(ref / "manifest.jsonl")
    recs = {s: set() for s in ("train", "val", "test")}
    for clip in clips:
        hits = {h["rec"] for e in clip.meta["recipe"]["events"] for h in e["hits"]}
        bg = clip.meta["recipe"]["background"]
        recs[clip.split] |= hits | ({bg["rec"]} if bg else set())
        assert clip.meta["recipe"]["split"] == clip.split
    assert recs["train"] and recs["test"]
    assert not recs["train"] & recs["test"]
    assert not recs["train"] & recs["val"]
    assert not recs["val"] & recs["test"]


def test_audio_follows_recipe_onsets_and_silence(tiny):
    """Measured: energy rises at each event's first hit; a clip without background is silent
    before its first event; the silent source file was dropped."""
    _, _, _, ref = tiny
    manifest = ref / "manifest.jsonl"
    checked = 0
    for clip in read_manifest(manifest):
        wave, sr = sf.read(audio_path(manifest, clip), dtype="float32")
        assert sr == 32000 and len(wave) == 320000
        recipe = clip.meta["recipe"]
        first = recipe["events"][0]["onset"]
        for ev in recipe["events"]:
            t = ev["onset"] + ev["hits"][0]["start"]
            seg = wave[int(t * sr): int((t + 0.1) * sr)]
            assert np.sqrt(np.mean(seg ** 2)) > 1e-3, (clip.id, ev["label"])
        if recipe["background"] is None and first > 0.3:
            assert np.abs(wave[: int((first - 0.05) * sr)]).max() < 1e-3
            checked += 1
        assert "synth:silent/quiet.wav" not in clip.meta["recordings"]
    assert checked > 0
    card = json.loads((ref / "DATACARD.json").read_text())
    assert any(d["id"] == "synth:silent/quiet.wav" for d in card["dropped_recordings"])
    assert sum(card["clips"].values()) == N
    attribution = (ref / "ATTRIBUTION.tsv").read_text().splitlines()
    assert attribution[0].startswith("recording\tpackage")
    assert all(line.split("\t")[4] == "CC0-1.0" for line in attribution[1:])


def test_cli_builds_from_a_registry_file(tmp_path):
    import yaml
    from typer.testing import CliRunner
    from audiocap.cli import app
    reg = make_sources(tmp_path / "src")
    path = tmp_path / "reg.yaml"
    path.write_text(yaml.safe_dump(reg))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["data", "build-foley", "--out", str(out), "--preset", "tiny", "--clips", "6",
                                   "--jobs", "1", "--cache", str(tmp_path / "cache"), "--registry", str(path)])
    assert res.exit_code == 0, res.output
    assert len(read_manifest(out / "manifest.jsonl")) == 6
    assert (out / "DATACARD.md").read_text().startswith("# audiocap foley dataset (tiny preset, seed 0)")


@pytest.mark.slow
def test_real_build_from_minetest_data(tmp_path):
    """A real package end to end (downloads 3.6 MB once with apt-get unless cached)."""
    from audiocap.data.foley.sources import DEFAULT_CACHE, SourceError, load_registry
    reg = load_registry()
    small = {"reserved": reg["reserved"], "presets": {"mt": ["minetest-data"]},
             "sources": {"minetest-data": reg["sources"]["minetest-data"]}}
    try:
        m = build_foley(tmp_path / "mt", preset="mt", clips=40, seed=1, jobs=2, cache=DEFAULT_CACHE,
                        registry=small, progress=False)
    except SourceError as exc:
        pytest.skip(f"minetest-data not available offline: {exc}")
    clips = read_manifest(m)
    labels = {lab for c in clips for lab in c.meta["labels"]}
    assert len(labels) >= 6 and labels <= {"footsteps_gravel", "footsteps_snow", "footsteps_grass", "footsteps_sand",
                                            "footsteps_hard", "glass_break", "wood_chop", "door_open",
                                            "door_close", "explosion", "fire_crackle", "water_stream"}
    for c in clips:
        for caption in c.captions:
            assert labels_in(caption) == set(c.meta["labels"])
    assert "CC-BY-SA-3.0" in (tmp_path / "mt" / "ATTRIBUTION.tsv").read_text()
