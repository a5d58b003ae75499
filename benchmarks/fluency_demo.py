"""audiocap's fluency metrics on the shipped captioner's captions of the demo test clips (issue 19).

Captions split ``test`` of a foley manifest with the shipped captioner exactly as ``audiocap eval
captioner`` does (:func:`audiocap.evaluation.captioner.caption_split`, beam 3, fp32 tower), then
scores them with CIDEr-D, SPICE, SPIDEr, ``fluency_error_rate`` and ``spider_audiocap_fluency``
(audiocap's own detector, :mod:`audiocap.metrics.fluency`), and runs the detector on the clips'
human captions too (the rate there should be low). Lists every flagged caption with its most
probable error kind, and counts captions that name the same event twice by a plain rule (a
word sequence of >= 2 content words occurring twice), a check that does not use the detector.

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/fluency_demo.py \\
        --manifest data/foley-default/manifest.jsonl --out benchmarks/results/fluency_demo.json
"""

from __future__ import annotations

import argparse
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

STOP = {"a", "an", "the", "and", "of", "in", "on", "with", "while", "as", "is", "are", "by", "to", "then", "from",
        "at", "some", "it", "its", "there", "background", "distance", "far", "off", "away", "close"}


def repeats_an_event(caption: str) -> bool:
    """True when two content words follow each other twice, e.g. "door opens ... door opens"."""
    words = [w for w in caption.lower().split() if w not in STOP]
    pairs = list(zip(words, words[1:]))
    return len(set(pairs)) < len(pairs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", default="data/foley-default/manifest.jsonl")
    ap.add_argument("--split", default="test")
    ap.add_argument("--model", default=None, help="captioner checkpoint (default: the shipped one)")
    ap.add_argument("--detector", default=None, help="fluency detector folder (default: the shipped one)")
    ap.add_argument("--out", default="benchmarks/results/fluency_demo.json")
    args = ap.parse_args()

    from audiocap.evaluation.captioner import caption_split, candidates
    from audiocap.fileio import atomic_write_json
    from audiocap.metrics.evaluator import Evaluator
    from audiocap.metrics.fluency import ERROR_KINDS, fluency_error_rate, normalize
    from audiocap.pretrained import default_model

    model = args.model or str(default_model("captioner"))
    t0 = time.perf_counter()
    report = caption_split([model], args.manifest, split=args.split, beam=3, precision="fp32")
    caption_s = time.perf_counter() - t0
    cands, refs = candidates(report), report["references"]
    t0 = time.perf_counter()
    names = ["cider_d", "spice", "spider", "fluency_error_rate", "spider_audiocap_fluency"]
    res = Evaluator(names)(cands, refs)
    if args.detector:  # the Evaluator uses the shipped detector; score with the given one instead
        res["fluency_error_rate"] = fluency_error_rate(cands, folder=args.detector)
    score_s = time.perf_counter() - t0
    flu = res["fluency_error_rate"]
    human = fluency_error_rate([r[0] for r in refs], folder=args.detector)
    human_all = fluency_error_rate([c for r in refs for c in r], folder=args.detector)
    ids = [r["id"] for r in report["predictions"]]
    kinds = np.stack([flu.extra[f"{k}_prob"] for k in ERROR_KINDS], 1)
    flagged = [{"id": ids[i], "caption": cands[i], "p_error": round(float(flu.extra["error_prob"][i]), 4),
                "kind": ERROR_KINDS[int(kinds[i].argmax())]} for i in np.flatnonzero(flu.per_item)]
    rule = [i for i, c in enumerate(cands) if repeats_an_event(c)]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent).stdout.strip()
    out = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": commit,
        "manifest": args.manifest, "split": args.split, "model": model, "detector": args.detector or "shipped",
        "clips": len(cands), "beam": 3, "caption_seconds": round(caption_s, 1), "score_seconds": round(score_s, 1),
        "metrics": {k: (round(v.score, 4) if v.available else f"unavailable: {v.reason}") for k, v in res.items()},
        "threshold": flu.extra.get("threshold") if flu.available else None,
        "flagged": flagged,
        "flagged_by_kind": {k: sum(f["kind"] == k for f in flagged) for k in ERROR_KINDS},
        "human_first_caption_rate": round(human.score, 4) if human.available else None,
        "human_all_captions_rate": round(human_all.score, 4) if human_all.available else None,
        "human_captions": len(refs) * len(refs[0]),
        "rule_repeated_event": {"count": len(rule), "examples": [cands[i] for i in rule[:10]],
                                "human_captions": sum(repeats_an_event(normalize(c)) for r in refs for c in r),
                                "flagged_by_detector": int(sum(flu.per_item[i] for i in rule)) if flu.available else None},
        "predictions": [{"id": i, "caption": c, "p_error": round(float(p), 4)}
                        for i, c, p in zip(ids, cands, flu.extra["error_prob"])] if flu.available else [],
    }
    atomic_write_json(args.out, out)
    print({k: v for k, v in out.items() if k not in ("flagged", "predictions")})
    for f in flagged:
        print(f"flagged {f['p_error']:.3f} {f['kind']:<18} {f['caption']}")


if __name__ == "__main__":
    main()
