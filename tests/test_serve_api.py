"""HTTP tests of the service with the deterministic stand-in backend (every endpoint and limit)."""

from __future__ import annotations

import asyncio
import io
import re

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from serve_standin import LIBRARY, SR, StandInBackend, tone_bytes

from audiocap.serve.app import create_app
from audiocap.serve.uploads import ApiError, sniff_audio


@pytest.fixture
def backend(tmp_path):
    return StandInBackend(tmp_path)


@pytest.fixture
def client(backend):
    with TestClient(base_url="http://localhost", app=create_app(backend, max_upload_bytes=600_000, max_duration=5.0)) as c:
        yield c


def upload(client, route, data, name="clip.wav", ctype="audio/wav", **params):
    return client.post(route, params=params, files={"file": (name, data, ctype)})


def assert_error(resp, status, code, *words):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == code, body
    for w in words:
        assert w.lower() in body["detail"].lower(), body


# ---------------------------------------------------------------- meta, page, docs

def test_healthz_info_and_docs(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/v1/info").json()
    assert info["items"] == len(LIBRARY) and info["captioner"] is True
    assert info["max_upload_bytes"] == 600_000 and info["max_duration"] == 5.0
    spec = client.get("/openapi.json").json()
    for route in ("/v1/search", "/v1/search/audio", "/v1/caption", "/v1/audio/{item_id}",
                  "/healthz"):
        assert route in spec["paths"], route
    assert "multipart/form-data" in spec["paths"]["/v1/caption"]["post"]["requestBody"]["content"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    # every script/style the docs page loads is served locally (works offline, no CDN)
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    for asset in assets:
        got = client.get(asset)
        assert got.status_code == 200 and len(got.content) > 500, asset


def test_page_is_self_contained(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset, ctype in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        resp = client.get(asset)
        assert resp.status_code == 200 and ctype in resp.headers["content-type"]
        assert not re.search(r"https?://", resp.text), f"{asset} references an external URL"
    assert not re.search(r"(src|href)=\"https?://", page.text)
    assert 'type="file"' in page.text and 'id="search-text"' in page.text


# ---------------------------------------------------------------- text search

def test_search_ranks_by_text(client):
    resp = client.post("/v1/search", json={"text": "rain on a metal roof", "k": 3})
    assert resp.status_code == 200
    body = resp.json()
    assert body["k"] == 3 and len(body["results"]) == 3
    top = body["results"][0]
    assert top["id"] == "rain/roof-01" and top["caption"] == "rain falling on a metal roof"
    # bag-of-words cosine: 5 shared words, |q| = sqrt(5), |c| = sqrt(6)
    assert top["score"] == pytest.approx(5 / np.sqrt(30), abs=1e-6)
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert top["audio_url"] == "/v1/audio/rain%2Froof-01"


def test_search_marks_unplayable_items(client):
    body = client.post("/v1/search", json={"text": "knocks on a wooden door", "k": 1}).json()
    assert body["results"][0]["id"] == "door-knock" and body["results"][0]["audio_url"] is None


@pytest.mark.parametrize("payload, words", [
    ({"text": "", "k": 3}, ["text"]),
    ({"k": 3}, ["text", "required"]),
    ({"text": "rain", "k": 0}, ["k", "greater"]),
    ({"text": "rain", "k": 101}, ["k", "less"]),
    ({"text": "rain", "k": "many"}, ["k"]),
    ({"text": "x" * 1001, "k": 3}, ["text", "1000"]),
])
def test_search_rejects_bad_json(client, payload, words):
    assert_error(client.post("/v1/search", json=payload), 422, "invalid_request", *words)


def test_search_rejects_blank_and_non_json(client):
    assert_error(client.post("/v1/search", json={"text": "   ", "k": 2}), 422, "empty_query")
    resp = client.post("/v1/search", content=b"text=rain",
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 422 and resp.json()["error"] == "invalid_request"
    resp = client.post("/v1/search", content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 422 and "json" in resp.json()["detail"].lower()


def test_server_k_limit(backend):
    with TestClient(base_url="http://localhost", app=create_app(backend, max_k=2)) as c:
        assert_error(c.post("/v1/search", json={"text": "rain", "k": 3}), 422, "k_too_large", "2")


# ---------------------------------------------------------------- caption and audio search

@pytest.mark.parametrize("fmt, subtype, name", [
    ("WAV", "PCM_16", "a.wav"), ("WAV", "FLOAT", "a.wav"), ("FLAC", None, "a.flac"),
    ("OGG", "VORBIS", "a.ogg"), ("AIFF", None, "a.aiff"), ("MP3", None, "a.mp3"),
])
def test_caption_every_container(client, fmt, subtype, name):
    data = tone_bytes(660.0, seconds=1.5, sr=44100, fmt=fmt, subtype=subtype, channels=2)
    resp = upload(client, "/v1/caption", data, name=name, ctype="application/octet-stream", beam=1)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["beam"] == 1 and body["filename"] == name
    assert body["duration"] == pytest.approx(1.5, abs=0.06)  # mp3 frames are padded
    hz = int(re.search(r"(\d+) hertz", body["captions"][0]).group(1))
    assert abs(hz - 660) <= 2  # resampled 44.1 kHz stereo -> 16 kHz mono keeps the pitch


def test_caption_beam_option(client):
    data = tone_bytes(300.0)
    assert len(upload(client, "/v1/caption", data, beam=3).json()["captions"]) == 3
    assert len(upload(client, "/v1/caption", data).json()["captions"]) == 3  # default beam 3
    assert_error(upload(client, "/v1/caption", data, beam=0), 422, "invalid_request", "beam")
    assert_error(upload(client, "/v1/caption", data, beam=11), 422, "invalid_request", "beam")


def test_search_audio_finds_nearest_tone(client):
    body = upload(client, "/v1/search/audio", tone_bytes(2000.0), k=2).json()
    assert [r["id"] for r in body["results"]] == ["birds_morning", "waves"]
    assert body["results"][0]["score"] == pytest.approx(1.0, abs=0.01)
    assert body["results"][0]["audio_url"] == "/v1/audio/birds_morning"


def test_caption_without_captioner_is_503(tmp_path):
    with TestClient(base_url="http://localhost", app=create_app(StandInBackend(tmp_path, captioner=False))) as c:
        assert_error(upload(c, "/v1/caption", tone_bytes()), 503, "no_captioner", "--captioner")
        assert c.get("/v1/info").json()["captioner"] is False


# ---------------------------------------------------------------- limits and bad uploads

PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)


@pytest.mark.parametrize("data, name, what", [
    (PNG, "photo.wav", "png image"),                        # name says wav, content says PNG
    (b"\xff\xd8\xff\xe0" + bytes(200), "x.mp3", "jpeg"),   # JPEG is not an MPEG frame sync
    (b"hello, this is just some text\n" * 10, "notes.wav", "plain text"),
    (b"%PDF-1.7\n" + bytes(100), "doc.flac", "pdf"),
    (bytes(range(7, 250)), "noise.ogg", "not a recognised audio"),
])
def test_wrong_type_is_415(client, data, name, what):
    assert_error(upload(client, "/v1/caption", data, name=name), 415, "unsupported_media_type", what)
    assert_error(upload(client, "/v1/search/audio", data, name=name), 415, "unsupported_media_type")


def test_content_wins_over_filename(client):
    resp = upload(client, "/v1/caption", tone_bytes(440.0), name="cover.png", ctype="image/png")
    assert resp.status_code == 200 and "440 hertz" in resp.json()["captions"][0]


def test_empty_corrupt_and_nan_uploads(client):
    assert_error(upload(client, "/v1/caption", b""), 400, "empty_file", "empty")
    wav = tone_bytes()
    assert_error(upload(client, "/v1/caption", wav[:12] + b"\x00garbage" * 20, name="cut.wav"),
                 422, "bad_audio", "cut.wav", "corrupt")
    assert_error(upload(client, "/v1/caption", b"fLaC" + bytes(300), name="bad.flac"),
                 422, "bad_audio", "bad.flac")
    buf = io.BytesIO()
    sf.write(buf, np.full(1600, np.nan, dtype=np.float32), SR, format="WAV", subtype="FLOAT")
    assert_error(upload(client, "/v1/caption", buf.getvalue(), name="nan.wav"),
                 422, "bad_audio", "nan")
    assert client.get("/healthz").status_code == 200


def test_not_multipart_missing_part_and_malformed(client):
    assert_error(client.post("/v1/caption", json={"file": "x"}), 415, "expected_multipart",
                 "multipart/form-data")
    resp = client.post("/v1/caption", files={"audio": ("a.wav", tone_bytes(), "audio/wav")})
    assert_error(resp, 400, "missing_file", "'file'", "'audio'")
    resp = client.post("/v1/caption", content=b"--xyz\r\nbroken",
                       headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert resp.status_code in (400, 415) and "error" in resp.json()


def test_huge_upload_is_413(client):
    big = tone_bytes(440.0, seconds=4.0, sr=48000)  # 384 kB of 16-bit PCM: under the limit
    huge = tone_bytes(440.0, seconds=5.0, sr=48000, subtype="PCM_24")  # 720 kB: over 600 kB
    assert len(big) < 600_000 < len(huge)
    assert_error(upload(client, "/v1/caption", huge), 413, "too_large", "0.7 mb", "0.6 mb")
    assert_error(upload(client, "/v1/search/audio", bytes(5_000_000)), 413, "too_large")
    assert upload(client, "/v1/caption", big).status_code == 200


def test_too_long_is_413_from_header(client):
    long = tone_bytes(440.0, seconds=6.0, sr=8000)  # 96 kB: small, but 6 s > 5 s
    assert_error(upload(client, "/v1/caption", long, name="long.wav"), 413, "too_long",
                 "long.wav", "6.00 s", "5.00 s")


def test_oversize_body_is_rejected_before_it_is_read(backend):
    """The app stops reading at the first chunk past the limit (no Content-Length sent)."""
    app = create_app(backend, max_upload_bytes=100_000)
    chunk, total = b"\x00" * 65536, 200
    sent = {"n": 0}
    messages = []

    async def receive():
        sent["n"] += 1
        return {"type": "http.request", "body": chunk, "more_body": sent["n"] < total}

    async def send(message):
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/v1/caption", "raw_path": b"/v1/caption",
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80),
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"multipart/form-data; boundary=b")]}
    asyncio.run(app(scope, receive, send))
    assert messages[0]["status"] == 413
    assert sent["n"] <= 3, f"read {sent['n']} chunks of {total} before rejecting"


def test_declared_content_length_rejected_without_reading(backend):
    with TestClient(base_url="http://localhost", app=create_app(backend, max_upload_bytes=1000)) as c:
        resp = c.post("/v1/caption", content=b"x" * 10,
                      headers={"content-type": "multipart/form-data; boundary=b",
                               "content-length": "999999999"})
        assert_error(resp, 413, "too_large", "1000.0 mb")


def test_sniffer_accepts_each_container_magic():
    assert sniff_audio(b"RIFF\x00\x00\x00\x00WAVEfmt ") == "wav"
    assert sniff_audio(b"fLaC\x00\x00\x00\x22") == "flac"
    assert sniff_audio(b"OggS\x00\x02") == "ogg"
    assert sniff_audio(b"ID3\x04\x00") == "mp3"
    assert sniff_audio(b"\xff\xfb\x90\x64") == "mp3"
    assert sniff_audio(b"FORM\x00\x00\x10\x00AIFFCOMM") == "aiff"
    with pytest.raises(ApiError):
        sniff_audio(b"RIFF\x00\x00\x00\x00AVI LIST")  # RIFF but not WAVE


# ---------------------------------------------------------------- audio streaming

def test_audio_streams_registered_files(client, backend):
    for item_id, ctype in (("rain/roof-01", "audio/wav"), ("dog-bark", "audio/flac"),
                           ("birds_morning", "audio/ogg"), ("engine idle", "audio/wav")):
        from urllib.parse import quote
        resp = client.get(f"/v1/audio/{quote(item_id, safe='')}")
        assert resp.status_code == 200, item_id
        assert resp.headers["content-type"] == ctype
        assert resp.content == backend.files[item_id].read_bytes()
    resp = client.get("/v1/audio/dog-bark", headers={"Range": "bytes=4-11"})
    assert resp.status_code == 206 and resp.content == backend.files["dog-bark"].read_bytes()[4:12]
    assert resp.headers["content-range"].startswith("bytes 4-11/")


@pytest.mark.parametrize("raw", [
    "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252fetc%252fpasswd", "%2Fetc%2Fpasswd", "/etc/passwd", "..\\..\\etc\\passwd",
    "item0.wav", "door-knock", "rain%2F..%2F..%2Fetc%2Fpasswd", "%00", "x" * 5000,
])
def test_audio_refuses_unregistered_ids(client, raw):
    resp = client.get("/v1/audio/" + raw)
    assert resp.status_code == 404, resp.text
    assert resp.json()["error"] in ("unknown_id", "not_found")
    assert "root:" not in resp.text


def test_audio_refuses_absolute_path_of_registered_file(client, backend):
    path = str(backend.files["rain/roof-01"])
    from urllib.parse import quote
    assert client.get("/v1/audio/" + quote(path, safe="")).status_code == 404


# ---------------------------------------------------------------- failures and concurrency

class ExplodingBackend(StandInBackend):
    def search_text(self, text, k):
        if text == "explode":
            raise RuntimeError("model blew up")
        return super().search_text(text, k)


def test_backend_crash_is_json_500_and_server_survives(tmp_path):
    with TestClient(base_url="http://localhost", app=create_app(ExplodingBackend(tmp_path)), raise_server_exceptions=False) as c:
        resp = c.post("/v1/search", json={"text": "explode", "k": 2})
        assert_error(resp, 500, "internal_error", "RuntimeError")
        assert c.post("/v1/search", json={"text": "rain", "k": 1}).status_code == 200


def test_unknown_route_and_method_are_json(client):
    assert_error(client.get("/v2/nothing"), 404, "not_found")
    assert_error(client.get("/v1/search"), 405, "method_not_allowed")
