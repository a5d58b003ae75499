"""`audiocap data import/info` and `audiocap demo` through the Typer CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from audiocap.cli import app
from audiocap.data.manifest import audio_path, read_manifest

runner = CliRunner()


def _captions(tmp_path: Path) -> Path:
    folder = tmp_path / "captions"
    folder.mkdir()
    head = "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
    (folder / "clotho_captions_development.csv").write_text(
        head + "a.wav,A dog barks.,A dog barks twice,Barking,A dog,Dogs bark\n"
        "b.wav,Rain on a roof,Rain falls,Rain,Rain,Heavy rain\n"
        "c.wav,Birds sing,Birds,Birds sing loudly,Birds,Birds\n"
        "d.wav,broken row\n")
    return folder


def test_import_clotho_writes_manifest_and_reports(tmp_path, tone):
    caps = _captions(tmp_path)
    tone("audio/development/a.wav", seconds=0.5)
    tone("audio/development/b.wav", seconds=0.25)
    out = tmp_path / "out" / "m.jsonl"
    res = runner.invoke(app, ["data", "import", "clotho", str(caps), "--audio", str(tmp_path / "audio"),
                              "--out", str(out), "--split", "development"])
    assert res.exit_code == 0, res.output
    assert "clotho: 2 clips (train 2), 10 captions from 3 rows" in res.output
    assert "missing audio: 1" in res.output and "malformed rows: 1" in res.output
    assert "clotho_captions_development.csv:5: expected 6 fields, got 2" in res.output
    clips = read_manifest(out)
    assert [c.audio for c in clips] == ["../audio/development/a.wav", "../audio/development/b.wav"]
    assert audio_path(out, clips[0]).is_file()

    res = runner.invoke(app, ["data", "info", str(out), "--json"])
    assert res.exit_code == 0, res.output
    stats = json.loads(res.stdout)
    assert stats["clips"] == 2 and stats["captions"] == 10 and stats["hours"] == round(0.75 / 3600, 4)
    # a dog barks / a dog barks twice / barking / a dog / dogs bark / rain on a roof / rain falls / ...
    assert stats["words"] == 3 + 4 + 1 + 2 + 2 + 4 + 2 + 1 + 1 + 2
    assert stats["vocabulary"] == len({"a", "dog", "barks", "twice", "barking", "dogs", "bark", "rain", "on",
                                       "roof", "falls", "heavy"})
    assert stats["splits"]["train"]["clips"] == 2
    res = runner.invoke(app, ["data", "info", str(out)])
    assert res.exit_code == 0 and "total" in res.output


def test_import_exit_codes(tmp_path):
    caps = _captions(tmp_path)
    out = tmp_path / "m.jsonl"
    res = runner.invoke(app, ["data", "import", "clotho", str(caps), "--out", str(out), "--split", "development"])
    assert res.exit_code == 1 and "no clips imported" in res.output and not out.exists()
    res = runner.invoke(app, ["data", "import", "clotho", str(caps), "--out", str(out), "--split", "development",
                              "--keep-missing"])
    assert res.exit_code == 0 and len(read_manifest(out)) == 3
    res = runner.invoke(app, ["data", "import", "clotho", str(caps), "--out", str(out), "--split", "validation"])
    assert res.exit_code == 2 and "clotho_captions_validation.csv: caption file not found" in res.output
    res = runner.invoke(app, ["data", "import", "audiocaps", str(caps), "--out", str(out), "--pattern", "{x}.wav"])
    assert res.exit_code == 2 and "bad audio pattern" in res.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [\n{"id": 1,}\n]}')
    res = runner.invoke(app, ["data", "import", "wavcaps", str(bad), "--out", str(out)])
    assert res.exit_code == 2 and f"{bad}:2: invalid JSON" in res.output
    (tmp_path / "broken.jsonl").write_text('{"id": "x"}\n')
    res = runner.invoke(app, ["data", "info", str(tmp_path / "broken.jsonl")])
    assert res.exit_code == 2 and "broken.jsonl:1: missing field(s)" in res.output


def test_import_audiocaps_and_wavcaps_cli(tmp_path, tone):
    (tmp_path / "test.csv").write_text("audiocap_id,youtube_id,start_time,caption\r\n1,abc,30,A bell\r\n"
                                       "2,abc,30,A bell rings\r\n3,xyz,0,Wind\r\n")
    tone("wav/abc_30_40.flac", seconds=0.5)
    out = tmp_path / "ac.jsonl"
    res = runner.invoke(app, ["data", "import", "audiocaps", str(tmp_path), "--audio", str(tmp_path / "wav"),
                              "--pattern", "{youtube_id}_{start_time}_{end_time}.flac", "--split", "test",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert [(c.id, c.captions) for c in read_manifest(out)] == [("audiocaps/abc_30", ["A bell", "A bell rings"])]
    (tmp_path / "w.json").write_text(json.dumps({"data": [{"id": "abc_30_40", "caption": "Bell", "audio": "wav_path"}]}))
    res = runner.invoke(app, ["data", "import", "wavcaps", str(tmp_path / "w.json"), "--audio", str(tmp_path / "wav"),
                              "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.splitlines()[0])["clips"] == 1


def test_demo_imports_shared_clotho(shared, tmp_path):
    res = runner.invoke(app, ["demo", "--captions-only", "--shared", str(shared), "--out", str(tmp_path / "demo")])
    assert res.exit_code == 0, res.output
    clips = read_manifest(tmp_path / "demo" / "clotho.jsonl")
    assert len(clips) == 5929 and {len(c.captions) for c in clips} == {5}
    assert "total   5929" in res.output
    res = runner.invoke(app, ["demo", "--shared", str(tmp_path), "--out", str(tmp_path / "demo")])
    assert res.exit_code == 2 and "no data/clotho folder" in res.output
