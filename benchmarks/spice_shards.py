"""SPICE cold (no parse cache) in 1 JVM and in N JVMs over item shards: time and per-item equality (issue 19).

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/spice_shards.py --items 60 --workers 2 \\
        --out benchmarks/results/spice_shards.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.environ.get("AUDIOCAP_SHARED", "../shared"))
    ap.add_argument("--items", type=int, default=60, help="first N Clotho evaluation clips (5 references each)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/spice_shards.json")
    args = ap.parse_args()

    import csv

    import numpy as np

    from audiocap.fileio import atomic_write_json
    from audiocap.metrics.spice import spice

    with open(Path(args.shared) / "data/clotho/clotho_captions_evaluation.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[: args.items]
    refs = [[r[f"caption_{i}"] for i in range(2, 6)] for r in rows]
    cands = [r["caption_1"] for r in rows]  # a human caption against the other four
    runs = {}
    for workers in (1, args.workers):
        t = time.perf_counter()
        res = spice(cands, refs, cache=False, workers=workers)
        runs[workers] = (time.perf_counter() - t, res)
        assert res.available, res.reason
    (t1, one), (tn, many) = runs[1], runs[args.workers]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": commit,
           "items": len(cands), "references_per_item": 4, "cache": False, "cpus": os.cpu_count(),
           "load_average": os.getloadavg(), "seconds": {"1": round(t1, 1), str(args.workers): round(tn, 1)},
           "score": one.score, "per_item_equal": bool(np.array_equal(one.per_item, many.per_item, equal_nan=True))}
    atomic_write_json(args.out, out)
    print(out)


if __name__ == "__main__":
    main()
