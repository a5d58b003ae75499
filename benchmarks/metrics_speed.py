"""Time BLEU-1..4 + ROUGE-L + CIDEr-D including tokenization: audiocap vs pycocoevalcap.

Corpus: Clotho v2.1 evaluation captions, candidate = caption_1, references = captions 2-5.
pycocoevalcap runs its Java PTBTokenizer + Bleu(4) + Rouge + Cider; audiocap runs its
pure-Python PTB tokenization + numpy BLEU/ROUGE-L/CIDEr-D. Both in this one process, best of
``--repeats``; the scores are checked to agree to 1e-6. Writes JSON with both times and the ratio.

    python benchmarks/metrics_speed.py --shared ../shared --out benchmarks/results/metrics_speed.json
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import platform
import time
from pathlib import Path


def load(shared: Path):
    with open(shared / "data/clotho/clotho_captions_evaluation.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["caption_1"] for r in rows], [[r[f"caption_{k}"] for k in range(2, 6)] for r in rows]


def run_audiocap(cands, refs):
    from audiocap.metrics.ngram import ngram_metrics

    out = ngram_metrics(cands, refs)  # PTB tokenization + BLEU-1..4 + ROUGE-L + CIDEr-D
    return [out[k].score for k in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider_d")]


def run_pycocoevalcap(cands, refs):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    with contextlib.redirect_stdout(io.StringIO()):
        gts = tok.tokenize({i: [{"caption": x} for x in rs] for i, rs in enumerate(refs)})
        res = tok.tokenize({i: [{"caption": c}] for i, c in enumerate(cands)})
        b, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return list(b) + [Rouge().compute_score(gts, res)[0], Cider().compute_score(gts, res)[0]]


def best_time(fn, *args, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("AUDIOCAP_SHARED", "../shared")))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/metrics_speed.json"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from audiocap.fileio import atomic_write_json

    cands, refs = load(args.shared)
    t_ours, ours = best_time(run_audiocap, cands, refs, repeats=args.repeats)
    t_coco, coco = best_time(run_pycocoevalcap, cands, refs, repeats=args.repeats)
    diff = max(abs(a - b) for a, b in zip(ours, coco))
    if diff > 1e-6:
        raise SystemExit(f"error: scores differ by {diff:.2e}: {ours} vs {coco}")
    names = ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider_d"]
    result = {
        "corpus": "Clotho v2.1 evaluation, caption_1 vs captions 2-5", "items": len(cands),
        "metrics": "BLEU-1..4 + ROUGE-L + CIDEr-D incl. PTB tokenization",
        "audiocap_seconds": round(t_ours, 4), "pycocoevalcap_seconds": round(t_coco, 4),
        "speedup": round(t_coco / t_ours, 2), "repeats": args.repeats, "max_abs_score_diff": diff,
        "scores": dict(zip(names, ours)), "cpu_count": os.cpu_count(),
        "loadavg_1min": os.getloadavg()[0], "python": platform.python_version(),
    }
    atomic_write_json(args.out, result)
    print(f"audiocap {t_ours:.3f} s, pycocoevalcap {t_coco:.3f} s -> {t_coco / t_ours:.1f}x "
          f"(scores equal to {diff:.1e}); wrote {args.out}")


if __name__ == "__main__":
    main()
