"""A generated corpus of bad and odd audio files through every command that reads audio (issue 20):
`audio info`, `caption`, `search --audio` and `index build` with the shipped default models. Each
file ends in an answer or one error line naming it; nothing ends in a Python traceback, and no
line of libmpg123 reaches the terminal."""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audiocap.cli import app

SR = 16000


def _tone(seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def _encode(fmt: str, wave: np.ndarray | None = None, sr: int = SR, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, _tone() if wave is None else wave, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def _flac_total(total: int) -> bytes:
    data = bytearray(_encode("FLAC"))
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO first; total_samples: low 36 bits
    data[18:26] = (int.from_bytes(data[18:26], "big") & ~(2**36 - 1) | total).to_bytes(8, "big")
    return bytes(data)


def _wav_field(offset: int, value: int, size: int) -> bytes:
    """The 1-s WAV with the little-endian header field at ``offset`` (44-byte canonical header)."""
    data = bytearray(_encode("WAV", subtype="PCM_16"))
    assert data[36:40] == b"data"
    data[offset : offset + size] = value.to_bytes(size, "little")
    return bytes(data)


def _mp3_gap() -> bytes:
    good = _encode("MP3", _tone(2.0))
    return good[: len(good) // 2] + b"\0" * 600 + good[len(good) // 2 :]


def _bad_id3() -> bytes:
    """An ID3v2.3 tag whose one frame claims more bytes than the tag holds (libmpg123: "Whoa!")."""
    body = b"TIT2" + (50).to_bytes(4, "big") + b"\x00\x00\x03" + b"x" * 20 + bytes(10)
    size = bytes((len(body) >> s) & 0x7F for s in (21, 14, 7, 0))  # "syncsafe" 7-bit bytes
    return b"ID3\x03\x00\x00" + size + body


FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3", ".aiff": "AIFF"}
SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")


def corpus(root: Path) -> dict[str, Callable[[Path], None] | bytes]:
    """name -> file contents (bytes) or a function that creates the entry at the given path."""
    rng = np.random.default_rng(20)
    files: dict[str, Callable[[Path], None] | bytes] = {}
    for suffix in (".wav", ".flac", ".mp3", ".ogg"):
        files[f"empty{suffix}"] = b""
    for suffix in SUFFIXES:
        files[f"text{suffix}"] = b"these are my notes, not a recording\n" * 20
        files[f"random{suffix}"] = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    files["photo.wav"] = b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(500)
    files["doc.mp3"] = b"%PDF-1.7\n" + bytes(500)
    files["archive.flac"] = b"PK\x03\x04" + bytes(500)
    for suffix, cuts in {".wav": (4, 12, 30, 44), ".flac": (4, 8, 42), ".ogg": (20, 60), ".mp3": (3, 10),
                         ".aiff": (12, 40)}.items():
        whole = _encode(FORMATS[suffix])
        for cut in cuts:
            files[f"head{cut}{suffix}"] = whole[:cut]
        files[f"half{suffix}"] = whole[: len(whole) // 2]
    nan = np.zeros(1600, np.float32)
    nan[100] = np.nan
    files["nan.wav"] = _encode("WAV", nan, subtype="FLOAT")
    files["inf.wav"] = _encode("WAV", np.full((1600, 2), np.inf, np.float32), subtype="FLOAT")
    files["no-frames.wav"] = _encode("WAV", np.zeros(0, np.float32))
    files["no-frames.flac"] = _encode("FLAC", np.zeros(0, np.float32))
    files["streamed.flac"] = _flac_total(0)
    files["claims-one.flac"] = _flac_total(1)
    files["claims-huge.flac"] = _flac_total(2**36 - 1)
    files["data-size-ffffffff.wav"] = _wav_field(40, 0xFFFFFFFF, 4)
    files["block-align-0.wav"] = _wav_field(32, 0, 2)
    files["rate-0.wav"] = _wav_field(24, 0, 4)
    files["channels-0.wav"] = _wav_field(22, 0, 2)
    files["one-sample.wav"] = _encode("WAV", np.array([0.5], np.float32))
    files["one-hertz.wav"] = _encode("WAV", np.zeros(4, np.float32), sr=1)
    files["silence.wav"] = _encode("WAV", np.zeros(SR, np.float32))
    files["gap.mp3"] = _mp3_gap()
    files["id3-only.mp3"] = b"ID3\x04\x00\x00\x00\x00\x01\x00" + bytes(128)
    files["bad-id3-frame.mp3"] = _bad_id3() + _encode("MP3")
    files["garbage-tail.mp3"] = _encode("MP3") + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    files["folder.wav"] = lambda p: p.mkdir()
    files["dangling.wav"] = lambda p: p.symlink_to(root / "deleted.wav")
    files["loop-a.wav"] = lambda p: p.symlink_to(root / "loop-b.flac")
    files["loop-b.flac"] = lambda p: p.symlink_to(root / "loop-a.wav")
    files["pipe.wav"] = lambda p: os.mkfifo(p)
    return files


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("bad") / "library"
    root.mkdir()
    sf.write(root / "good-tone.wav", _tone(2.0), SR)
    sf.write(root / "good-chirp.flac", np.sin(2 * np.pi * np.cumsum(np.linspace(200, 4000, 3 * SR)) / SR)
             .astype(np.float32) * 0.3, SR)
    bad = []
    for name, content in corpus(root).items():
        path = root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            content(path)
        bad.append(path)
    assert len(bad) >= 50
    return root, bad


def no_traceback(res) -> None:
    assert "Traceback" not in res.output, res.output[-2000:]
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)


def test_corpus_through_every_command(library, tmp_path, monkeypatch, capfd):
    root, bad = library
    runner = CliRunner()
    every = sorted(root.iterdir())

    res = runner.invoke(app, ["audio", "info", *map(str, every)])
    no_traceback(res)
    assert res.exit_code == 2
    printed = res.stdout.splitlines()
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    for path in every:  # every file is answered on stdout or named in one error line
        answered = sum(line.startswith(f"{path}: ") for line in printed)
        failed = sum(line.startswith(f"error: {path}: ") for line in errors)
        assert answered + failed == 1, (path, answered, failed)
    unusable = len(errors) - 1  # the last line counts them
    assert errors[-1] == f"error: {unusable} of {len(every)} file(s) unusable"
    decodable = {Path(line.split(": ")[0]) for line in printed}
    assert {root / "good-tone.wav", root / "streamed.flac", root / "claims-one.flac", root / "half.wav",
            root / "gap.mp3"} <= decodable
    refused = ("text.mp3", "pipe.wav", "folder.wav", "dangling.wav", "empty.wav", "nan.wav")
    assert not {root / n for n in refused} & decodable

    res = runner.invoke(app, ["caption", *map(str, every)])  # the shipped captioner
    no_traceback(res)
    assert res.exit_code == 1  # some captioned, some skipped
    captioned = {Path(line.split("\t")[0]) for line in res.stdout.splitlines()}
    assert captioned == decodable
    assert f"error: {unusable} of {len(every)} file(s) could not be read and were skipped:" in res.stderr

    out = tmp_path / "index"
    res = runner.invoke(app, ["index", "build", str(root), "--out", str(out)])  # the shipped CLAP
    no_traceback(res)
    assert res.exit_code == 0, res.output
    found = [p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES]
    assert f"indexed {len(decodable)} of {len(found)} file(s)" in res.stdout
    assert f"skipped {len(found) - len(decodable)} unreadable file(s)" in res.stderr

    from audiocap import search

    monkeypatch.setattr(search, "load_embedder", functools.cache(search.load_embedder))  # load CLAP once
    for path in bad:
        res = runner.invoke(app, ["search", "--audio", str(path), "--index", str(out), "-k", "1"])
        no_traceback(res)
        if path in decodable:
            assert res.exit_code == 0 and res.stdout.strip(), (path, res.output)
        else:
            assert res.exit_code == 2 and res.stderr.startswith(f"error: {path}: "), (path, res.output)
            assert len(res.stderr.splitlines()) == 1, res.stderr

    leaked = capfd.readouterr().err  # file descriptor 2 itself: what C libraries print
    assert "resync" not in leaked and "mpg123" not in leaked and "Xing" not in leaked, leaked[-2000:]
