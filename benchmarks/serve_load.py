"""Bounded load test of ``audiocap serve`` on loopback: latency percentiles and error counts.

A fixed number of requests per endpoint is sent by ``--clients`` concurrent clients (default 8)
under an overall time limit; every response is checked (status 200 and a well-formed body) and
anything else counts as an error. The server is started here as a subprocess on 127.0.0.1 on a
free port, either with the deterministic stand-in backend of the test suite (``--backend
standin``) or with real models (``--model/--index/--captioner`` -> ``audiocap serve``); or an
already running server is measured with ``--url``. Prints and writes JSON.

    python benchmarks/serve_load.py --requests 400 --out benchmarks/results/serve_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
QUERIES = ["rain falling on a metal roof", "a dog barks twice", "birds chirping in the morning",
           "a car engine idling", "someone knocks on a door", "ocean waves on the shore",
           "people talking in a busy cafe", "a bell rings three times"]


def tone_wav(hz: float, seconds: float, sr: int = 16000) -> bytes:
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), sr, format="WAV")
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests"),
                                                         os.environ.get("PYTHONPATH", "")])}
    if args.backend == "standin":
        cmd = [sys.executable, "-m", "uvicorn", "--factory", "serve_standin:make_app",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    else:
        cmd = [sys.executable, "-m", "audiocap", "serve", "--model", args.model, "--index",
               args.index, "--host", "127.0.0.1", "--port", str(port)]
        if args.captioner:
            cmd += ["--captioner", args.captioner]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return proc, f"http://127.0.0.1:{port}"


async def wait_ready(url: str, proc: subprocess.Popen | None, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise SystemExit(f"error: the server exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"error: the server at {url} did not become ready in {timeout:.0f} s")


def check_search(resp, k: int) -> str | None:
    if resp.status_code != 200:
        return f"HTTP {resp.status_code}: {resp.text[:200]}"
    results = resp.json().get("results")
    if not isinstance(results, list) or not results or len(results) > k:
        return f"bad results list: {resp.text[:200]}"
    scores = [r["score"] for r in results]
    return None if scores == sorted(scores, reverse=True) else "scores not sorted"


def check_caption(resp, _k: int) -> str | None:
    if resp.status_code != 200:
        return f"HTTP {resp.status_code}: {resp.text[:200]}"
    caps = resp.json().get("captions")
    return None if isinstance(caps, list) and caps and all(isinstance(c, str) and c for c in caps) \
        else f"bad captions: {resp.text[:200]}"


async def run_endpoint(client, name: str, n: int, clients: int, deadline: float, beam: int,
                       waves: list[bytes]) -> dict:
    """Send ``n`` requests to one endpoint from ``clients`` concurrent workers."""
    latencies, errors, next_i = [], [], iter(range(n))

    async def one(i: int):
        if name == "search":
            return await client.post("/v1/search", json={"text": QUERIES[i % len(QUERIES)], "k": 10}), check_search
        files = {"file": (f"clip{i}.wav", waves[i % len(waves)], "audio/wav")}
        if name == "search_audio":
            return await client.post("/v1/search/audio", params={"k": 10}, files=files), check_search
        return await client.post("/v1/caption", params={"beam": beam}, files=files), check_caption

    async def worker():
        for i in next_i:
            if time.monotonic() > deadline:
                errors.append("time limit reached before the request was sent")
                continue
            t0 = time.perf_counter()
            try:
                resp, check = await one(i)
                problem = check(resp, 10)
            except Exception as exc:  # transport errors count as errors, never crash the run
                problem = f"{type(exc).__name__}: {exc}"
            latencies.append(time.perf_counter() - t0)
            if problem:
                errors.append(problem)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - start
    ms = np.asarray(latencies) * 1000
    return {"requests": n, "completed": len(latencies), "errors": len(errors),
            "error_examples": sorted(set(errors))[:3], "wall_s": round(wall, 3),
            "throughput_rps": round(len(latencies) / wall, 2) if wall else None,
            "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
            "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
            "max_ms": round(float(ms.max()), 2) if len(ms) else None}


async def main_async(args) -> dict:
    import httpx

    proc = None
    url = args.url
    if url is None:
        proc, url = start_server(args)
    try:
        await wait_ready(url, proc, args.startup_timeout)
        deadline = time.monotonic() + args.time_limit
        waves = [tone_wav(hz, args.seconds) for hz in (220, 440, 880, 1760)]
        limits = httpx.Limits(max_connections=args.clients)
        out = {"url": url, "backend": args.backend if args.url is None else "external",
               "clients": args.clients, "time_limit_s": args.time_limit,
               "upload_seconds": args.seconds, "beam": args.beam}
        async with httpx.AsyncClient(base_url=url, timeout=args.time_limit, limits=limits) as client:
            out["info"] = (await client.get("/v1/info")).json()
            for name in args.endpoints:
                out[name] = await run_endpoint(client, name, args.requests, args.clients, deadline,
                                               args.beam, waves)
        out["total_errors"] = sum(out[name]["errors"] for name in args.endpoints)
        return out
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=["standin", "models"], default="standin")
    ap.add_argument("--model"), ap.add_argument("--index"), ap.add_argument("--captioner")
    ap.add_argument("--url", help="measure an already running server instead of starting one")
    ap.add_argument("--requests", type=int, default=200, help="requests per endpoint")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds for the whole run")
    ap.add_argument("--startup-timeout", type=float, default=120.0)
    ap.add_argument("--seconds", type=float, default=5.0, help="length of the uploaded clips")
    ap.add_argument("--beam", type=int, default=3)
    ap.add_argument("--endpoints", nargs="+", default=["search", "search_audio", "caption"],
                    choices=["search", "search_audio", "caption"])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.backend == "models" and args.url is None and not (args.model and args.index):
        ap.error("--backend models needs --model and --index")
    result = asyncio.run(main_async(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        sys.path.insert(0, str(REPO / "src"))
        from audiocap.fileio import atomic_write_text

        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, text + "\n")
    sys.exit(1 if result["total_errors"] else 0)


if __name__ == "__main__":
    main()
