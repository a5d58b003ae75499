#!/usr/bin/env bash
# WSAC on the real-sound (foley) dataset, issue 8 results (b) and (c):
#   (b) WSAC trained on the foley *training captions only* (gap: none, noise, shift), decoded on the
#       test audio with direct / NND / projection, next to the supervised captioner;
#   (c) WSAC trained on Clotho development captions only, in the same CLAP space, on the same test audio.
# Usage: scripts/wsac_foley.sh [CLAP_CKPT] [CAPTIONER_METRICS_JSON]
# Env: MANIFEST (default data/foley-default/manifest.jsonl), CLOTHO (dev caption CSV), OUT (runs/wsac),
#      FOLEY_EPOCHS / CLOTHO_EPOCHS (override the recipes' epochs, e.g. to fit a compute budget).
set -euo pipefail
CLAP=${1:-runs/clap/foley}
SUP=${2:-}
MANIFEST=${MANIFEST:-data/foley-default/manifest.jsonl}
CLOTHO=${CLOTHO:-../shared/data/clotho/clotho_captions_development.csv}
OUT=${OUT:-runs/wsac}
PY="nice -n 10 env PYTHONPATH=src python"
FE=(); [[ -n ${FOLEY_EPOCHS:-} ]] && FE=(--epochs "$FOLEY_EPOCHS")
CE=(); [[ -n ${CLOTHO_EPOCHS:-} ]] && CE=(--epochs "$CLOTHO_EPOCHS")
for f in "$MANIFEST" "$CLAP/recipe.yaml"; do
  [[ -e $f ]] || { echo "error: $f not found (build the foley data / train CLAP first)"; exit 2; }
done
train() {  # name gap-mode [extra args]
  local name=$1 mode=$2; shift 2
  [[ -e $OUT/$name/recipe.yaml ]] || $PY -m audiocap train wsac configs/wsac/foley.yaml \
      --captions "$MANIFEST" --split train --space "clap:$CLAP" --gap "$mode" \
      --paired-manifest "$MANIFEST" --out "$OUT/$name" "${FE[@]}" "$@"
}
train foley-none none
train foley-noise noise
train foley-shift shift
[[ -e $OUT/clotho-clap/recipe.yaml ]] || $PY -m audiocap train wsac configs/wsac/clotho.yaml \
    --captions "$CLOTHO" --space "clap:$CLAP" --gap noise --out "$OUT/clotho-clap" "${CE[@]}"
SUPARG=(); [[ -n $SUP ]] && SUPARG=(--supervised "$SUP")
$PY benchmarks/wsac_audio_table.py --manifest "$MANIFEST" --split test "${SUPARG[@]}" \
  --row none=$OUT/foley-none:direct --row noise=$OUT/foley-noise:direct --row shift=$OUT/foley-shift:direct \
  --row NND=$OUT/foley-none:nnd --row projection=$OUT/foley-none:projection \
  --row noise+NND=$OUT/foley-noise:nnd --row noise+projection=$OUT/foley-noise:projection \
  --emb-cache "$OUT/test-audio-emb.safetensors" --out "$OUT/foley-table.json"
$PY benchmarks/wsac_audio_table.py --manifest "$MANIFEST" --split test "${SUPARG[@]}" \
  --row clotho-noise=$OUT/clotho-clap:direct --row clotho-NND=$OUT/clotho-clap:nnd \
  --row clotho-projection=$OUT/clotho-clap:projection --emb-cache "$OUT/test-audio-emb.safetensors" --out "$OUT/clotho-on-foley.json"
