"""Manifest round trip, validation errors with line numbers, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from audiocap.data.manifest import Clip, ManifestError, audio_path, read_manifest, relative_audio, write_manifest


def _clip(i: int, **kw) -> Clip:
    base = dict(id=f"c{i}", audio=f"audio/c{i}.wav", duration=1.5 + i, captions=[f"a dog barks {i}", "wind"],
                tags=["dog"], split="train", source="test", license="CC0")
    base.update(kw)
    return Clip(**base)


def test_round_trip_preserves_every_field(tmp_path):
    clips = [_clip(0), _clip(1, meta={"orig": "Ünïcode “q”.wav", "n": 3}), _clip(2, captions=[], tags=[])]
    path = write_manifest(tmp_path / "m.jsonl", clips)
    assert read_manifest(path) == clips
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and "meta" not in json.loads(lines[0]) and "Ünïcode" in lines[1]


def test_audio_paths_are_relative_to_the_manifest(tmp_path):
    m = tmp_path / "sub" / "m.jsonl"
    wav = tmp_path / "audio" / "x.wav"
    rel = relative_audio(m, wav)
    assert rel == "../audio/x.wav"
    assert audio_path(m, _clip(0, audio=rel)) == wav.resolve()
    assert audio_path(m, _clip(0, audio=str(wav.resolve()))) == wav.resolve()


GOOD = _clip(0).to_json()


def _obj(**kw) -> str:
    d = json.loads(GOOD)
    for k, v in kw.items():
        if v is _DEL:
            del d[k]
        else:
            d[k] = v
    return json.dumps(d)


_DEL = object()

BAD_LINES = [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (_obj(captions=_DEL), "missing field(s): captions"),
    (_obj(extra=1), "unknown field(s): extra"),
    (_obj(id=5), "field 'id' must be a string"),
    (_obj(id=""), "field 'id' is empty"),
    (_obj(audio=""), "field 'audio' is empty"),
    (_obj(duration=-1), "field 'duration'"),
    (_obj(duration="3"), "field 'duration'"),
    (_obj(duration=True), "field 'duration'"),
    ('{"id": "c9", "audio": "a.wav", "duration": NaN, "captions": [], "tags": [], "split": "t", '
     '"source": "", "license": ""}', "field 'duration'"),
    (_obj(captions="a dog"), "field 'captions' must be a list of strings"),
    (_obj(tags=[1]), "field 'tags' must be a list of strings"),
    (_obj(captions=["ok", "  "]), "empty caption"),
    (_obj(meta=[1]), "field 'meta' must be an object"),
]


@pytest.mark.parametrize("line,reason", BAD_LINES, ids=[r for _, r in BAD_LINES])
def test_each_validation_error_names_file_and_line(tmp_path, line, reason):
    path = tmp_path / "m.jsonl"
    # line 1 good, line 2 blank (skipped but counted), line 3 good, line 4 bad
    path.write_text("\n".join([_clip(1).to_json(), "", _clip(2).to_json(), line]) + "\n", encoding="utf-8")
    with pytest.raises(ManifestError) as exc:
        read_manifest(path)
    assert exc.value.line == 4
    assert str(exc.value).startswith(f"{path}:4: ")
    assert reason in str(exc.value)


def test_duplicate_ids_missing_file_and_bad_encoding(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(f"{_clip(1).to_json()}\n{_clip(2).to_json()}\n{_clip(1).to_json()}\n")
    with pytest.raises(ManifestError, match=r"m.jsonl:3: duplicate id 'c1' \(first on line 1\)"):
        read_manifest(path)
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "absent.jsonl")
    path.write_bytes(GOOD.encode() + b"\n" + b'{"id": "\xff"}\n')
    with pytest.raises(ManifestError, match=r"m.jsonl:2: not valid UTF-8"):
        read_manifest(path)
    with pytest.raises(ManifestError, match="duplicate id 'c1'"):
        write_manifest(tmp_path / "w.jsonl", [_clip(1), _clip(1)])
    assert not (tmp_path / "w.jsonl").exists()


def test_write_is_atomic_no_temp_files_and_target_intact_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "m.jsonl"
    write_manifest(path, [_clip(0), _clip(1)])
    before = path.read_bytes()
    write_manifest(path, [_clip(2)])  # overwrite works
    assert read_manifest(path) == [_clip(2)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]

    def broken_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_manifest(path, [_clip(5), _clip(6)])
    monkeypatch.undo()
    assert read_manifest(path) == [_clip(2)] and path.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]  # temp file removed

    class Unserializable:
        pass

    with pytest.raises(TypeError):
        write_manifest(path, [_clip(7, meta={"x": Unserializable()})])
    assert read_manifest(path) == [_clip(2)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]


def test_empty_manifest_round_trip(tmp_path):
    path = write_manifest(tmp_path / "e.jsonl", [])
    assert path.read_text() == "" and read_manifest(path) == []
