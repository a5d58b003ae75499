"""Importers on the real shared caption files (with short audio written here) and on malformed input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from audiocap.data.audiocaps import import_audiocaps
from audiocap.data.clotho import import_clotho
from audiocap.data.importing import DatasetFormatError, relativize
from audiocap.data.manifest import audio_path, read_manifest, write_manifest
from audiocap.data.wavcaps import import_wavcaps


def test_clotho_real_csvs_counts_and_audio(shared, tmp_path, tone):
    audio = tmp_path / "audio"
    # Five clips with audio, including a name repeated across splits and one with '&amp;'
    # whose file is stored unescaped; one unreadable file.
    tone("audio/development/Distorted AM Radio noise.wav", seconds=0.5)
    tone("audio/development/City Ambience w_ Car Passing_1-2.wav", seconds=0.25)
    tone("audio/validation/City Ambience w_ Car Passing_1-2.wav", seconds=0.75, sr=8000)
    tone("audio/evaluation/FREEZER_DOOR_OPEN_CLOSE.wav", seconds=1.0)
    amp = "121006_rain&amp;storm.wav"
    assert amp in (shared / "data/clotho/clotho_captions_development.csv").read_text()
    tone("audio/development/121006_rain&storm.wav", seconds=0.3)
    (audio / "validation" / "Bus(Drive_Reverse)_1-2.wav").write_bytes(b"not audio at all" * 10)

    clips, report = import_clotho(shared / "data/clotho", audio)
    assert report.clips == len(clips) == 5 and report.per_split == {"train": 3, "val": 1, "test": 1}
    assert len(report.missing) == 5929 - 6 and len(report.unreadable) == 1 and not report.malformed
    assert "Bus(Drive_Reverse)_1-2.wav" in str(report.unreadable[0])
    by_id = {c.id: c for c in clips}
    dev, val = by_id["clotho/development/City Ambience w_ Car Passing_1-2.wav"], \
        by_id["clotho/validation/City Ambience w_ Car Passing_1-2.wav"]
    assert dev.duration == pytest.approx(0.25) and val.duration == pytest.approx(0.75)
    assert dev.captions != val.captions and all(len(c.captions) == 5 for c in clips)
    assert by_id[f"clotho/development/{amp}"].audio.endswith("121006_rain&storm.wav")

    # Captions only: every CSV row becomes a clip with 5 whitespace-normalised captions.
    clips, report = import_clotho(shared / "data/clotho", audio, keep_missing=True)
    assert report.per_split == {"train": 3839, "val": 1045, "test": 1045}
    assert report.captions == 5 * 5929 and report.without_audio == 5929 - 5
    caps = [c for clip in clips for c in clip.captions]
    assert all(c == c.strip() and "  " not in c for c in caps)
    out = tmp_path / "m" / "clotho.jsonl"
    write_manifest(out, relativize(clips, out))
    back = read_manifest(out)
    assert len(back) == 5929 and audio_path(out, back[0]) == Path(clips[0].audio).resolve()


def test_audiocaps_real_csvs_grouping(shared, tmp_path, tone):
    audio = tmp_path / "audio"
    tone("audio/val/YvfY_TJq7n_U.wav", seconds=0.5)  # first val clip, Y-prefixed pattern
    clips, report = import_audiocaps(shared / "data/audiocaps", audio, keep_missing=True,
                                     pattern="{split}/Y{youtube_id}.wav")
    assert report.per_split == {"train": 49838, "val": 495, "test": 975}
    assert report.rows == 49838 + 2475 + 4875 and not report.malformed
    count = {s: {len(c.captions) for c in clips if c.split == s} for s in ("train", "val", "test")}
    assert count == {"train": {1}, "val": {5}, "test": {5}}
    with_audio = [c for c in clips if "audio_status" not in c.meta]
    assert [c.id for c in with_audio] == ["audiocaps/vfY_TJq7n_U_130"]
    assert with_audio[0].duration == pytest.approx(0.5) and len(with_audio[0].meta["audiocap_ids"]) == 5
    assert any("’" in c for clip in clips for c in clip.captions)  # non-ASCII survives CRLF files
    assert not any(c.endswith("\r") for clip in clips for c in clip.captions)
    clips, report = import_audiocaps(shared / "data/audiocaps", audio, splits=["val"],
                                     pattern="{split}/Y{youtube_id}.wav")
    assert len(clips) == 1 and len(report.missing) == 494
    with pytest.raises(ValueError, match="usable fields"):
        import_audiocaps(shared / "data/audiocaps", audio, pattern="{ytid}.wav")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_malformed_csv_rows_reported_with_line_numbers(tmp_path):
    _write(tmp_path / "val.csv", "audiocap_id,youtube_id,start_time,caption\r\n"
           "1,abc,30,A dog barks\r\n"
           '2,abc,30,"unclosed quote\r\n'  # line 3: bad quoting
           "3,abc,30\r\n"  # line 4: missing field
           "4,abc,soon,A cat\r\n"  # line 5: bad start_time
           '5,abc,30.0,"A car, then rain"\r\n')  # same clip as line 2 (30 == 30.0)
    clips, report = import_audiocaps(tmp_path, tmp_path, splits=["val"], keep_missing=True)
    assert [(p.line, p.reason.split(":")[0]) for p in report.malformed] == [
        (3, "bad quoting"), (4, "expected 4 fields, got 3"), (5, "empty youtube_id/audiocap_id/caption or bad start_time 'soon'")]
    assert all(str(tmp_path / "val.csv") in str(p) for p in report.malformed)
    assert len(clips) == 1 and clips[0].captions == ["A dog barks", "A car, then rain"]


@pytest.mark.parametrize("header,reason", [
    ("file_name,caption_1,caption_2,caption_3,caption_4", "lacks column(s) caption_5"),
    ("name,c1,c2,c3,c4,c5", "lacks column(s) file_name"),
    ('file_name,"caption_1,caption_2', "bad CSV header"),
])
def test_wrong_csv_header_raises_with_line_one(tmp_path, header, reason):
    _write(tmp_path / "clotho_captions_evaluation.csv", header + "\na.wav,1,2,3,4,5\n")
    with pytest.raises(DatasetFormatError) as exc:
        import_clotho(tmp_path, splits=["evaluation"])
    assert exc.value.line == 1 and reason in str(exc.value)
    assert str(exc.value).startswith(f"{tmp_path / 'clotho_captions_evaluation.csv'}:1: ")
    with pytest.raises(DatasetFormatError, match="caption file not found"):
        import_clotho(tmp_path, splits=["validation"])


def test_clotho_duplicate_and_empty_rows(tmp_path):
    _write(tmp_path / "clotho_captions_validation.csv", "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
           "a.wav,x,y,z,w,  v  \n\nb.wav,x,,z,w,v\na.wav,1,2,3,4,5\n")
    clips, report = import_clotho(tmp_path, splits=["validation"], keep_missing=True)
    assert [c.captions[-1] for c in clips] == ["v"]
    assert [(p.line, p.reason[:9]) for p in report.malformed] == [(4, "empty fil"), (5, "duplicate")]


def test_wavcaps_json(tmp_path, tone):
    audio = tmp_path / "audio"
    tone("audio/FreeSound/180913.flac", seconds=0.5)
    tone("audio/Y0abc.flac", seconds=0.25)
    tone("audio/clips/x.wav", seconds=0.1)
    data = {"data": [
        {"id": "180913", "caption": "  A  dog barks. ", "audio": "wav_path", "duration": 3.2, "tags": ["dog", 1]},
        {"id": "Y0abc.wav", "caption": "Rain falls", "wav_path": "wav_path", "duration": 10.0},
        {"id": "x", "caption": "Explicit path", "audio": "clips/x.wav"},
        {"id": "gone", "caption": "No audio here", "duration": 7.5},
        {"id": "bad"},
        {"id": "180913", "caption": "duplicate"},
    ]}
    js = _write(tmp_path / "json" / "FreeSound" / "fsd_final.json", json.dumps(data, indent=1))
    clips, report = import_wavcaps([js], audio)
    assert [(c.id, round(c.duration, 2)) for c in clips] == [
        ("wavcaps/fsd_final/180913", 0.5), ("wavcaps/fsd_final/Y0abc.wav", 0.25), ("wavcaps/fsd_final/x", 0.1)]
    assert clips[0].captions == ["A dog barks."] and clips[0].tags == ["dog"]
    assert report.missing == [str(audio / "gone.flac")]
    assert [str(p) for p in report.malformed] == [
        f"{js} data[4]: entry needs a string/int 'id' and a non-empty 'caption'",
        f"{js} data[5]: duplicate id '180913'"]
    clips, report = import_wavcaps([js], audio, keep_missing=True)
    assert clips[-1].duration == 7.5 and clips[-1].meta["audio_status"] == "missing"


@pytest.mark.parametrize("text,line", [('{"data": [\n {"id": "a",\n "caption": }\n]}', 3),
                                       ('[{"id": "a"}]', 1), ('{"items": []}', 1)])
def test_wavcaps_malformed_json_names_line(tmp_path, text, line):
    js = _write(tmp_path / "w.json", text)
    with pytest.raises(DatasetFormatError) as exc:
        import_wavcaps([js])
    assert exc.value.line == line and str(exc.value).startswith(f"{js}:{line}: ")
