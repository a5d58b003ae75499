"""Concurrent requests against a real uvicorn server on loopback (stand-in backend)."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from serve_standin import StandInBackend, live_server, tone_bytes

from audiocap.serve.app import create_app


def test_simultaneous_requests_each_get_their_own_answer(tmp_path):
    backend = StandInBackend(tmp_path, delay=0.02)
    freqs = [200.0, 350.0, 500.0, 750.0, 1000.0, 1500.0, 2500.0, 3000.0]
    queries = {"rain falling": "rain/roof-01", "dog barks": "dog-bark",
               "birds chirping": "birds_morning", "engine idling": "engine idle",
               "wooden door": "door-knock", "ocean waves": "waves"}

    def caption(hz: float, client: httpx.Client) -> tuple[float, int]:
        resp = client.post("/v1/caption", params={"beam": 1},
                           files={"file": (f"{hz}.wav", tone_bytes(hz), "audio/wav")})
        resp.raise_for_status()
        return hz, int(re.search(r"(\d+) hertz", resp.json()["captions"][0]).group(1))

    def search(text: str, client: httpx.Client) -> tuple[str, str]:
        resp = client.post("/v1/search", json={"text": text, "k": 1})
        resp.raise_for_status()
        return queries[text], resp.json()["results"][0]["id"]

    with live_server(create_app(backend, workers=4)) as url, \
            httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(8) as pool:
        jobs = [pool.submit(caption, hz, client) for hz in freqs * 2]
        jobs += [pool.submit(search, text, client) for text in list(queries) * 2]
        results = [j.result() for j in jobs]
    for want, got in results[: len(freqs) * 2]:
        assert abs(want - got) <= 2, (want, got)
    for want, got in results[len(freqs) * 2:]:
        assert want == got
    assert backend.calls == len(results)
    assert backend.overlaps == 0, "model calls overlapped although the backend is not thread-safe"


def test_event_loop_stays_free_during_model_calls(tmp_path):
    backend = StandInBackend(tmp_path, delay=0.6)
    with live_server(create_app(backend)) as url, httpx.Client(base_url=url, timeout=30) as client:
        slow = threading.Thread(target=client.post, args=("/v1/search",),
                                kwargs={"json": {"text": "rain", "k": 1}})
        slow.start()
        time.sleep(0.1)  # the search is now sleeping inside the backend
        t0 = time.perf_counter()
        assert client.get("/healthz").status_code == 200
        elapsed = time.perf_counter() - t0
        slow.join()
    assert elapsed < 0.3, f"/healthz waited {elapsed:.2f} s behind a model call"


def test_overload_gives_503_not_a_hang(tmp_path):
    backend = StandInBackend(tmp_path, delay=0.3)
    with live_server(create_app(backend, max_pending=2)) as url, \
            httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(6) as pool:
        resps = list(pool.map(lambda _: client.post("/v1/search", json={"text": "rain", "k": 1}),
                              range(6)))
        assert client.get("/healthz").status_code == 200
    codes = sorted(r.status_code for r in resps)
    assert codes.count(200) >= 2 and set(codes) <= {200, 503}, codes
    busy = [r.json() for r in resps if r.status_code == 503]
    assert busy and all(b["error"] == "busy" for b in busy)


def test_huge_uploads_over_the_wire_get_413_and_the_server_stays_up(tmp_path):
    def chunks():
        for _ in range(500):  # 32 MB, no Content-Length: the server must stop reading early
            yield bytes(65536)

    with live_server(create_app(StandInBackend(tmp_path), max_upload_bytes=1_000_000)) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        declared = client.post("/v1/caption", files={"file": ("big.wav", b"RIFF" + bytes(30_000_000),
                                                              "audio/wav")})
        assert declared.status_code == 413 and "30.0 MB" in declared.json()["detail"]
        streamed = client.post("/v1/caption", content=chunks(),
                               headers={"content-type": "multipart/form-data; boundary=x"})
        assert streamed.status_code == 413 and "over the limit of 1.0 MB" in streamed.json()["detail"]
        ok = client.post("/v1/caption", files={"file": ("a.wav", tone_bytes(500.0), "audio/wav")})
        assert ok.status_code == 200 and "500 hertz" in ok.json()["captions"][0]
