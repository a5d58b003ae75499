"""Leave-one-source-package-out generalization of CLAP (issue 14 item 5).

For each ``--package P``: train the recipe with ``data.exclude_packages=[P]`` (no clip that holds
any recording of P, in train or val), then score the model on the clips built only from P — from
every split, since the model never heard any of them — with the figures of
:mod:`benchmarks.clap_quality` that suit a held-out source: short (one-tag) queries and zero-shot
classification, each with its chance level. Next to it, the in-distribution figure: the model
trained on everything (``--full``) on the test-split clips built only from P (recordings it never
heard, from a package it did). Audio embeddings come from the frozen-tower caches the training
filled (all clips are one 10 s window, the same frames ``search.embed_file`` computes).

Resumable: a package whose run folder holds a checkpoint is not retrained. Writes JSON atomically
and prints a markdown table.

    AUDIOCAP_CACHE=/work/cache nice -n 10 .venv/bin/python benchmarks/clap_lopo.py \\
        -c configs/clap/foley-full.yaml --manifest /work/data/foley-full/manifest-sub.jsonl \\
        --full runs/clap-full --package 0ad-data --package scratch --runs runs/lopo --out lopo.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clap_quality import evaluate  # noqa: E402


def split_frames(recipe, manifest: str) -> dict[str, tuple[torch.Tensor, torch.Tensor, list]]:
    """Cached tower frames of every split of ``manifest`` (the caches CLAP training fills)."""
    from audiocap.data.manifest import read_manifest
    from audiocap.models.clap import build_clap
    from audiocap.train.features import cache_audio_frames, read_cache

    tower = build_clap(recipe.model).audio_tower
    clips = read_manifest(manifest)
    out = {}
    for split in ("train", "val", "test"):
        cs = [c for c in clips if c.split == split and c.captions]
        t, meta = read_cache(cache_audio_frames(tower, manifest, cs, split, recipe.data.cache_dir,
                                                max_seconds=recipe.data.max_seconds, precision=recipe.data.precision))
        assert meta["ids"] == [c.id for c in cs]
        out[split] = (t["frames"], t["mask"], cs)
    return out


def only_from(clip, package: str) -> bool:
    from audiocap.train.clap_data import packages_of

    return packages_of(clip) == {package}


def score(folder: Path, frames: dict, package: str, splits: Sequence[str]) -> dict[str, Any]:
    from audiocap.models.clap import load_clap
    from audiocap.search import ClapEmbedder

    model = load_clap(folder)
    emb, clips = [], []
    with torch.no_grad():
        for split in splits:
            f, m, cs = frames[split]
            keep = [i for i, c in enumerate(cs) if only_from(c, package)]
            if keep:
                emb.append(model.encode_audio(frame_embs=f[keep], mask=m[keep]).numpy())
                clips += [cs[i] for i in keep]
    if not clips:
        return {"n_clips": 0}
    res = evaluate(ClapEmbedder(model), np.concatenate(emb).astype(np.float64), clips)
    res.pop("captions", None)  # caption retrieval among one package's clips says little about the source
    return {"n_clips": len(clips), "splits": list(splits), **res}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from audiocap.config import load_recipe
    from audiocap.fileio import atomic_write_json
    from audiocap.train.clap import ClapRecipe, train_clap

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-c", "--config", required=True)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--full", type=Path, required=True, help="the model trained on every package")
    ap.add_argument("--package", action="append", required=True)
    ap.add_argument("--runs", type=Path, required=True, help="folder for the per-package runs")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("overrides", nargs="*", help="recipe overrides k=v for the held-out runs")
    args = ap.parse_args(argv)
    base = load_recipe(ClapRecipe, args.config, [f"data.manifest={args.manifest}", *args.overrides])
    frames = split_frames(base, args.manifest)
    results: dict[str, Any] = {"manifest": args.manifest, "config": args.config, "full_model": str(args.full),
                               "overrides": args.overrides, "packages": {}}
    for pkg in args.package:
        out = args.runs / pkg
        if not (out / "model.safetensors").exists():
            recipe = load_recipe(ClapRecipe, args.config, [f"data.manifest={args.manifest}", f"out={out}",
                                                         f"data.exclude_packages=[{pkg}]", "trainer.progress_bar=false",
                                                         *args.overrides])
            train_clap(recipe)
        results["packages"][pkg] = {
            "held_out": score(out, frames, pkg, ("train", "val", "test")),
            "held_out_test_split": score(out, frames, pkg, ("test",)),
            "in_distribution_test_split": score(args.full, frames, pkg, ("test",)),
        }
        atomic_write_json(args.out, results)
    print(markdown(results))
    return results


def markdown(results: dict[str, Any]) -> str:
    head = ["package", "clips held out", "zs top-1 held out", "short mAP@10 held out",
            "test clips", "zs top-1 held out (test)", "zs top-1 in-dist (test)", "short mAP@10 in-dist (test)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def f(r, fam, key, sub=None):
        d = r.get(fam)
        d = d.get(sub) if (d and sub) else d
        return f"{d[key]:.3f} ({d['chance'][key]:.3f})" if d and key in d else "-"
    for pkg, r in results["packages"].items():
        h, ht, ind = r["held_out"], r["held_out_test_split"], r["in_distribution_test_split"]
        lines.append("| " + " | ".join([
            pkg, str(h["n_clips"]), f(h, "zero_shot", "top1"), f(h, "short_queries", "mAP@10", "all"),
            str(ht["n_clips"]), f(ht, "zero_shot", "top1"), f(ind, "zero_shot", "top1"),
            f(ind, "short_queries", "mAP@10", "all")]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
