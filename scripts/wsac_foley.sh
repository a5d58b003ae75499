#!/usr/bin/env bash
# WSAC results of issue 8 (docs/results.md), one training at a time:
#   (a) decoders trained on the Clotho development captions only (gap none / noise) in the CLAP space,
#       reconstructing Clotho evaluation captions from their caption_1 text embedding;
#   (b) WSAC trained on the foley *training captions only* (gap: none, noise, shift), decoded on the
#       test audio with direct / NND / projection, next to the supervised captioner;
#   (c) the Clotho-trained noise decoder of (a) on the same foley test audio (domain shift).
# Usage: scripts/wsac_foley.sh [CLAP_CKPT] [CAPTIONER_METRICS_JSON]
#   without the metrics JSON the supervised row is left "pending"; add it later with
#   benchmarks/wsac_audio_table.py --rerender OUT/foley-table.json --supervised JSON --out OUT/foley-table.json
# Env: MANIFEST (default data/foley-default/manifest.jsonl), CLOTHO_DEV / CLOTHO_EVAL (caption CSVs), OUT (runs/wsac),
#      FOLEY_EPOCHS / CLOTHO_EPOCHS (override the recipes' epochs; the docs/results.md tables used CLOTHO_EPOCHS=5).
set -euo pipefail
CLAP=${1:-runs/clap/foley}
SUP=${2:-}
MANIFEST=${MANIFEST:-data/foley-default/manifest.jsonl}
CLOTHO_DEV=${CLOTHO_DEV:-../shared/data/clotho/clotho_captions_development.csv}
CLOTHO_EVAL=${CLOTHO_EVAL:-../shared/data/clotho/clotho_captions_evaluation.csv}
OUT=${OUT:-runs/wsac}
PY="nice -n 10 env PYTHONPATH=src python"
FE=(); [[ -n ${FOLEY_EPOCHS:-} ]] && FE=(--epochs "$FOLEY_EPOCHS")
CE=(); [[ -n ${CLOTHO_EPOCHS:-} ]] && CE=(--epochs "$CLOTHO_EPOCHS")
for f in "$MANIFEST" "$CLAP/recipe.yaml" "$CLOTHO_DEV"; do
  [[ -e $f ]] || { echo "error: $f not found (build the foley data / train CLAP first)"; exit 2; }
done
train() {  # name recipe [args]: skipped when the checkpoint exists
  local name=$1 recipe=$2; shift 2
  [[ -e $OUT/$name/recipe.yaml ]] || $PY -m audiocap train wsac "$recipe" --space "clap:$CLAP" --out "$OUT/$name" "$@"
}
train clotho-noise configs/wsac/clotho.yaml --captions "$CLOTHO_DEV" --gap noise "${CE[@]}"
for g in none noise shift; do
  train foley-$g configs/wsac/foley.yaml --captions "$MANIFEST" --split train --gap $g --paired-manifest "$MANIFEST" "${FE[@]}"
done
train clotho-none configs/wsac/clotho.yaml --captions "$CLOTHO_DEV" --gap none "${CE[@]}"
SUPARG=(); [[ -n $SUP ]] && SUPARG=(--supervised "$SUP")
$PY benchmarks/wsac_clotho_reconstruction.py --model none=$OUT/clotho-none --model noise=$OUT/clotho-noise \
  --captions "$CLOTHO_EVAL" --out "$OUT/clotho-reconstruction.json"
$PY benchmarks/wsac_audio_table.py --manifest "$MANIFEST" --split test "${SUPARG[@]}" \
  --row none=$OUT/foley-none:direct --row noise=$OUT/foley-noise:direct --row shift=$OUT/foley-shift:direct \
  --row NND=$OUT/foley-none:nnd --row projection=$OUT/foley-none:projection \
  --row noise+NND=$OUT/foley-noise:nnd --row noise+projection=$OUT/foley-noise:projection \
  --emb-cache "$OUT/test-audio-emb.safetensors" --out "$OUT/foley-table.json"
$PY benchmarks/wsac_audio_table.py --manifest "$MANIFEST" --split test "${SUPARG[@]}" \
  --row clotho-noise=$OUT/clotho-noise:direct --row clotho-noise+NND=$OUT/clotho-noise:nnd \
  --row clotho-noise+projection=$OUT/clotho-noise:projection --emb-cache "$OUT/test-audio-emb.safetensors" \
  --out "$OUT/clotho-on-foley.json"
