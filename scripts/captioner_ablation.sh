#!/usr/bin/env bash
# The captioner ablation of docs/results.md: four recipes (same seed, same data), each evaluated
# on the real-sound test split with greedy and beam-3 decoding, plus a two-model ensemble.
# Usage: scripts/captioner_ablation.sh [train|eval|table|all]   (run from the repository root)
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
  # one process: caption the test split with every system, then score all of them with one
  # Evaluator.evaluate_many call (one SPICE JVM run and one METEOR/text-model load for all rows)
  nice -n 10 python - "$MANIFEST" "$RUNS" $NAMES <<'PY'
import os, sys, time
from audiocap.evaluation.captioner import caption_split, candidates, write_report
from audiocap.metrics.evaluator import ALL_METRICS, Evaluator
manifest, runs, *names = sys.argv[1:]
jobs = [(f"{n}-beam{k}", [f"{runs}/{n}/checkpoint"], k) for n in names for k in (1, 3)]
jobs += [(f"ensemble_ce+ntxent-beam{k}", [f"{runs}/foley_ce/checkpoint", f"{runs}/foley_ntxent/checkpoint"], k)
         for k in (1, 3)]
out = os.environ.get("EVAL_DIR", "eval")  # SKIP_SPICE=1 EVAL_DIR=eval_nospice: no Java SPICE
chosen = [m for m in ALL_METRICS if m not in ("spice", "spider")] if os.environ.get("SKIP_SPICE") else None
reports = {}
for name, ckpts, k in jobs:
    t = time.time()
    reports[name] = caption_split(ckpts, manifest, split="test", beam=k, precision="fp32")
    print(f"captioned {name} in {time.time() - t:.1f}s", flush=True)
refs = next(iter(reports.values()))["references"]
t = time.time()
scores = Evaluator(chosen, progress=lambda m: print("scoring", m, flush=True)).evaluate_many(
    {name: candidates(r) for name, r in reports.items()}, refs)
print(f"scored {len(reports)} systems in {time.time() - t:.0f}s", flush=True)
for name, r in reports.items():
    r["metrics"] = scores[name]
    write_report(r, f"{runs}/{out}/{name}")
    print(name, {key: (None if not m.available else round(m.score, 4)) for key, m in scores[name].items()}, flush=True)
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
