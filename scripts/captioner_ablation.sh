#!/usr/bin/env bash
# The captioner ablation of docs/results.md: four recipes (same seed, same data), each evaluated
# on the real-sound test split with greedy and beam-3 decoding, plus a two-model ensemble.
# Usage: scripts/captioner_ablation.sh [train|eval|table|all]  (ONLY=<prefix> evaluates a subset)   (run from the repository root)
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # the recipes train on one thread (faster on the shared 2-core CPU)
MANIFEST=${MANIFEST:-data/foley-default/manifest.jsonl}
RUNS=${RUNS:-runs/captioner}
NAMES="foley_ce foley_cl4ac foley_ntxent foley_ntxent_delayed"
step=${1:-all}
if [[ $step == train || $step == all ]]; then
  for n in $NAMES; do  # one after another; the frozen-tower frames come from the cache CLAP shares
    nice -n 10 python -m audiocap train captioner --config configs/captioner/$n.yaml --set train.out=$RUNS/$n \
      --set data.manifest=$MANIFEST
  done
fi
if [[ $step == eval || $step == all ]]; then
  # one process for all evaluations, so the METEOR JVM and the text model load once
  nice -n 10 python - "$MANIFEST" "$RUNS" $NAMES <<'PY'
import os, sys, time
from audiocap.evaluation.captioner import evaluate_captioner, write_report
manifest, runs, *names = sys.argv[1:]
jobs = [(f"{n}-beam{k}", [f"{runs}/{n}/checkpoint"], k) for n in names for k in (1, 3)]
jobs += [(f"ensemble_ce+ntxent-beam{k}", [f"{runs}/foley_ce/checkpoint", f"{runs}/foley_ntxent/checkpoint"], k)
         for k in (1, 3)]
only = os.environ.get("ONLY")  # e.g. ONLY=foley_ce to run a subset (parallel shells)
out = os.environ.get("EVAL_DIR", "eval")  # SKIP_SPICE=1 EVAL_DIR=eval_nospice: no Java SPICE
chosen = None
if os.environ.get("SKIP_SPICE"):
    from audiocap.metrics.captioning import ALL_METRICS
    chosen = [m for m in ALL_METRICS if m not in ("spice", "spider")]
for name, ckpts, k in jobs:
    if only and not name.startswith(only):
        continue
    t = time.time()
    report = evaluate_captioner(ckpts, manifest, split="test", beam=k, progress=False, metrics=chosen)
    write_report(report, f"{runs}/{out}/{name}")
    m = report["metrics"]
    print(name, {key: (None if not r.available else round(r.score, 4)) for key, r in m.items()},
          f"{time.time() - t:.0f}s", flush=True)
PY
fi
if [[ $step == table || $step == all ]]; then
  # markdown table of every evaluation (the rows pasted into docs/results.md)
  python - "$RUNS" <<'PY'
import json, sys
from pathlib import Path
cols = ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d", "spice", "spider", "sbert_sim", "vocab"]
print("| system | decoding | " + " | ".join(cols) + " |")
print("|---|---|" + "---|" * len(cols))
for f in sorted(Path(sys.argv[1]).glob("eval*/*/metrics.json")):
    d = json.loads(f.read_text())
    name, beam = f.parent.name.rsplit("-beam", 1)
    cells = []
    for c in cols:
        m = d["metrics"].get(c, {"available": False})
        cells.append("unavailable" if not m.get("available") else
                     f"{m['score']:.0f}" if c == "vocab" else f"{m['score']:.4f}")
    name += " (no SPICE run)" if f.parent.parent.name != "eval" else ""
    print(f"| {name} | {'greedy' if beam == '1' else 'beam ' + beam} | " + " | ".join(cells) + " |")
PY
fi
