"""Outside test set: one clip per distinct recording, lexicon tags/captions, kept out of training."""

from __future__ import annotations

import shutil

import pytest
import soundfile as sf

from audiocap.data.foley.captions import labels_in
from audiocap.data.foley.outside import build_outside, load_outside_registry, outside_captions
from audiocap.data.foley.sources import load_registry
from audiocap.data.manifest import audio_path, read_manifest
from foley_fixtures import make_sources


def test_outside_packages_are_the_reserved_ones_and_no_preset_uses_them():
    reg, out = load_registry(), load_outside_registry()
    assert set(out["sources"]) == set(reg["reserved"])
    assert len(reg["reserved"]) == 5
    for name, pkgs in reg["presets"].items():
        assert not set(pkgs) & set(out["sources"]), name


def test_captions_are_lexicon_clauses_naming_only_the_label():
    caps = outside_captions("dog_bark")
    assert caps == ["A dog barks.", "A dog is barking.", "A dog yaps."]
    assert all(labels_in(c) == {"dog_bark"} for c in caps)


def test_build_outside_on_fake_packages(tmp_path):
    reg = make_sources(tmp_path / "src")
    spec = reg["sources"]["synth"]
    # a byte-identical copy must be deduplicated; a 15-s recording must be cut to 10 s
    shutil.copy(tmp_path / "src/dog/dog0.wav", tmp_path / "src/dog/dogcopy.wav")
    long = (tmp_path / "src/wind/wind_long.wav")
    import numpy as np
    sf.write(long, 0.2 * np.random.default_rng(0).standard_normal(15 * 22050).astype("float32"), 22050)
    spec["files"] = [r for r in spec["files"] if not r["glob"].startswith("silent")]
    out_reg = {"sources": {"fakepkg": spec}}
    manifest = build_outside(tmp_path / "out", cache=tmp_path / "cache", registry=out_reg)
    rows = read_manifest(manifest)
    # fixture: 4 dog + 1 copy, 4 door, 3 glass, 4 steps, 2+1 wind, 2 water -> 20 distinct
    assert len(rows) == 20
    assert sum(r.meta["labels"] == ["dog_bark"] for r in rows) == 4
    assert {r.split for r in rows} == {"test"}
    assert {r.source for r in rows} == {"outside:fakepkg"}
    longest = max(rows, key=lambda r: r.duration)
    assert longest.duration == 10.0 and longest.meta["labels"] == ["wind"]
    for r in rows:
        info = sf.info(audio_path(manifest, r))
        assert (info.samplerate, info.subtype, info.format) == (32000, "PCM_16", "FLAC")
        assert abs(info.frames / 32000 - r.duration) < 1e-3
        assert 1 <= len(r.captions) <= 3 and len(r.tags) == 1
        assert r.license == "CC0-1.0"
    card = (tmp_path / "out" / "DATACARD.md").read_text()
    assert "| dog_bark | dog barking | 4 | 4 |" in card
    assert "| **total** | | 20 | 20 |" in card


def test_both_registries_read_the_packaged_file_or_name_an_unreadable_one(tmp_path):
    """The source and outside registries are read by one helper: packaged by default, a given
    path otherwise, an unreadable path named with what it should hold."""
    import pytest

    from audiocap.data.foley.sources import SourceError

    assert set(load_registry()) >= {"presets", "sources"} and "sources" in load_outside_registry()
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SourceError, match=f"^{missing}: cannot read source registry "):
        load_registry(missing)
    with pytest.raises(SourceError, match=f"^{missing}: cannot read the outside registry "):
        load_outside_registry(missing)
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(SourceError, match="empty.yaml: the outside registry needs a 'sources' mapping"):
        load_outside_registry(tmp_path / "empty.yaml")
