"""Corpus caption metrics of audiocap next to pycocoevalcap on the reference corpora.

Corpora: Clotho v2.1 evaluation (candidate = caption_1 vs captions 2-5; caption_2 vs the other
four) and AudioCaps test (first caption of each clip vs the other four). For each, audiocap's
BLEU-1..4, METEOR, ROUGE-L, CIDEr-D (and SPICE, SPIDEr when a SPICE folder is set up and
``--spice`` is given) and pycocoevalcap's numbers for the same metrics with the largest
per-item difference. Writes JSON.

    python benchmarks/caption_metrics_reference.py --shared ../shared --spice \
        --out benchmarks/results/caption_metrics_reference.json
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import time
from pathlib import Path

import numpy as np


def corpora(shared: Path):
    with open(shared / "data/clotho/clotho_captions_evaluation.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for c in (1, 2):
        out[f"clotho_eval_caption{c}"] = (
            [r[f"caption_{c}"] for r in rows],
            [[r[f"caption_{k}"] for k in range(1, 6) if k != c] for r in rows])
    groups: dict = {}
    with open(shared / "data/audiocaps/test.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            groups.setdefault((r["youtube_id"], r["start_time"]), []).append(r["caption"])
    out["audiocaps_test_first"] = ([g[0] for g in groups.values()], [g[1:] for g in groups.values()])
    return out


def coco(cands, refs):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    with contextlib.redirect_stdout(io.StringIO()):
        tok = PTBTokenizer()
        gts = tok.tokenize({i: [{"caption": x} for x in rs] for i, rs in enumerate(refs)})
        res = tok.tokenize({i: [{"caption": c}] for i, c in enumerate(cands)})
        b, bi = Bleu(4).compute_score(gts, res, verbose=0)
    out = {f"bleu_{k + 1}": (b[k], np.array(bi[k])) for k in range(4)}
    m, mi = Meteor().compute_score(gts, res)
    out["meteor"] = (m, np.array(mi))
    out["rouge_l"] = Rouge().compute_score(gts, res)
    out["cider_d"] = Cider().compute_score(gts, res)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("AUDIOCAP_SHARED", "../shared")))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/caption_metrics_reference.json"))
    ap.add_argument("--spice", action="store_true", help="also run SPICE/SPIDEr (slow)")
    args = ap.parse_args()

    from audiocap.fileio import atomic_write_json
    from audiocap.metrics.evaluator import Evaluator

    names = ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d"]
    extra = ["spice", "spider"] if args.spice else []
    report = {}
    for name, (cands, refs) in corpora(args.shared).items():
        t0 = time.time()
        ours = Evaluator(names + extra)(cands, refs)
        seconds = time.time() - t0
        ref = coco(cands, refs)
        row = {"items": len(cands), "audiocap_seconds": round(seconds, 1)}
        for m in names:
            row[m] = {"audiocap": ours[m].score, "pycocoevalcap": float(ref[m][0]),
                      "max_item_diff": float(np.abs(ours[m].per_item - ref[m][1]).max())}
        for m in extra:
            row[m] = ours[m].to_json() | {"per_item": None}
        report[name] = row
        print(name, {m: round(ours[m].score, 4) if ours[m].available else None for m in ours},
              f"{seconds:.0f} s", flush=True)
    atomic_write_json(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
