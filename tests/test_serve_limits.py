"""Upload resource limits (issue 20 D): channels and sample rate refused from the header before
any sample is decoded, a decoded-sample budget, and slow uploads cut after a stated time."""

from __future__ import annotations

import io
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))
from serve_standin import StandInBackend, live_server, tone_bytes  # noqa: E402

from audiocap.serve.app import create_app  # noqa: E402
from audiocap.serve.uploads import DecodeLimits  # noqa: E402


def silence(seconds: float, sr: int, channels: int, fmt: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros((int(seconds * sr), channels), np.float32), sr, format=fmt)
    return buf.getvalue()


@pytest.fixture
def client(tmp_path):
    app = create_app(StandInBackend(tmp_path), max_duration=30.0)
    with TestClient(app, base_url="http://localhost") as c:
        yield c


def post(client, data: bytes, name: str):
    return client.post("/v1/caption", files={"file": (name, data, "application/octet-stream")})


def test_issue_flac_8_channels_655khz_is_refused_from_the_header(client, monkeypatch):
    """The issue's 8-channel, 655,350 Hz FLAC of silence (about 1 s here; 29.5 s there)."""
    data = silence(1.0, 655_350, 8, "FLAC")

    def no_decoding(*a, **k):
        raise AssertionError("samples decoded before the header was checked")

    monkeypatch.setattr("audiocap.audio.io._blocks", no_decoding)  # every decode reads through it
    t0 = time.perf_counter()
    r = post(client, data, "hostile.flac")
    assert r.status_code == 413 and r.json()["error"] == "sample_rate_too_high"
    assert "655350 Hz" in r.json()["detail"] and "192000" in r.json()["detail"]
    assert time.perf_counter() - t0 < 2.0


def test_too_many_channels(client):
    r = post(client, silence(0.1, 16000, 9, "WAV"), "nine.wav")
    assert r.status_code == 413 and r.json()["error"] == "too_many_channels"
    assert "9 channels" in r.json()["detail"]
    assert post(client, silence(0.1, 16000, 8, "WAV"), "eight.wav").status_code == 200


def test_sample_rate_too_low(client):
    r = post(client, silence(1.0, 8, 1, "WAV"), "eight-hz.wav")
    assert r.status_code == 422 and r.json()["error"] == "sample_rate_too_low"


def test_decoded_sample_budget(tmp_path):
    app = create_app(StandInBackend(tmp_path), decode_limits=DecodeLimits(max_samples=20_000))
    with TestClient(app, base_url="http://localhost") as c:
        assert c.get("/v1/info").json()["max_decoded_samples"] == 20_000
        ok = post(c, tone_bytes(440.0, seconds=0.5), "half.wav")  # 8,000 samples
        assert ok.status_code == 200
        r = post(c, silence(0.5, 16000, 4, "WAV"), "quad.wav")  # 32,000 samples
        assert r.status_code == 413 and "decoded samples" in r.json()["detail"]


def test_default_budget_follows_max_duration(tmp_path):
    assert DecodeLimits().sample_budget(300.0) == 300 * 48_000 * 2
    assert DecodeLimits().sample_budget(None) == 30 * 48_000 * 2


def test_stereo_is_mixed_down_block_by_block(client):
    t = np.arange(16000 * 3) / 16000  # 3 s: more than one decode block
    left = 0.3 * np.sin(2 * np.pi * 440 * t)
    buf = io.BytesIO()
    sf.write(buf, np.stack([left, -left + 0.2], axis=1).astype(np.float32), 16000, format="WAV")
    r = post(client, buf.getvalue(), "stereo.wav")
    assert r.status_code == 200 and r.json()["duration"] == 3.0


def _flac_total(data: bytes, total: int) -> bytes:
    """The FLAC with STREAMINFO total_samples (the low 36 bits of bytes 18-25) set to ``total``."""
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO comes first
    packed = int.from_bytes(data[18:26], "big") & ~(2**36 - 1) | total
    return data[:18] + packed.to_bytes(8, "big") + data[26:]


def test_flac_length_comes_from_its_frames_not_its_header(client):
    """Issue 20 E: a streamed FLAC (total_samples 0) failed to decode ('psf_fseek() failed'), one
    claiming 1 sample was decoded as 1 sample; both decode fully, and the budget still holds."""
    wave, sr = sf.read(io.BytesIO(tone_bytes(440.0, seconds=2.0)), dtype="float32")  # WAV -> FLAC
    buf = io.BytesIO()
    sf.write(buf, wave, sr, format="FLAC")
    for total in (0, 1):
        r = post(client, _flac_total(buf.getvalue(), total), f"claims-{total}.flac")
        assert r.status_code == 200 and r.json()["duration"] == 2.0, r.text
    long = silence(31.0, 16000, 1, "FLAC")
    for total in (0, 1):
        r = post(client, _flac_total(long, total), "long.flac")
        assert r.status_code == 413 and "decodes to longer than 30.00 s" in r.json()["detail"]


def test_slow_upload_is_cut(tmp_path):
    """A client trickling its body is answered 408 after upload_timeout and disconnected,
    and the server keeps serving others meanwhile."""
    import httpx

    app = create_app(StandInBackend(tmp_path), upload_timeout=1.0)
    with live_server(app) as url:
        host, port = url.removeprefix("http://").split(":")
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(b"POST /v1/caption HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n"
                     b"Content-Type: multipart/form-data; boundary=xyz\r\n\r\n--xyz\r\n")
        t0, answer = time.monotonic(), b""
        sock.settimeout(0.2)
        while time.monotonic() - t0 < 8:
            try:
                sock.sendall(b"x")  # one byte at a time
            except OSError:
                break
            try:
                got = sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            if not got:
                break
            answer += got
        elapsed = time.monotonic() - t0
        assert b" 408 " in answer.split(b"\r\n", 1)[0], answer[:200]
        assert b"upload_timeout" in answer and b"1 s" in answer
        assert 0.9 < elapsed < 5.0, elapsed
        # the connection is closed by the server after the answer
        sock.settimeout(2)
        try:
            assert sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            pass
        sock.close()
        assert httpx.get(f"{url}/healthz").status_code == 200
