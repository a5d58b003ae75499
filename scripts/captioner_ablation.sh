#!/usr/bin/env bash
# The captioner ablation of docs/results.md: four recipes (same seed, same data), each evaluated
# on the real-sound test split with greedy and beam-3 decoding, plus a two-model ensemble.
# Usage: scripts/captioner_ablation.sh [train|eval|all]   (run from the repository root)
set -euo pipefail
MANIFEST=${MANIFEST:-/work/data/foley-default/manifest.jsonl}
RUNS=${RUNS:-runs/captioner}
NAMES="foley_ce foley_cl4ac foley_ntxent foley_ntxent_delayed"
step=${1:-all}
if [[ $step == train || $step == all ]]; then
  for n in $NAMES; do
    nice -n 10 python -m audiocap train captioner --config configs/captioner/$n.yaml --set train.out=$RUNS/$n --set train.threads=1 &
  done
  wait
fi
if [[ $step == eval || $step == all ]]; then
  # one process for all evaluations, so the METEOR JVM and the text model load once
  nice -n 10 python - "$MANIFEST" "$RUNS" $NAMES <<'PY'
import sys, time
from audiocap.evaluation.captioner import evaluate_captioner, write_report
manifest, runs, *names = sys.argv[1:]
jobs = [(f"{n}-beam{k}", [f"{runs}/{n}/checkpoint"], k) for n in names for k in (1, 3)]
jobs += [(f"ensemble_ce+ntxent-beam{k}", [f"{runs}/foley_ce/checkpoint", f"{runs}/foley_ntxent/checkpoint"], k)
         for k in (1, 3)]
for name, ckpts, k in jobs:
    t = time.time()
    report = evaluate_captioner(ckpts, manifest, split="test", beam=k, progress=False)
    write_report(report, f"{runs}/eval/{name}")
    m = report["metrics"]
    print(name, {key: (None if not r.available else round(r.score, 4)) for key, r in m.items()},
          f"{time.time() - t:.0f}s", flush=True)
PY
fi
