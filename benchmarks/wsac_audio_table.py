"""WSAC on audio: score each (checkpoint, strategy) row on a manifest split, next to a supervised
captioner, and write one JSON + Markdown table (Kouzelis & Katsouros, DCASE 2023, Table 2 style).

Every WSAC checkpoint must live in the same CLAP space (``clap:FOLDER``); the test audio is
embedded once with that CLAP audio tower. Each row decodes those embeddings with one strategy
(direct / nnd / projection); all rows are scored together against the clip's reference captions
(one SPICE run). ``--supervised`` adds the supervised captioner's row from its Evaluator metrics
JSON; ``--rerender TABLE.json`` only redraws an earlier table with a (new) supervised row.

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
from wsac_caption_scores import score_systems  # noqa: E402

from audiocap.data.manifest import audio_path, read_manifest  # noqa: E402
from audiocap.decoding.wsac import load_wsac  # noqa: E402
from audiocap.inference.shared_space import audio_embedder  # noqa: E402
from audiocap.fileio import atomic_write_json, atomic_write_text  # noqa: E402

COLS = ("bleu_4", "meteor", "rouge_l", "cider_d", "spice", "spider", "sbert_sim")


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


def _pct(x: float | None, ref: float | None) -> float | None:
    return None if x is None or not ref else round(100 * x / ref, 1)


def render(rows: list[dict], sup: dict | None, sup_label: str = "supervised captioner") -> list[str]:
    """Markdown table lines: the supervised row (or a pending placeholder) then one row per WSAC
    system, with WSAC's percentage of the supervised CIDEr-D and SPIDEr."""
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    lines = ["| system | strategy | " + " | ".join(COLS) + " | % sup. CIDEr-D | % sup. SPIDEr |",
             "|---|---|" + "---|" * (len(COLS) + 2)]
    if sup:
        lines.append(f"| {sup_label} | – | " + " | ".join(fmt(sup[k]) for k in COLS) + " | 100 | 100 |")
    else:
        lines.append("| supervised captioner | – | " + " | ".join("pending" for _ in COLS) + " | – | – |")
    for r in rows:
        sc = r["scores"]
        r["pct_supervised_cider_d"] = _pct(sc.get("cider_d"), sup and sup.get("cider_d"))
        r["pct_supervised_spider"] = _pct(sc.get("spider"), sup and sup.get("spider"))
        pcts = " | ".join("n/a" if p is None else f"{p:.1f}"
                          for p in (r["pct_supervised_cider_d"], r["pct_supervised_spider"]))
        lines.append(f"| WSAC {r['name']} | {r['strategy']} | " + " | ".join(fmt(sc.get(k)) for k in COLS)
                     + f" | {pcts} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest")
    ap.add_argument("--split", default="test")
    ap.add_argument("--row", action="append", help="NAME=CHECKPOINT:STRATEGY")
    ap.add_argument("--supervised", help="metrics JSON of the supervised captioner on the same split")
    ap.add_argument("--supervised-label", default="supervised captioner", help="name of that row in the table")
    ap.add_argument("--rerender", help="table JSON written by an earlier run: redraw it with --supervised "
                                       "(no decoding, no scoring) into --out")
    ap.add_argument("--tau", type=float, default=0.01)
    ap.add_argument("--beam", type=int, default=3)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--emb-cache", help="safetensors file of the split's audio embeddings: read if it holds "
                                        "this space and these clips, else computed and written")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sup = supervised_scores(json.loads(Path(args.supervised).read_text())) if args.supervised else None
    if args.rerender:
        report = json.loads(Path(args.rerender).read_text())
        rows = report["rows"]
    else:
        if not (args.manifest and args.row):
            sys.exit("error: pass --manifest and at least one --row (or --rerender TABLE.json)")
        rows, report = decode_rows(args)
    lines = render(rows, sup, args.supervised_label)
    report.update({"supervised": sup, "supervised_json": args.supervised, "supervised_label": args.supervised_label,
                   "rows": rows, "table": "\n".join(lines)})
    atomic_write_json(args.out, report)
    atomic_write_text(Path(args.out).with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


def decode_rows(args) -> tuple[list[dict], dict]:
    """Decode every ``--row`` on the split's audio embeddings and score all rows together."""
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
        t0 = time.time()
        cands = wsac.caption_embeddings(audio_emb, strategy=strategy, tau=args.tau, beam=args.beam)
        print(f"{name}: decoded {len(cands)} clips in {time.time() - t0:.0f}s", flush=True)
        rows.append({"name": name, "checkpoint": ckpt, "strategy": strategy, "gap": wsac.gap.get("mode"),
                     "empty_predictions": sum(not c.strip() for c in cands), "candidates": cands,
                     "examples": [{"clip": c.id, "generated": g, "refs": c.captions[:2]}
                                  for c, g in list(zip(clips, cands))[:5]]})
    t0 = time.time()
    scores = score_systems({r["name"]: r["candidates"] for r in rows}, refs)
    print(f"scored {len(rows)} systems in {time.time() - t0:.0f}s", flush=True)
    for r in rows:
        r["scores"] = scores[r["name"]]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return rows, {"manifest": args.manifest, "split": args.split, "clips": len(clips), "ids": [c.id for c in clips],
                  "space": space, "tau": args.tau, "beam": args.beam, "commit": commit,
                  "command": " ".join(sys.argv)}


if __name__ == "__main__":
    main()
