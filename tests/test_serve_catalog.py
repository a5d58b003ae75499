"""The page's API: what the library holds, item facts and thumbnails, more-like-this, paging,
per-window captions of long uploads, HEAD on audio (issue 16)."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_standin import LIBRARY, StandInBackend, tone_bytes

from audiocap.serve.app import create_app
from audiocap.serve.catalog import item_facts, library_summary, waveform_svg


@pytest.fixture
def client(tmp_path):
    with TestClient(base_url="http://localhost", app=create_app(StandInBackend(tmp_path), max_duration=120.0)) as c:
        yield c


def test_library_examples_and_tags_come_from_the_library(client):
    lib = client.get("/v1/library").json()
    assert lib["items"] == len(LIBRARY) and lib["tags_kind"] == "tags"
    assert {"tag": "animal", "count": 2} in lib["tags"]
    captions = {cap for _, cap, _, _ in LIBRARY}
    assert lib["examples"] and all(e in captions for e in lib["examples"])


def test_summary_without_tags_uses_caption_words_and_short_captions():
    items = [{"id": str(i), "captions": [c]} for i, c in enumerate(
        ["a dog barks", "a dog barks loudly at a passing car on the street outside the house",
         "rain falls on a roof", "heavy rain and thunder"])]
    lib = library_summary(items)
    assert lib["tags_kind"] == "caption words"
    words = [t["tag"] for t in lib["tags"]]
    assert set(words[:3]) == {"dog", "barks", "rain"}  # 2 captions each; stopwords left out
    assert "a dog barks" in lib["examples"] and "rain falls on a roof" in lib["examples"]
    assert library_summary([])["examples"] == []


def test_hits_carry_duration_tags_license_thumbnail(client):
    body = client.post("/v1/search", json={"text": "rain on a roof", "k": 3}).json()
    top = body["results"][0]
    assert top["id"] == "rain/roof-01" and top["duration"] == 1.0
    assert top["tags"] == ["rain", "roof"] and top["license"] == "CC0-1.0"
    assert top["attribution"] == "stand-in recordings"
    assert top["waveform_url"] == "/v1/waveform/rain%2Froof-01"
    svg = client.get(top["waveform_url"])
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg") and "<script" not in svg.text
    assert client.get("/v1/waveform/door-knock").status_code == 404  # no file registered
    assert item_facts(None)["tags"] == [] and item_facts({"id": "x"})["license"] is None


def test_waveform_follows_the_envelope(tmp_path):
    import soundfile as sf

    sr = 8000
    wave = np.concatenate([np.zeros(sr), 0.5 * np.ones(sr)]).astype(np.float32)
    sf.write(tmp_path / "half.wav", wave, sr)
    svg = waveform_svg(tmp_path / "half.wav", bins=4)
    ys = [float(p.split(",")[1]) for p in svg.split('points="')[1].split('"')[0].split()]
    assert ys[0] > ys[3]  # upper edge: silent start near the centre, loud end near the top


def test_more_like_this_leaves_the_item_out_and_pages(client):
    body = client.post("/v1/search/similar", json={"id": "birds_morning", "k": 2}).json()
    ids = [r["id"] for r in body["results"]]
    assert "birds_morning" not in ids and len(ids) == 2
    page2 = client.post("/v1/search/similar", json={"id": "birds_morning", "k": 2, "offset": 2}).json()
    assert not set(ids) & {r["id"] for r in page2["results"]}
    assert client.post("/v1/search/similar", json={"id": "nope"}).status_code == 404


def test_text_search_pages_and_limits(client):
    all6 = [r["id"] for r in client.post("/v1/search", json={"text": "a dog", "k": 6}).json()["results"]]
    page = client.post("/v1/search", json={"text": "a dog", "k": 2, "offset": 2}).json()
    assert page["offset"] == 2 and [r["id"] for r in page["results"]] == all6[2:4]
    past = client.post("/v1/search", json={"text": "a dog", "k": 10, "offset": 95})
    assert past.status_code == 422 and past.json()["error"] == "k_too_large"


def test_long_upload_is_captioned_per_window(client):
    long = tone_bytes(440.0, seconds=45.0, sr=8000)
    body = client.post("/v1/caption", params={"beam": 1},
                       files={"file": ("long.wav", long, "audio/wav")}).json()
    assert [(w["start"], w["end"]) for w in body["windows"]] == [(0, 10), (10, 20), (20, 30),
                                                                  (30, 40), (40, 45)]
    assert body["captions"][0] == "a steady tone at 440 hertz" and len(body["captions"]) == 5
    short = client.post("/v1/caption", files={"file": ("s.wav", tone_bytes(440.0), "audio/wav")}).json()
    assert short["windows"] is None and len(short["captions"]) == 3
    info = client.get("/v1/info").json()
    assert info["per_window_above"] == 30.0 and info["caption_window"] == 10.0


def test_too_long_message_is_actionable(tmp_path):
    c = TestClient(base_url="http://localhost", app=create_app(StandInBackend(tmp_path), max_duration=5.0))
    r = c.post("/v1/caption", files={"file": ("long.wav", tone_bytes(440.0, seconds=6.0, sr=8000), "audio/wav")})
    assert r.status_code == 413 and "--max-duration" not in r.json()["detail"]
    assert "trim" in r.json()["detail"].lower()


def test_head_on_audio_answers_like_get(client):
    get = client.get("/v1/audio/dog-bark")
    head = client.head("/v1/audio/dog-bark")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.content))
    assert head.headers["content-type"] == get.headers["content-type"]
    assert client.head("/v1/audio/nope").status_code == 404


def test_a_backend_with_its_own_windowing_policy_is_used(tmp_path):
    class OwnWindows(StandInBackend):
        def caption_windows(self, wave, beam):
            return [(0.0, 20.0, "first half"), (20.0, 40.0, "second half")]

    c = TestClient(base_url="http://localhost", app=create_app(OwnWindows(tmp_path), max_duration=120.0))
    body = c.post("/v1/caption", files={"file": ("l.wav", tone_bytes(440.0, seconds=40.0, sr=8000), "audio/wav")}).json()
    assert body["captions"] == ["first half", "second half"] and body["windows"][1]["start"] == 20.0


def test_streamed_flac_gets_a_thumbnail(tmp_path):
    """A streamed FLAC (STREAMINFO total_samples = 0, 'unknown', legal) gets the thumbnail of the
    same audio written as WAV: soundfile's read of the unknown length failed ('psf_fseek()
    failed'), a 422 for the page."""
    import soundfile as sf

    from audiocap.serve.catalog import _peaks

    sr = 16000
    wave = np.concatenate([np.zeros(sr), 0.5 * np.sin(np.arange(sr) / 3.0)]).astype(np.float32)
    sf.write(tmp_path / "ref.wav", wave, sr, subtype="PCM_16")
    path = tmp_path / "stream.flac"
    sf.write(path, wave, sr, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    # STREAMINFO's 64 bits at bytes 18..26 end in the 36-bit total_samples: set it to 0
    packed = int.from_bytes(data[18:26], "big")
    assert data[:4] == b"fLaC" and packed & (2**36 - 1) == len(wave)
    data[18:26] = (packed & ~(2**36 - 1)).to_bytes(8, "big")
    path.write_bytes(bytes(data))
    with sf.SoundFile(path) as fh:
        assert fh.frames != len(wave)  # libsndfile does not know the length (it says 2**63 - 1)

    peaks, seconds = _peaks(str(path), path.stat().st_mtime_ns, 8)
    assert seconds == 2.0 and peaks == _peaks(str(tmp_path / "ref.wav"), 0, 8)[0]
    assert peaks[:4] == (0.0,) * 4 and min(peaks[4:]) > 0.9
    assert waveform_svg(path, bins=8) == waveform_svg(tmp_path / "ref.wav", bins=8)
