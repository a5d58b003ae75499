"""WSAC caption reconstruction on Clotho evaluation: decode each clip's caption_1 embedding.

Kouzelis & Katsouros (DCASE 2023) train the decoder on Clotho development captions only; here
each trained decoder gets the text embedding of caption_1 of every Clotho *evaluation* clip and
its output is scored against (a) the other four captions of the clip (the source caption is
excluded, so copying it earns nothing special) and (b) all five captions. Two reference rows
are scored against the other four as well: caption_1 itself (human agreement) and the nearest
training caption of the first model's memory (retrieval). All systems on one reference set share
one SPICE run. Writes JSON and a Markdown table.

    PYTHONPATH=src python benchmarks/wsac_clotho_reconstruction.py \\
        --model noise=runs/wsac/clotho-noise --model none=runs/wsac/clotho-none \\
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
from wsac_caption_scores import score_systems  # noqa: E402

from audiocap.data.caption_files import read_caption_groups  # noqa: E402
from audiocap.decoding.wsac import load_wsac  # noqa: E402
from audiocap.inference.shared_space import cached_text_embeddings  # noqa: E402
from audiocap.fileio import atomic_write_json, atomic_write_text  # noqa: E402
from audiocap.text.vocab import tokenize_captions  # noqa: E402

COLS = ("bleu_1", "bleu_4", "meteor", "rouge_l", "cider_d", "spice", "spider", "sbert_sim")
HUMAN, NEAREST = "caption_1 itself (human agreement)", "nearest development caption copied"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="NAME=CHECKPOINT (repeatable)")
    ap.add_argument("--captions", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--beam", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--cache-dir", default="runs/cache")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    groups = read_caption_groups(args.captions)[: args.limit]
    flat = [c for g in groups for c in g.captions]
    first = torch.tensor([0, *[len(g.captions) for g in groups]]).cumsum(0)[:-1]
    source = [" ".join(t) for t in tokenize_captions([g.captions[0] for g in groups])]
    systems, info = {}, {}
    for spec in args.model:
        name, folder = spec.split("=", 1)
        wsac = load_wsac(folder)
        emb = cached_text_embeddings(flat, wsac.space, args.cache_dir)[first]  # (N, D) caption_1 embeddings
        if not systems:  # reference rows, in the first model's space and memory
            _, ids = wsac.memory.search(emb, 1)
            refs_rows = {HUMAN: [g.captions[0] for g in groups],
                         NEAREST: [wsac.memory.captions[i] for i in ids[:, 0].tolist()]}
        t0 = time.time()
        cands = wsac.caption_embeddings(emb, strategy="direct", beam=args.beam)
        systems[name] = cands
        info[name] = {"model": folder, "space": wsac.space, "gap": {k: v for k, v in wsac.gap.items() if k != "shift"},
                      "train_metrics": _train_metrics(folder), "decode_seconds": round(time.time() - t0, 1),
                      "exact_copies_of_caption_1": sum(c == s for c, s in zip(cands, source)),
                      "examples": [{"source": g.captions[0], "generated": c} for g, c in list(zip(groups, cands))[:8]]}
        print(f"{name}: decoded {len(cands)} in {info[name]['decode_seconds']}s", flush=True)
    other4 = score_systems({**systems, **refs_rows}, [g.captions[1:] for g in groups])
    all5 = score_systems(systems, [g.captions for g in groups])
    lines = ["| output for each eval clip | refs | " + " | ".join(COLS) + " |", "|---|---|" + "---|" * len(COLS)]
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    for name in systems:
        for label, sc in (("other 4", other4[name]), ("all 5", all5[name])):
            lines.append(f"| WSAC {name} | {label} | " + " | ".join(fmt(sc.get(k)) for k in COLS) + " |")
    for name in refs_rows:
        lines.append(f"| {name} | other 4 | " + " | ".join(fmt(other4[name].get(k)) for k in COLS) + " |")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = {"captions": args.captions, "clips": len(groups), "beam": args.beam, "models": info,
              "refs_other4": other4, "refs_all5": all5, "candidates": systems, "commit": commit,
              "command": " ".join(sys.argv), "table": "\n".join(lines)}
    atomic_write_json(args.out, report)
    atomic_write_text(Path(args.out).with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(json.dumps({n: i["exact_copies_of_caption_1"] for n, i in info.items()}))


def _train_metrics(folder: str) -> dict | None:
    from audiocap.checkpoint import CheckpointError, read_extra

    try:
        return read_extra(folder, "train_metrics")
    except CheckpointError:  # an older checkpoint without the extra
        return None


if __name__ == "__main__":
    main()
