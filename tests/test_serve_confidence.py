"""The service passes calibrated confidence through and flags "no close match"."""

from __future__ import annotations

import dataclasses

import pytest

from fastapi.testclient import TestClient
from serve_standin import StandInBackend

from audiocap.serve.app import create_app


class Calibrated(StandInBackend):
    """Stand-in whose hits carry a confidence: matches are the hits with a positive score."""

    def search_text(self, text, k):
        return [dataclasses.replace(h, confidence=round(max(0.0, h.score), 3), match=h.score > 0.3)
                for h in super().search_text(text, k)]


def test_confidence_and_no_close_match(tmp_path):
    client = TestClient(base_url="http://localhost", app=create_app(Calibrated(tmp_path)))
    hit = client.post("/v1/search", json={"text": "a dog barks", "k": 3}).json()
    assert hit["no_close_match"] is False and hit["results"][0]["match"] is True
    assert 0 <= hit["results"][0]["confidence"] <= 1
    miss = client.post("/v1/search", json={"text": "asdkjh qwe", "k": 3}).json()
    assert miss["no_close_match"] is True and len(miss["results"]) == 3
    assert all(r["match"] is False for r in miss["results"])


def test_uncalibrated_models_keep_plain_scores(tmp_path):
    body = TestClient(base_url="http://localhost", app=create_app(StandInBackend(tmp_path))).post("/v1/search", json={"text": "rain"}).json()
    assert body["no_close_match"] is False
    assert all(r["confidence"] is None for r in body["results"])


def test_the_real_backend_judges_text_hits_with_the_models_calibration(tmp_path, monkeypatch):
    # The model backend (not a stand-in) with a calibrated CLAP: its Hit objects are frozen, and
    # an in-place update crashed every text search of the shipped model with a 500.
    import numpy as np

    from audiocap.calibration import Calibration
    from audiocap.serve import wiring
    from audiocap.serve.backend import ModelBackend

    class Clap:
        sample_rate = 16000
        calibration = Calibration(a=20.0, b=-8.0, threshold=0.4)

    class Index:
        items = [{"id": n, "path": f"{n}.wav"} for n in "abc"]

        def __len__(self):
            return 3

    monkeypatch.setattr(wiring, "index_items", lambda index: [("a", None), ("b", None), ("c", None)])
    monkeypatch.setattr(wiring, "embed_text", lambda clap, texts: np.ones((1, 4), dtype=np.float32))
    monkeypatch.setattr(wiring, "search", lambda index, q, k: [("a", 0.6, "x"), ("b", 0.39, None), ("c", 0.1, None)][:k])
    backend = ModelBackend(Clap(), Index(), index_path=str(tmp_path))
    hits = backend.search_text("a dog barks", 3)
    assert [h.match for h in hits] == [True, False, False]
    assert hits[0].confidence == pytest.approx(1 / (1 + np.exp(-20 * 0.2)), abs=1e-4)
    assert hits[1].confidence == pytest.approx(1 / (1 + np.exp(0.2)), abs=1e-4) and hits[2].confidence < 0.01
    client = TestClient(base_url="http://localhost", app=create_app(backend))
    body = client.post("/v1/search", json={"text": "a dog barks", "k": 3}).json()
    assert body["no_close_match"] is False and body["results"][0]["match"] is True
