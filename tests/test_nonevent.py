"""Silence and non-event inputs are told apart from sound events (issue 20 item 1).

The judge (:mod:`audiocap.audio.nonevent`) is checked on generated signals and on real clips of
the demo data when it is built; ``audiocap caption`` (the shipped captioner) and ``/v1/caption``
(the stand-in backend) carry its flag and confidence.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from serve_standin import SR, StandInBackend
from typer.testing import CliRunner

from audiocap.audio.io import load_audio
from audiocap.audio.nonevent import STATIONARITY_THRESHOLD, judge, stationarity

FOLEY = Path(__file__).resolve().parents[1] / "data" / "foley-default"


def seconds(s: float, sr: int) -> np.ndarray:
    return np.arange(int(s * sr)) / sr


def event_clip(sr: int, length: float = 5.0) -> np.ndarray:
    """An event-like stand-in for a real clip: decaying knocks and bursts over faint room noise."""
    rng = np.random.default_rng(1)
    x = 0.003 * rng.standard_normal(int(length * sr))
    for start, hz in ((0.4, 600.0), (1.3, 900.0), (2.5, 300.0), (3.6, 1500.0)):
        t = seconds(0.3, sr)
        burst = 0.5 * np.exp(-12 * t) * (0.6 * np.sin(2 * np.pi * hz * t) + 0.4 * rng.standard_normal(len(t)))
        x[int(start * sr) : int(start * sr) + len(t)] += burst
    return x.astype(np.float32)


def non_events(sr: int) -> dict[str, tuple[np.ndarray, str]]:
    """Generated inputs and the flag each must get."""
    rng = np.random.default_rng(0)
    t = seconds(3.0, sr)
    out = {"silence": (np.zeros(3 * sr), "silence"),
           "dither -75 dBFS": (10 ** (-75 / 20) * rng.standard_normal(3 * sr), "silence"),
           "dc 0.5": (np.full(3 * sr, 0.5), "low_confidence"),
           "clipped square 220 Hz": (np.clip(20 * np.sin(2 * np.pi * 220 * t), -1, 1), "low_confidence"),
           "white noise": (0.2 * rng.standard_normal(3 * sr), "low_confidence"),
           "one sample": (np.array([0.5]), "low_confidence"),
           "0.2 s of noise": (0.3 * rng.standard_normal(int(0.2 * sr)), "low_confidence")}
    for hz in (60.0, 440.0, 1000.0, 5000.0):
        for amp in (0.5, 0.03):
            out[f"tone {hz:.0f} Hz x{amp}"] = (amp * np.sin(2 * np.pi * hz * t), "low_confidence")
    return {k: (w.astype(np.float32), flag) for k, (w, flag) in out.items()}


@pytest.mark.parametrize("sr", [16000, 44100])
def test_non_events_are_flagged_and_an_event_is_not(sr):
    for name, (wave, flag) in non_events(sr).items():
        j = judge(wave, sr)
        assert j.flag == flag, (name, j)
        assert j.confidence < 0.5, (name, j)
        json.dumps(j.to_dict(), allow_nan=False)  # -inf dBFS of silence would be invalid JSON
    j = judge(event_clip(sr), sr)
    assert j.flag is None and j.confidence > 0.6, j
    assert j.stationarity > 2 * STATIONARITY_THRESHOLD


def test_stationarity_numbers():
    sr = 16000
    t = seconds(4.0, sr)
    assert stationarity(0.5 * np.sin(2 * np.pi * 440 * t), sr) < 0.01  # a tone does not vary
    assert stationarity(np.full(len(t), 0.5), sr) == 0.0  # DC is below every band
    noise = 0.2 * np.random.default_rng(0).standard_normal(len(t))
    assert 0.3 < stationarity(noise, sr) < STATIONARITY_THRESHOLD  # chance fluctuation only
    # the same sound 40 dB quieter varies the same (the score is in dB, not level)
    assert stationarity(event_clip(sr), sr) == pytest.approx(stationarity(0.01 * event_clip(sr), sr), abs=0.2)


@pytest.mark.skipif(not (FOLEY / "manifest.jsonl").exists(), reason="demo data not built (audiocap demo)")
def test_real_test_clips_are_not_flagged():
    rows = [json.loads(line) for line in (FOLEY / "manifest.jsonl").read_text().splitlines()]
    test = [r for r in rows if r["split"] == "test"][:20]
    for r in test:
        j = judge(load_audio(FOLEY / r["audio"], sr=44100), 44100)
        assert j.flag is None, (r["id"], r["tags"], j)


# ---------------------------------------------------------------- audiocap caption

def write(path: Path, wave: np.ndarray, sr: int) -> Path:
    sf.write(path, wave, sr, subtype="FLOAT")
    return path


def test_caption_cli_prints_silence_and_marks_low_confidence(tmp_path):
    from audiocap.cli import app

    sr = 44100
    files = [write(tmp_path / "silence.wav", np.zeros(3 * sr, np.float32), sr),
             write(tmp_path / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * seconds(3, sr))).astype(np.float32), sr),
             write(tmp_path / "event.wav", event_clip(sr), sr)]
    res = CliRunner().invoke(app, ["caption", *map(str, files), "--json", "--beam", "1"])
    assert res.exit_code == 0, res.output
    rows = {Path(r["file"]).stem: r for r in map(json.loads, res.stdout.splitlines()) if isinstance(r, dict)}
    assert rows["silence"]["caption"] == "silence" and rows["silence"]["flag"] == "silence"
    assert rows["silence"]["confidence"] == 0.0 and rows["silence"]["score"] is None
    assert rows["tone"]["flag"] == "low_confidence" and rows["tone"]["confidence"] < 0.5
    assert rows["tone"]["caption"] and rows["tone"]["caption"] != "silence"  # kept, but marked
    assert rows["event"]["flag"] is None and rows["event"]["confidence"] > 0.5
    text = CliRunner().invoke(app, ["caption", *map(str, files), "--beam", "1"])
    lines = {Path(ln.split("\t")[0]).stem: ln for ln in text.stdout.splitlines() if "\t" in ln}
    assert lines["silence"].split("\t")[2] == "silence"
    assert "(low confidence 0.00" in lines["tone"] and "low confidence" not in lines["event"]


def test_caption_per_window_judges_each_window(tmp_path):
    """20 s: 10 s of silence, then events: the silent window reads "silence" (not decoded)."""
    from audiocap.cli import app

    sr = 44100
    wave = np.concatenate([np.zeros(10 * sr, np.float32), event_clip(sr, 10.0)])
    f = write(tmp_path / "half.wav", wave, sr)
    res = CliRunner().invoke(app, ["caption", str(f), "--json", "--per-window", "--beam", "1"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(ln) for ln in res.stdout.splitlines() if ln.startswith("{")]
    assert [(r["start"], r["end"]) for r in rows] == [(0.0, 10.0), (10.0, 20.0)]
    assert rows[0]["caption"] == "silence" and rows[0]["flag"] == "silence" and rows[0]["score"] is None
    assert rows[1]["flag"] is None and rows[1]["caption"] != "silence" and rows[1]["score"] < 0


# ---------------------------------------------------------------- /v1/caption

def wav_bytes(wave: np.ndarray, sr: int = SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, sr, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def test_api_returns_flag_and_confidence(tmp_path):
    from audiocap.serve.app import create_app

    backend = StandInBackend(tmp_path)
    with TestClient(base_url="http://localhost", app=create_app(backend, max_duration=10.0)) as c:
        def post(wave):
            resp = c.post("/v1/caption", params={"beam": 1}, files={"file": ("a.wav", wav_bytes(wave), "audio/wav")})
            assert resp.status_code == 200, resp.text
            return resp.json()

        body = post(np.zeros(2 * SR, np.float32))
        assert body["captions"] == ["silence"] and body["flag"] == "silence" and body["confidence"] == 0.0
        assert backend.calls == 0  # the model is not asked to describe silence
        body = post((0.3 * np.sin(2 * np.pi * 440 * seconds(2, SR))).astype(np.float32))
        assert body["flag"] == "low_confidence" and body["confidence"] < 0.5 and "steady" in body["reason"]
        assert body["captions"] == ["a steady tone at 440 hertz"] and backend.calls == 1
        body = post(event_clip(SR))
        assert body["flag"] is None and body["confidence"] > 0.5


def test_api_windows_carry_their_own_flag(tmp_path):
    from audiocap.serve.app import create_app

    backend = StandInBackend(tmp_path)
    backend.caption_window = 5.0
    wave = np.concatenate([np.zeros(5 * SR, np.float32), event_clip(SR)])
    with TestClient(base_url="http://localhost", app=create_app(backend, max_duration=20.0,
                                                                per_window_above=6.0)) as c:
        resp = c.post("/v1/caption", files={"file": ("a.wav", wav_bytes(wave), "audio/wav")})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["flag"] is None  # the upload as a whole has events
    first, second = body["windows"]
    assert (first["start"], first["end"], second["end"]) == (0.0, 5.0, 10.0)
    assert first["caption"] == "silence" and first["flag"] == "silence" and first["confidence"] == 0.0
    assert second["flag"] is None and second["confidence"] > 0.5 and body["captions"][0] == "silence"


def test_wsac_captions_carry_the_flag(tmp_path, monkeypatch):
    """WSAC checkpoints caption through their own function: silence is not decoded there either."""
    import torch

    import audiocap.decoding.wsac as wsac_mod
    import audiocap.inference.shared_space as space

    decoded = []

    class FakeWsac:
        space = "clap:x"

        def caption_embeddings(self, emb, **_):
            decoded.append(len(emb))
            return ["a dog barks"] * len(emb)

    monkeypatch.setattr(wsac_mod, "load_wsac", lambda *a, **k: FakeWsac())
    monkeypatch.setattr(space, "audio_embedder", lambda *a, **k: lambda files: torch.zeros(len(files), 4))
    sr = 16000
    files = [write(tmp_path / "silence.wav", np.zeros(2 * sr, np.float32), sr),
             write(tmp_path / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * seconds(2, sr))).astype(np.float32), sr),
             write(tmp_path / "event.wav", event_clip(sr), sr)]
    caps = wsac_mod.caption_files(files, [tmp_path / "ckpt"])
    assert [(c.text, c.flag) for c in caps] == [("silence", "silence"), ("a dog barks", "low_confidence"),
                                                ("a dog barks", None)]
    assert decoded == [1, 1] and all(json.dumps(c.to_dict(), allow_nan=False) for c in caps)
