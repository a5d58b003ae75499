"""audio.io: every bad-input case raises AudioError naming the file; decoding; windowing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import write_tone
from typer.testing import CliRunner

from audiocap.audio import AudioError, audio_info, load_audio, split_windows
from audiocap.audio.io import AudioWarning
from audiocap.cli import app


def assert_names(exc: pytest.ExceptionInfo, path: Path | str, reason: str) -> None:
    assert isinstance(exc.value, AudioError)
    assert str(path) in str(exc.value)
    assert exc.value.path == str(path)
    assert reason in exc.value.reason


def _float_wav(path: Path, data: np.ndarray, sr: int = 16000) -> Path:
    sf.write(path, data, sr, subtype="FLOAT")
    return path


def bad_missing(tmp: Path) -> tuple[Path, str]:
    return tmp / "nope.wav", "file not found"


def bad_empty(tmp: Path) -> tuple[Path, str]:
    (tmp / "empty.wav").write_bytes(b"")
    return tmp / "empty.wav", "empty file"


def bad_corrupt(tmp: Path) -> tuple[Path, str]:
    (tmp / "corrupt.wav").write_bytes(b"this is not a RIFF header at all" * 20)
    return tmp / "corrupt.wav", "corrupt or unreadable"


def bad_truncated_header(tmp: Path) -> tuple[Path, str]:
    (tmp / "cut.flac").write_bytes(b"fLaC\x00\x00")
    return tmp / "cut.flac", "corrupt or unreadable"


def bad_nan(tmp: Path) -> tuple[Path, str]:
    data = np.zeros(1600, dtype=np.float32)
    data[100] = np.nan
    return _float_wav(tmp / "nan.wav", data), "NaN or inf"


def bad_inf(tmp: Path) -> tuple[Path, str]:
    data = np.zeros((1600, 2), dtype=np.float32)
    data[5, 1] = np.inf
    return _float_wav(tmp / "inf.wav", data), "NaN or inf"


def bad_zero_frames(tmp: Path) -> tuple[Path, str]:
    path = tmp / "zero.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    assert path.stat().st_size > 0  # a valid header, no samples
    return path, "zero-length"


def bad_suffix(tmp: Path) -> tuple[Path, str]:
    (tmp / "notes.txt").write_text("hello")
    return tmp / "notes.txt", "unsupported format '.txt'"


def bad_folder(tmp: Path) -> tuple[Path, str]:
    (tmp / "folder.wav").mkdir()
    return tmp / "folder.wav", "is a folder"


BAD = [bad_missing, bad_empty, bad_corrupt, bad_truncated_header, bad_nan, bad_inf,
       bad_zero_frames, bad_suffix, bad_folder]


@pytest.mark.parametrize("make", BAD, ids=[f.__name__ for f in BAD])
def test_bad_input_raises_audio_error_naming_file(tmp_path, make):
    path, reason = make(tmp_path)
    with pytest.raises(AudioError) as exc:
        load_audio(path, sr=16000)
    assert_names(exc, path, reason)
    if reason != "NaN or inf":  # the header alone cannot reveal bad samples
        with pytest.raises(AudioError) as exc:
            audio_info(path)
        assert_names(exc, path, "zero-length" if reason == "zero-length" else reason)


def test_bad_bytes_are_named_by_the_upload_name():
    with pytest.raises(AudioError) as exc:
        load_audio(b"", sr=16000, name="upload.wav")
    assert_names(exc, "upload.wav", "empty file")
    with pytest.raises(AudioError) as exc:
        load_audio(b"garbage" * 50, sr=16000, name="upload.wav")
    assert_names(exc, "upload.wav", "corrupt or unreadable")


@pytest.mark.parametrize("suffix,tol", [(".wav", 1e-4), (".flac", 1e-4), (".ogg", 0.05), (".mp3", 0.05)])
def test_decode_formats(tone, suffix, tol):
    path = tone(f"t{suffix}", seconds=1.0, sr=16000, freq=440.0)
    info = audio_info(path)
    assert info.sample_rate == 16000 and info.channels == 1
    wave = load_audio(path, sr=16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(wave.shape[0] - 16000) <= 1152  # mp3 may add encoder delay/padding frames
    # Lossy codecs keep the tone: the spectrum peaks at 440 Hz and the RMS is ~0.3/sqrt(2).
    spec = np.abs(np.fft.rfft(wave[:16000], n=16000))
    assert abs(int(spec.argmax()) - 440) <= 2
    rms = float(np.sqrt(np.mean(wave**2)))
    assert rms == pytest.approx(0.3 / np.sqrt(2), abs=tol * 3 + 1e-3)
    if suffix in (".wav", ".flac"):
        t = np.arange(16000) / 16000
        np.testing.assert_allclose(wave, 0.3 * np.sin(2 * np.pi * 440 * t), atol=tol)


def test_stereo_is_averaged_to_mono(tmp_path):
    left = np.full(800, 0.5, dtype=np.float32)
    right = np.full(800, -0.1, dtype=np.float32)
    path = tmp_path / "st.wav"
    sf.write(path, np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    wave = load_audio(path, sr=8000)
    assert wave.shape == (800,)
    np.testing.assert_allclose(wave, 0.2, atol=1e-7)


@pytest.mark.parametrize("src_sr,dst_sr", [(44100, 16000), (16000, 32000), (22050, 22050)])
def test_resampling_length_and_content(tone, src_sr, dst_sr):
    path = tone("r.wav", seconds=2.0, sr=src_sr, freq=300.0)
    wave = load_audio(path, sr=dst_sr)
    assert wave.shape[0] == 2 * dst_sr
    spec = np.abs(np.fft.rfft(wave, n=2 * dst_sr))
    assert abs(int(spec.argmax()) / 2 - 300) <= 1


def test_max_duration_rejects_longer_files(tone):
    path = tone("long.wav", seconds=3.0)
    assert load_audio(path, sr=16000, max_duration=3.0).shape == (48000,)
    with pytest.raises(AudioError) as exc:
        load_audio(path, sr=16000, max_duration=2.5)
    assert_names(exc, path, "too long: 3.00 s > max_duration 2.50 s")


def _covered(starts_s, sr, win_n, n):
    mask = np.zeros(n, dtype=bool)
    for s in np.round(starts_s * sr).astype(int):
        mask[s : s + win_n] = True
    return mask.all()


@pytest.mark.parametrize("last", ["pad", "keep", "overlap"])
@pytest.mark.parametrize("n,window,hop", [(1000, 0.25, None), (1050, 0.25, None), (1050, 0.25, 0.1),
                                          (90, 0.25, None), (1000, 0.3, 0.3), (1001, 0.3, 0.15)])
def test_split_windows_keeps_every_sample(last, n, window, hop):
    sr = 1000
    wave = np.arange(1, n + 1, dtype=np.float32)  # nonzero everywhere, so padding is visible
    windows, starts = split_windows(wave, sr=sr, window=window, hop=hop, last=last)
    win_n = int(round(window * sr))
    assert windows.shape[0] == starts.shape[0]
    if n <= win_n and last == "keep":
        assert windows.shape == (1, n)
    else:
        assert windows.shape[1] == win_n
    assert _covered(starts, sr, win_n, n)
    for w, s in zip(windows, np.round(starts * sr).astype(int)):  # each window is the wave from its start
        seg = wave[s : s + win_n]
        np.testing.assert_array_equal(w[: seg.shape[0]], seg)
        assert not w[seg.shape[0]:].any()  # only zero padding after the end
    if last == "overlap" and n > win_n:
        assert starts[-1] * sr + win_n == n and windows[-1, -1] == n  # ends exactly at the end
    got = set(np.concatenate([w[w > 0] for w in windows]).tolist())
    assert got == set(wave.tolist())


def test_split_windows_counts_and_bad_arguments():
    wave = np.ones(1050, dtype=np.float32)
    w, s = split_windows(wave, sr=1000, window=0.25, last="pad")
    assert w.shape == (5, 250) and s.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert w[-1, :50].all() and not w[-1, 50:].any()
    w, s = split_windows(wave, sr=1000, window=0.25, last="overlap")
    assert w.shape == (5, 250) and s[-1] == pytest.approx(0.8) and w.all()
    with pytest.raises(ValueError, match="hop"):
        split_windows(wave, sr=1000, window=0.25, hop=0.5)  # would skip samples
    with pytest.raises(ValueError, match="last"):
        split_windows(wave, sr=1000, window=0.25, last="drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window"):
        split_windows(wave, sr=1000, window=0.0)


# Issue 20 E / item 5: decoding trusts the frames, not the header; a file that decodes differently
# from its header is used and named in one AudioWarning; what is not a file or not audio says so.

def _flac_with_total(tmp: Path, name: str, total: int | None, seconds: float = 1.0) -> tuple[Path, np.ndarray]:
    """A 16 kHz mono FLAC tone whose STREAMINFO total_samples is rewritten to ``total``."""
    sr = 16000
    wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * sr)) / sr)).astype(np.float32)
    path = tmp / name
    sf.write(path, wave, sr, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    # "fLaC", then STREAMINFO (block type 0, 34 bytes) as the first metadata block: 2+2 block
    # sizes, 3+3 frame sizes, then 64 bits = 20 rate | 3 channels-1 | 5 bits-1 | 36 total_samples.
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0 and int.from_bytes(data[5:8], "big") == 34
    packed = int.from_bytes(data[18:26], "big")
    assert (packed >> 44, (packed >> 41 & 7) + 1, (packed >> 36 & 31) + 1) == (sr, 1, 16)
    assert packed & (2**36 - 1) == len(wave)
    if total is not None:
        data[18:26] = ((packed & ~(2**36 - 1)) | total).to_bytes(8, "big")
        path.write_bytes(bytes(data))
    ref, _ = sf.read(tmp / name if total is None else io.BytesIO(sf_bytes(wave, sr)), dtype="float32")
    return path, ref


def sf_bytes(wave: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, sr, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def test_streamed_flac_without_a_sample_count_decodes_fully(tmp_path, recwarn):
    path, ref = _flac_with_total(tmp_path, "stream.flac", 0, seconds=5.0)  # legal: "unknown"
    wave = load_audio(path, sr=16000)
    assert wave.shape == (80000,)
    np.testing.assert_array_equal(wave, ref)
    assert audio_info(path).frames == 80000 and audio_info(path).duration == 5.0
    upload = load_audio(path.read_bytes(), sr=16000, name="up.flac")  # bytes (server uploads) too
    np.testing.assert_array_equal(upload, ref)
    assert not [w for w in recwarn if issubclass(w.category, AudioWarning)]  # nothing is wrong


def test_flac_header_claiming_one_sample_decodes_every_frame_and_warns(tmp_path):
    path, ref = _flac_with_total(tmp_path, "one.flac", 1)
    with pytest.warns(AudioWarning) as rec:
        wave = load_audio(path, sr=16000)
    np.testing.assert_array_equal(wave, ref)
    assert len(rec) == 1
    assert str(rec[0].message) == (f"{path}: holds 1.000 s (16,000 frames) although its header claims "
                                   "0.000 s (1 frame); decoded it all")


def _truncated(tmp: Path, suffix: str) -> Path:
    path = write_tone(tmp / f"full{suffix}", seconds=2.0)
    cut = tmp / f"cut{suffix}"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return cut


@pytest.mark.parametrize("suffix,decoded", [(".wav", "0.999 s (15,989 frames)"),  # (32,022 - 44) / 2 bytes
                                            (".mp3", None), (".flac", None)])
def test_truncated_file_decodes_what_is_there_with_one_warning(tmp_path, suffix, decoded):
    cut = _truncated(tmp_path, suffix)
    with pytest.warns(AudioWarning) as rec:
        wave = load_audio(cut, sr=16000)
    assert len(rec) == 1
    msg = str(rec[0].message)
    assert msg.startswith(f"{cut}: truncated: decoded ")
    assert "of the 2.000 s (32,000 frames) its header claims" in msg
    frames = int(msg.split(" (", 1)[1].split(" frames")[0].replace(",", ""))
    assert wave.shape == (frames,) and 0 < frames < 32000
    if decoded:
        assert f"decoded {decoded} of" in msg
    full = load_audio(tmp_path / f"full{suffix}", sr=16000)
    tol = 1e-4 if suffix != ".mp3" else 0.05
    np.testing.assert_allclose(wave[: frames - 1152], full[: frames - 1152], atol=tol)  # the same audio


def test_whole_files_do_not_warn(tmp_path, recwarn):
    for suffix in (".wav", ".flac", ".ogg", ".mp3", ".aiff"):
        assert load_audio(write_tone(tmp_path / f"t{suffix}", seconds=1.5), sr=16000).shape[0] >= 24000
    assert not [w for w in recwarn if issubclass(w.category, AudioWarning)]


def test_damaged_mp3_keeps_libmpg123_off_the_terminal(tmp_path, capfd):
    good = write_tone(tmp_path / "good.mp3", seconds=2.0).read_bytes()
    path = tmp_path / "gap.mp3"
    path.write_bytes(good[: len(good) // 2] + b"\0" * 600 + good[len(good) // 2 :])
    with pytest.warns(AudioWarning) as rec:
        wave = load_audio(path, sr=16000)
    audio_info(path)
    assert wave.shape[0] > 30000
    err = capfd.readouterr().err
    assert "resync" not in err and "Illegal Audio-MPEG-Header" not in err and "Xing" not in err, err
    assert len(rec) == 1
    assert str(rec[0].message).startswith(f"{path}: the MP3 decoder reported 'Illegal Audio-MPEG-Header")


def test_mp3_with_a_damaged_id3_tag_warns_about_the_tag(tmp_path, capfd):
    body = b"TIT2" + (50).to_bytes(4, "big") + b"\x00\x00\x03" + b"x" * 20 + bytes(10)  # frame > tag
    tag = b"ID3\x03\x00\x00" + bytes((len(body) >> s) & 0x7F for s in (21, 14, 7, 0)) + body
    path = tmp_path / "tagged.mp3"
    path.write_bytes(tag + write_tone(tmp_path / "t.mp3", seconds=1.0).read_bytes())
    with pytest.warns(AudioWarning) as rec:
        assert load_audio(path, sr=16000).shape == (16000,)
    assert "ID3v2" not in capfd.readouterr().err
    assert str(rec[0].message) == (f"{path}: the MP3 decoder reported 'Whoa! ID3v2 frame claims to be larger "
                                   "than the whole rest of the tag.'; its ID3 tag is damaged")


def test_mp3_decodes_when_no_temporary_file_can_be_made(tmp_path, monkeypatch):
    """The libmpg123 trap needs a temporary file; a full disk must not stop decoding."""
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("audiocap.audio.io.tempfile.TemporaryFile", full)
    assert load_audio(write_tone(tmp_path / "t.mp3", seconds=1.0), sr=16000).shape == (16000,)


def test_stderr_of_other_threads_survives_the_mp3_redirect(tmp_path, capfd):
    """fd 2 is shared by every thread: lines written while an MP3 decodes still reach stderr."""
    good = write_tone(tmp_path / "good.mp3", seconds=2.0).read_bytes()
    path = tmp_path / "gap.mp3"
    path.write_bytes(good[: len(good) // 2] + b"\0" * 600 + good[len(good) // 2 :])
    stop = threading.Event()
    written = [0]

    def chatter() -> None:
        while not stop.is_set():
            os.write(2, f"other thread line {written[0]}\n".encode())
            written[0] += 1
            time.sleep(0.0005)

    writer = threading.Thread(target=chatter)
    writer.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AudioWarning)
            with ThreadPoolExecutor(4) as pool:
                waves = []
                for _ in range(20):  # decode until the other thread wrote lines during decoding (a loaded CPU starves it)
                    waves += list(pool.map(lambda _: load_audio(path, sr=16000), range(16)))
                    if written[0] > 10:
                        break
    finally:
        stop.set()
        writer.join()
    assert all(np.array_equal(w, waves[0]) for w in waves)
    lines = capfd.readouterr().err.splitlines()
    numbers = [int(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("other thread line ")]
    assert sorted(numbers) == list(range(len(numbers))) and len(numbers) > 10  # none lost
    assert not [line for line in lines if not line.startswith("other thread line ")], lines[:5]


def test_text_named_mp3_is_reported_as_not_audio(tmp_path):
    path = tmp_path / "notes.mp3"
    path.write_text("these are my notes, not a recording\n" * 20)
    for call in (lambda: load_audio(path, sr=16000), lambda: audio_info(path)):
        with pytest.raises(AudioError) as exc:
            call()
        assert_names(exc, path, "not audio (unrecognised format)")
        assert "pipe" not in str(exc.value) and "does not exist" not in str(exc.value)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "dangling-link", "looping-link"])
def test_not_a_regular_file_says_so(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "pipe.wav"
        os.mkfifo(path)  # opening it would block forever: it must be refused from its type
        reason = "is not a regular file"
    elif kind == "dev-zero":
        path, reason = Path("/dev/zero"), "is not a regular file"
    elif kind == "dangling-link":
        path = tmp_path / "gone.wav"
        path.symlink_to(tmp_path / "deleted.wav")
        reason = f"is a broken symbolic link (to {tmp_path / 'deleted.wav'}"
    else:
        path = tmp_path / "loop.wav"
        path.symlink_to(tmp_path / "loop2.wav")
        (tmp_path / "loop2.wav").symlink_to(path)
        reason = "is a symbolic link loop"
    for call in (lambda: load_audio(path, sr=16000), lambda: audio_info(path)):
        with pytest.raises(AudioError) as exc:
            call()
        assert_names(exc, path, reason)
        assert "empty file" not in str(exc.value)


def test_cli_audio_info_prints_one_warning_line_and_the_decoded_length(tmp_path):
    cut = _truncated(tmp_path, ".wav")
    flac, _ = _flac_with_total(tmp_path, "one.flac", 1)
    stream, _ = _flac_with_total(tmp_path, "stream.flac", 0)
    res = CliRunner().invoke(app, ["audio", "info", "--json", str(cut), str(flac), str(stream)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(r["frames"], r["duration"]) for r in rows] == [(15989, 0.999), (16000, 1.0), (16000, 1.0)]
    warned = [line for line in res.stderr.splitlines() if line.startswith("warning: ")]
    assert warned == [
        f"warning: {cut}: truncated: decoded 0.999 s (15,989 frames) of the 2.000 s (32,000 frames) its "
        "header claims",
        f"warning: {flac}: holds 1.000 s (16,000 frames) although its header claims 0.000 s (1 frame); "
        "decoded it all",
    ]
    assert "Traceback" not in res.output and "AudioWarning" not in res.output


def test_cli_keeps_libmpg123_lines_off_the_terminal(tmp_path):
    """A real process: libmpg123 writes to file descriptor 2, which CliRunner does not capture."""
    good = write_tone(tmp_path / "good.mp3", seconds=2.0).read_bytes()
    path = tmp_path / "gap.mp3"
    path.write_bytes(good[: len(good) // 2] + b"\0" * 600 + good[len(good) // 2 :])
    exe = Path(sys.executable).parent / "audiocap"
    res = subprocess.run([str(exe), "audio", "info", str(path)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr
    assert res.stderr.splitlines() == [
        f"warning: {path}: the MP3 decoder reported 'Illegal Audio-MPEG-Header 0x00000000 at offset "
        f"{len(good) // 2}.' and 4 more; the audio may be damaged"], res.stderr
