"""Text->audio search speed over N random unit vectors: approximate faiss index vs exact search.

Measures what ``audiocap search`` does per query (``VectorIndex.search`` on one query vector):
build time, p50/p99 single-query latency and recall against exact search, for the exact
``IndexFlatIP`` and for the approximate indexes of ``--kinds``: IVF-Flat swept over ``nprobe``,
HNSW over ``efSearch``, PQ fast-scan + exact re-rank ("pqfs") over the re-rank factor, once per
``--shards`` value (the PQ scan split over that many threads). Writes JSON; every approximate
row also gives its p50 speed-up over exact search measured in the same run.

Databases (``--data``):
  uniform    N i.i.d. uniform unit vectors (Gaussian rows, L2-normalized). Every point is
             almost equidistant from every query: the worst case for any approximate index.
  clustered  N/cluster_size random centres, members at cosine ``--cluster-cos`` to their centre,
             a stand-in for real embedding collections, which have near-duplicate groups.
Queries (``--queries-kind``, both by default):
  noisy      q = c*x_i + sqrt(1-c^2)*u, u a random unit vector: a text query whose true match
             x_i is in the collection at cosine ``--query-cos`` (c).
  random     uniform unit vectors (no planted match).

Metrics (both against exact IndexFlatIP results on the same queries):
  recall@10      |approx top-10 ∩ exact top-10| / 10, averaged over queries.
  top1_in_top10  share of queries whose exact nearest neighbour is in the approx top-10
                 (faiss's "1-recall@10").

Run (heavy: ~6 GB RAM at N=1M, D=512; the machine is shared):
    nice -n 10 python benchmarks/search_speed.py --n 1000000 --dim 512
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from audiocap.fileio import atomic_write_json  # noqa: E402
from audiocap.index import IndexParams, VectorIndex  # noqa: E402


def unit_rows(rng: np.random.Generator, n: int, dim: int, chunk: int = 100_000) -> np.ndarray:
    """(n, dim) float32 uniform unit vectors, generated in chunks to bound peak memory."""
    out = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - s), dim), dtype=np.float32)
        out[s : s + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def mix(base: np.ndarray, cos: float, rng: np.random.Generator) -> np.ndarray:
    """Rows at cosine ~``cos`` to ``base`` rows: normalize(cos*b + sqrt(1-cos^2)*u_perp)."""
    u = unit_rows(rng, len(base), base.shape[1])
    u -= np.sum(u * base, axis=1, keepdims=True) * base  # remove the component along base
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    out = cos * base + np.sqrt(1.0 - cos * cos) * u
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def make_database(kind: str, n: int, dim: int, args, rng) -> np.ndarray:
    if kind == "uniform":
        return unit_rows(rng, n, dim)
    centres = unit_rows(rng, max(1, n // args.cluster_size), dim)
    x = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, 100_000):
        idx = np.arange(s, min(n, s + 100_000)) % len(centres)
        x[s : s + len(idx)] = mix(centres[idx], args.cluster_cos, rng)
    return x


def timed_search(index: VectorIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Search one query at a time; returns rows (Q, k) and per-query wall-clock and process-CPU
    latency in ms (Q,), (Q,). On a loaded shared machine the wall clock includes waiting for a
    core; CPU time is what the query itself costs."""
    rows = np.full((len(queries), k), -1, dtype=np.int64)
    lat, cpu = np.empty(len(queries)), np.empty(len(queries))
    for i, q in enumerate(queries):
        t, c = time.perf_counter(), time.process_time()
        _, r = index.search(q[None, :], k)
        lat[i], cpu[i] = (time.perf_counter() - t) * 1e3, (time.process_time() - c) * 1e3
        rows[i, : r.shape[1]] = r[0]
    return rows, lat, cpu


def quality(rows: np.ndarray, truth: np.ndarray, k: int) -> dict[str, float]:
    overlap = [len(set(a[:k]) & set(b[:k])) / k for a, b in zip(rows, truth)]
    top1 = [b[0] in a[:k] for a, b in zip(rows, truth)]
    return {f"recall@{k}": float(np.mean(overlap)), f"top1_in_top{k}": float(np.mean(top1))}


def latency(lat: np.ndarray, cpu: np.ndarray) -> dict[str, float]:
    return {"p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "mean_ms": float(lat.mean()), "p50_cpu_ms": float(np.percentile(cpu, 50)),
            "p99_cpu_ms": float(np.percentile(cpu, 99))}


def run_dataset(data: str, args, rng, save) -> dict:
    """Exact vs approximate search on one database; ``save(out)`` persists partial results."""
    t0 = time.perf_counter()
    x = make_database(data, args.n, args.dim, args, rng)
    print(f"[{data}] database {x.shape} made in {time.perf_counter() - t0:.1f}s", flush=True)
    qsets = {}
    if "noisy" in args.queries_kind:
        qsets["noisy"] = mix(x[rng.integers(0, args.n, args.queries)], args.query_cos, rng)
    if "random" in args.queries_kind:
        qsets["random"] = unit_rows(rng, args.queries, args.dim)
    items = [{"id": str(i), "path": ""} for i in range(args.n)]

    t0 = time.perf_counter()
    exact = VectorIndex.build(x, items, params=IndexParams(exact_below=args.n + 1))
    out = {"data": data, "exact": {"kind": exact.kind, "build_s": time.perf_counter() - t0}}
    truth = {name: exact.search(q, args.k)[1] for name, q in qsets.items()}
    for name, q in qsets.items():
        _, lat, cpu = timed_search(exact, q[: args.exact_queries], args.k)
        out["exact"][name] = latency(lat, cpu) | {"queries": len(lat)}
        print(f"[{data}] exact {name}: {out['exact'][name]}", flush=True)
    del exact

    out["approximate"] = []
    configs = [(kind, shards) for kind in args.kinds
               for shards in (args.shards if kind == "pqfs" else [None])]
    for kind, shards in configs:
        params = IndexParams(exact_below=0, kind=kind, ivf_nlist=args.nlist, hnsw_m=args.hnsw_m,
                             hnsw_ef_construction=args.ef_construction, pq_m=args.pq_m,
                             pq_shards=shards)
        t0 = time.perf_counter()
        index = VectorIndex.build(x, items, params=params)
        build_s = time.perf_counter() - t0
        print(f"[{data}] {kind} built in {build_s:.1f}s ({index.params})", flush=True)
        knob, sweep, fixed = {
            "ivf": ("nprobe", args.nprobe, {"nlist": index.params.ivf_nlist}),
            "hnsw": ("ef_search", args.ef_search, {"M": args.hnsw_m, "efConstruction": args.ef_construction}),
            "pqfs": ("refine", args.refine, {"pq_m": index.params.pq_m, "nbits": 4,
                                              "shards": index.params.pq_shards}),
        }[kind]
        for value in sweep:
            index.set_search_params(**{knob: value})
            row = {"kind": kind, "build_s": build_s, "params": fixed | {knob: value}}
            for name, q in qsets.items():
                rows, lat, cpu = timed_search(index, q, args.k)
                row[name] = latency(lat, cpu) | quality(rows, truth[name], args.k)
                row[name]["speedup_p50_vs_exact"] = out["exact"][name]["p50_ms"] / row[name]["p50_ms"]
            print(f"[{data}] {row}", flush=True)
            out["approximate"].append(row)
        save(out)
        del index
    for clock in ("p50_ms", "p50_cpu_ms"):  # goal: p50 <= 5 ms with recall@10 >= 0.95
        out[f"goal_met_{clock}"] = {
            name: [r["params"] for r in out["approximate"] if r[name][clock] <= 5.0
                   and r[name][f"recall@{args.k}"] >= 0.95] for name in qsets}
    return out


def markdown(result: dict) -> str:
    """Tables of a result JSON for docs/results.md (numbers as written, rounded for reading)."""
    lines, k = [], result["config"]["k"]
    for ds in result["datasets"]:
        qsets = [q for q in ("noisy", "random") if q in ds["exact"]]
        lines += [f"**{ds['data']}** database, exact IndexFlatIP: build {ds['exact']['build_s']:.1f} s; "
                  + "; ".join(f"{q} queries p50 {ds['exact'][q]['p50_ms']:.0f} ms wall / "
                              f"{ds['exact'][q]['p50_cpu_ms']:.0f} ms CPU" for q in qsets), "",
                  "| index | params | build s | " + " | ".join(
                      f"{q}: p50 ms (CPU) | {q}: p99 ms | {q}: recall@{k} | {q}: top1 in top{k} | "
                      f"{q}: × exact" for q in qsets) + " |",
                  "|---|---|---:|" + "---:|" * (5 * len(qsets))]
        for r in ds["approximate"]:
            cells = [f"{r[q]['p50_ms']:.2f} ({r[q]['p50_cpu_ms']:.2f}) | {r[q]['p99_ms']:.1f} | "
                     f"{r[q][f'recall@{k}']:.3f} | {r[q][f'top1_in_top{k}']:.3f} | "
                     f"{r[q].get('speedup_p50_vs_exact', float('nan')):.0f}" for q in qsets]
            params = ", ".join(f"{a}={b}" for a, b in r["params"].items())
            lines.append(f"| {r['kind']} | {params} | {r['build_s']:.0f} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="database size")
    ap.add_argument("--dim", type=int, default=512, help="embedding dimension (the model's)")
    ap.add_argument("--queries", type=int, default=500, help="queries per query set")
    ap.add_argument("--exact-queries", type=int, default=50, help="queries timed on exact search")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--data", nargs="+", default=["uniform", "clustered"], choices=["uniform", "clustered"])
    ap.add_argument("--queries-kind", nargs="+", default=["noisy", "random"], choices=["noisy", "random"])
    ap.add_argument("--query-cos", type=float, default=0.7, help="cosine of a noisy query to its source")
    ap.add_argument("--cluster-size", type=int, default=100)
    ap.add_argument("--cluster-cos", type=float, default=0.7, help="cosine of a member to its centre")
    ap.add_argument("--kinds", nargs="+", default=["ivf"], choices=["ivf", "hnsw", "pqfs"])
    ap.add_argument("--nlist", type=int, default=None, help="IVF cells (default sqrt(N))")
    ap.add_argument("--nprobe", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128])
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--ef-search", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    ap.add_argument("--pq-m", type=int, default=None, help="PQ sub-quantizers (default dim/4)")
    ap.add_argument("--refine", type=int, nargs="+", default=[50, 100, 200, 400, 800],
                    help="pqfs: re-rank k*refine candidates exactly")
    ap.add_argument("--shards", type=int, nargs="+", default=[1, 2],
                    help="pqfs: build one index per value, its PQ scan split over that many threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="faiss OpenMP threads (default: all)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "search_speed.json")
    ap.add_argument("--markdown", type=Path, default=None,
                    help="print the tables of an existing result JSON and exit (no benchmark)")
    args = ap.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return

    import faiss

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = ""
    result = {
        "benchmark": "search_speed", "date": dt.date.today().isoformat(), "commit": commit,
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "machine": {"cpus": os.cpu_count(), "faiss_threads": faiss.omp_get_max_threads(),
                    "faiss": faiss.__version__, "processor": platform.processor() or platform.machine(),
                    "loadavg_start": list(os.getloadavg())},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "datasets": [],
    }
    rng = np.random.default_rng(args.seed)
    for data in args.data:  # partial results are written after each index, so they survive
        result["datasets"].append(run_dataset(
            data, args, rng, lambda part: atomic_write_json(args.out, result | {
                "datasets": result["datasets"] + [part], "partial": True})))
        atomic_write_json(args.out, result)
    result["machine"]["loadavg_end"] = list(os.getloadavg())
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
