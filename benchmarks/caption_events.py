"""Event check of a captioner's test captions (issue 14): which recipe events each caption names.

Reads ``predictions.csv`` written by ``audiocap eval captioner`` and the foley manifest whose
clips record their recipe labels (``meta.labels``), runs :func:`audiocap.metrics.events.event_check`
and writes JSON (pooled event precision/recall, per-clip named/missed/invented labels) atomically;
prints the figures and a few examples a person can read. The reference captions are checked the
same way as a control (they name exactly the recipe's labels, so both figures are 1.0).

    python benchmarks/caption_events.py --predictions runs/cap/eval-test-beam3/predictions.csv \\
        --manifest data/foley-full/manifest-sub.jsonl --out events.json
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    from audiocap.data.manifest import read_manifest
    from audiocap.fileio import atomic_write_json
    from audiocap.metrics.events import event_check

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--predictions", type=Path, required=True)
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--examples", type=int, default=8)
    args = ap.parse_args(argv)
    clips = {c.id: c for c in read_manifest(args.manifest)}
    with open(args.predictions, encoding="utf-8", newline="") as fh:
        preds = list(csv.DictReader(fh))
    missing = [p["id"] for p in preds if p["id"] not in clips or not (clips[p["id"]].meta or {}).get("labels")]
    if missing:
        sys.exit(f"{args.manifest}: {len(missing)} predicted clips have no recipe labels (e.g. {missing[0]})")
    ids = [p["id"] for p in preds]
    truth = [clips[i].meta["labels"] for i in ids]
    res = event_check([p["caption"] for p in preds], truth, ids=ids)
    ref = event_check([clips[i].captions[0] for i in ids], truth, ids=ids)
    out = {"predictions": str(args.predictions), "manifest": str(args.manifest),
           "reference_control": {k: ref[k] for k in ("event_recall", "event_precision", "n_clips")}, **res}
    atomic_write_json(args.out, out)
    print(f"event recall {res['event_recall']:.3f}  event precision {res['event_precision']:.3f}  "
          f"({res['n_clips']} clips, {res['n_true_events']} recipe events, {res['n_named_events']} named; "
          f"references: {ref['event_recall']:.3f} / {ref['event_precision']:.3f})")
    for c in res["clips"][: args.examples]:
        print(f"- {c['id']}: {c['caption']}\n    recipe {c['true']}  missed {c['missed']}  invented {c['invented']}")
    return out


if __name__ == "__main__":
    main()
