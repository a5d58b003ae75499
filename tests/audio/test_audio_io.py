"""audio.io: every bad-input case raises AudioError naming the file; decoding; windowing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiocap.audio import AudioError, audio_info, load_audio, split_windows


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
