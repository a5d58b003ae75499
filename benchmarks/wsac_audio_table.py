"""WSAC on audio: score each (checkpoint, strategy) row on a manifest split, next to a supervised
captioner, and write one JSON + Markdown table (Kouzelis & Katsouros, DCASE 2023, Table 2 style).

Every WSAC checkpoint must live in the same CLAP space (``clap:FOLDER``); the test audio is
embedded once with that CLAP audio tower. Each row decodes those embeddings with one strategy
(direct / nnd / projection) and is scored against the clip's reference captions.

    PYTHONPATH=src python benchmarks/wsac_audio_table.py --manifest M.jsonl --split test \\
        --row none=runs/wsac/foley-none:direct --row NND=runs/wsac/foley-none:nnd \\
        --supervised runs/captioner/foley/eval-test-beam3/metrics.json --out runs/wsac/table.json
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

from audiocap.data.manifest import audio_path, read_manifest  # noqa: E402
from audiocap.decoding.wsac import load_wsac  # noqa: E402
from audiocap.encoders.shared_space import audio_embedder  # noqa: E402
from audiocap.fileio import atomic_write_json, atomic_write_text  # noqa: E402

COLS = ("bleu_4", "meteor", "rouge_l", "cider_d", "sbert_sim")


def supervised_scores(data: dict) -> dict[str, float | None]:
    """Corpus scores of COLS from a supervised captioner's metrics JSON: either audiocap's
    Evaluator JSON (``{"metrics": {name: {"available", "score", ...}}}``) or a flat
    ``{name: score}`` dict. Unavailable or missing metrics map to None."""
    m = data.get("metrics", data)
    out: dict[str, float | None] = {}
    for k in COLS:
        v = m.get(k, m.get(k.replace("_", "-")))
        if isinstance(v, dict):
            v = v.get("score") if v.get("available", True) else None
        out[k] = None if v is None else float(v)
    return out


def split_embeddings(space: str, manifest: str, clips, cache: str | None) -> torch.Tensor:
    """CLAP audio embeddings (N, D) of ``clips``, re-used from ``cache`` when it was written for the
    same space and the same clip ids (so several table runs embed the test audio once)."""
    from safetensors.torch import load_file, save_file

    key = json.dumps({"space": space, "ids": [c.id for c in clips]})
    if cache and Path(cache).exists():
        from safetensors import safe_open

        with safe_open(cache, "pt") as f:
            if (f.metadata() or {}).get("key") == key:
                print(f"audio embeddings from {cache}", flush=True)
                return load_file(cache)["emb"]
    t0 = time.time()
    emb = audio_embedder(space)([audio_path(manifest, c) for c in clips])  # (N, D)
    print(f"embedded {len(clips)} clips in {time.time() - t0:.0f}s", flush=True)
    if cache:
        from audiocap.fileio import atomic_path

        with atomic_path(cache) as tmp:
            save_file({"emb": emb.contiguous().float().cpu()}, str(tmp), metadata={"key": key})
    return emb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--row", action="append", required=True, help="NAME=CHECKPOINT:STRATEGY")
    ap.add_argument("--supervised", help="metrics JSON of the supervised captioner on the same split")
    ap.add_argument("--tau", type=float, default=0.01)
    ap.add_argument("--beam", type=int, default=3)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--emb-cache", help="safetensors file of the split's audio embeddings: read if it holds "
                                        "this space and these clips, else computed and written")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    clips = [c for c in read_manifest(args.manifest) if c.split == args.split and c.captions]
    if not clips:
        sys.exit(f"error: {args.manifest}: no captioned clips in split '{args.split}'")
    refs = [c.captions for c in clips]
    rows, audio_emb, space = [], None, None
    for spec in args.row:
        name, rest = spec.split("=", 1)
        ckpt, strategy = rest.rsplit(":", 1)
        wsac = load_wsac(ckpt)
        if space is None:
            space = wsac.space
            audio_emb = split_embeddings(space, args.manifest, clips, args.emb_cache)
        elif wsac.space != space:
            sys.exit(f"error: {ckpt} is in space {wsac.space}, the table uses {space}")
        cands = wsac.caption_embeddings(audio_emb, strategy=strategy, tau=args.tau, beam=args.beam)
        scores = score_captions(cands, refs)
        rows.append({"name": name, "checkpoint": ckpt, "strategy": strategy, "gap": wsac.gap.get("mode"),
                     "scores": scores, "empty_predictions": sum(not c.strip() for c in cands), "examples": [{"clip": c.id, "generated": g, "refs": c.captions[:2]}
                                                    for c, g in list(zip(clips, cands))[:5]]})
        print(name, json.dumps(scores), flush=True)
    sup = None
    if args.supervised:
        data = json.loads(Path(args.supervised).read_text())
        sup = supervised_scores(data)
    lines = ["| system | strategy | " + " | ".join(COLS) + " | % of supervised CIDEr-D |",
             "|---|---|" + "---|" * (len(COLS) + 1)]
    if sup:
        lines.append("| supervised captioner | – | " + " | ".join(f"{sup[k]:.4f}" if sup[k] is not None else "n/a"
                                                             for k in COLS) + " | 100 |")
    for r in rows:
        pct = (f"{100 * r['scores']['cider_d'] / sup['cider_d']:.1f}"
               if sup and sup.get("cider_d") else "n/a")
        r["pct_supervised_cider_d"] = None if pct == "n/a" else float(pct)
        lines.append(f"| WSAC {r['name']} | {r['strategy']} | " +
                     " | ".join(f"{r['scores'][k]:.4f}" if r['scores'].get(k) is not None else "n/a"
                                for k in COLS) + f" | {pct} |")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = {"manifest": args.manifest, "split": args.split, "clips": len(clips), "space": space,
              "tau": args.tau, "beam": args.beam, "supervised": sup, "rows": rows, "commit": commit,
              "command": " ".join(sys.argv), "table": "\n".join(lines)}
    atomic_write_json(args.out, report)
    atomic_write_text(Path(args.out).with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
