"""The service passes calibrated confidence through and flags "no close match"."""

from __future__ import annotations

import dataclasses

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
