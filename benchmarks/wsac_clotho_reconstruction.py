"""WSAC caption reconstruction on Clotho evaluation: decode each clip's caption_1 embedding.

Kouzelis & Katsouros (DCASE 2023) train the decoder on Clotho development captions only; here
the trained decoder gets the text embedding of caption_1 of every Clotho *evaluation* clip and
its output is scored against (a) the other four captions of the clip (the source caption is
excluded, so copying it earns nothing special) and (b) all five captions. Writes JSON.

    PYTHONPATH=src python benchmarks/wsac_clotho_reconstruction.py --model runs/wsac/clotho \\
        --captions /work/shared/data/clotho/clotho_captions_evaluation.csv --out runs/wsac/recon.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wsac_caption_scores import score_captions  # noqa: E402

from audiocap.data.caption_files import read_caption_groups  # noqa: E402
from audiocap.decoding.wsac import load_wsac  # noqa: E402
from audiocap.encoders.shared_space import cached_text_embeddings  # noqa: E402
from audiocap.fileio import atomic_write_json  # noqa: E402
from audiocap.text.wsac_vocab import words  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--captions", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--beam", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--cache-dir", default="runs/cache")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--baselines", action="store_true",
                    help="instead of decoding, score two references: caption_1 itself (human agreement) "
                         "and the nearest training caption of the memory (retrieval)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    wsac = load_wsac(args.model)
    groups = read_caption_groups(args.captions)[: args.limit]
    flat = [c for g in groups for c in g.captions]
    emb = cached_text_embeddings(flat, wsac.space, args.cache_dir)
    first = torch.tensor([0, *[len(g.captions) for g in groups]]).cumsum(0)[:-1]
    if args.baselines:
        _, ids = wsac.memory.search(emb[first], 1)
        report = {"captions": args.captions, "clips": len(groups), "space": wsac.space, "memory": args.model}
        for name, cands in (("human_caption_1", [g.captions[0] for g in groups]),
                            ("retrieval_nearest_training_caption", [wsac.memory.captions[i] for i in ids[:, 0].tolist()])):
            report[name] = {"refs_other4": score_captions(cands, [g.captions[1:] for g in groups])}
        report["command"] = " ".join(sys.argv)
        atomic_write_json(args.out, report)
        print(json.dumps(report, indent=1))
        return
    t0 = time.time()
    cands = wsac.caption_embeddings(emb[first], strategy="direct", beam=args.beam)
    secs = time.time() - t0
    others = score_captions(cands, [g.captions[1:] for g in groups])
    all5 = score_captions(cands, [g.captions for g in groups])
    exact = sum(c == " ".join(words(g.captions[0])) for c, g in zip(cands, groups))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = {
        "model": args.model, "captions": args.captions, "clips": len(groups), "beam": args.beam,
        "space": wsac.space, "gap": {k: v for k, v in wsac.gap.items() if k != "shift"},
        "refs_other4": others, "refs_all5": all5, "exact_copies_of_caption_1": exact,
        "decode_seconds": round(secs, 1), "commit": commit, "command": " ".join(sys.argv),
        "examples": [{"source": g.captions[0], "generated": c} for g, c in list(zip(groups, cands))[:8]],
    }
    atomic_write_json(args.out, report)
    print(json.dumps({k: report[k] for k in ("refs_other4", "refs_all5", "exact_copies_of_caption_1")}, indent=1))


if __name__ == "__main__":
    main()
