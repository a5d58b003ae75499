"""Ablations with their spread (issue 17 item 1): every recipe x seed, mean ± sd, paired bootstrap.

CLAP side: the baseline recipe (``--clap-config``, the shipped configs/clap/foley-12k.yaml) and
CLAP-TAG on top of it (MSLE and MAE at λ = 1, MSLE at λ = 0.3 and 3), one frozen tagger fitted
once on the training tags and shared by every TAG run. Captioner side: the baseline CE and the
auxiliary losses on top of the same recipe (``--captioner-config``, configs/captioner/foley-12k.yaml,
changing only ``loss.*``): CL4AC at weights 1, 0.3, 0.1, CE + 0.1 NT-Xent, NT-Xent after CE-only
epochs (the first third of training), and the ensemble of the CE and NT-Xent models of one seed.

Each run trains into ``<runs>/<side>/<recipe>/s<seed>``; a run with the marker ``grid_done.json``
is never retrained, an unfinished one resumes from its ``lightning/last.ckpt`` (the trainers'
own resume). Each run's test figures are cached in ``grid_eval.json`` (written atomically, keyed
by the checkpoint's sha256 and the evaluation settings), so a SIGKILL at any point loses at most
the step in progress. Audio comes from the frozen-tower cache of the test split (the training
crops, identical to the user path for clips no longer than the window; longer clips are
refused), texts from the frozen text tower's cache.

Figures per run: CLAP text->audio R@1 and mAP@10 over the caption queries, short (one-tag) query
mAP@10, zero-shot top-1 (:mod:`benchmarks.clap_quality`); captioner beam-k corpus BLEU-4,
METEOR, ROUGE-L, CIDEr-D, sbert_sim, vocabulary (SPICE and SPIDEr with ``--spice``), from
:class:`audiocap.metrics.evaluator.Evaluator`. Summary per recipe: mean ± sd over seeds (ddof 1),
n; per recipe vs baseline: the paired bootstrap of :mod:`audiocap.evaluation.bootstrap` over test
clips (caption queries averaged per clip; short queries: over tag queries; zero-shot: over the
single-label clips), each unit's figure averaged over the seeds of each recipe first.

    nice -n 19 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ablation_grid.py \\
        --manifest data/foley-full/manifest-12k.jsonl --clap-epochs 4 --captioner-epochs 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clap_quality import evaluate as clap_evaluate  # noqa: E402

from audiocap.evaluation.bootstrap import mean_sd, paired_bootstrap  # noqa: E402
from audiocap.fileio import atomic_write_json, atomic_write_text, file_hash  # noqa: E402

DONE, EVAL, PRED = "grid_done.json", "grid_eval.json", "grid_pred.json"
EVAL_VERSION = 1  # bump when the cached figures change meaning


def _tag(reg: str, weight: float) -> list[str]:
    return ["tag.enabled=true", f"tag.reg={reg}", f"tag.weight={weight}"]


def _aux(aux: str, weight: float, delayed: bool = False) -> list[str]:
    return [f"loss.aux={aux}", f"loss.weight={weight}", "loss.ce_only_epochs={delay}" if delayed else "loss.ce_only_epochs=0"]


CLAP_GRID: dict[str, tuple[str, list[str]]] = {  # name: (label, overrides on top of the baseline recipe)
    "clap": ("CLAP (shipped recipe; baseline)", ["tag.enabled=false"]),
    "tag_msle": ("CLAP-TAG, MSLE, λ = 1", _tag("msle", 1.0)),
    "tag_mae": ("CLAP-TAG, MAE, λ = 1", _tag("mae", 1.0)),
    "tag_msle_l0.3": ("CLAP-TAG, MSLE, λ = 0.3", _tag("msle", 0.3)),
    "tag_msle_l3": ("CLAP-TAG, MSLE, λ = 3", _tag("msle", 3.0)),
}
CAPTIONER_GRID: dict[str, tuple[str, list[str]]] = {
    "ce": ("CE (baseline)", ["loss.aux=none", "loss.ce_only_epochs=0"]),
    "cl4ac_w1": ("CE + CL4AC, weight 1", _aux("cl4ac", 1.0)),
    "cl4ac_w0.3": ("CE + CL4AC, weight 0.3", _aux("cl4ac", 0.3)),
    "cl4ac_w0.1": ("CE + CL4AC, weight 0.1", _aux("cl4ac", 0.1)),
    "ntxent": ("CE + 0.1 NT-Xent", _aux("ntxent", 0.1)),
    "ntxent_delayed": ("CE, then + 0.1 NT-Xent", _aux("ntxent", 0.1, delayed=True)),
}
ENSEMBLES = {"ensemble": ("ensemble: CE + NT-Xent models of one seed", ("ce", "ntxent"))}
BASELINE = {"clap": "clap", "captioner": "ce"}
CLAP_FIGURES = ("t2a_R@1", "t2a_mAP@10", "short_mAP@10", "zs_top1")
CAPTION_METRICS = ("bleu_4", "meteor", "rouge_l", "cider_d", "sbert_sim", "vocab")
CORPUS_ONLY = ("bleu_4", "vocab")  # no per-item score that averages to the corpus figure


# --- training -------------------------------------------------------------------------------

def train_clap_run(config: str, overrides: list[str]) -> Path:
    """Train (or resume) one CLAP run; the folder holds ``model.safetensors`` when it returns."""
    from audiocap.config import load_recipe
    from audiocap.train.clap import ClapRecipe, train_clap

    out = Path(train_clap(load_recipe(ClapRecipe, config, overrides)))
    if not (out / "model.safetensors").exists():  # killed between the last step and the save: redo
        out = Path(train_clap(load_recipe(ClapRecipe, config, [*overrides, "resume=false"])))
    return out


def train_captioner_run(config: str, overrides: list[str]) -> Path:
    """Train (or resume) one captioner run; returns its checkpoint folder (best epoch by train.monitor)."""
    from audiocap.config import load_recipe
    from audiocap.train.captioner import CaptionerRecipe, train_captioner

    return Path(train_captioner(load_recipe(CaptionerRecipe, config, overrides), resume=True))


TRAINERS: dict[str, Callable[[str, list[str]], Path]] = {"clap": train_clap_run, "captioner": train_captioner_run}


def ensure_trained(side: str, folder: Path, config: str, overrides: list[str], log: list) -> dict | None:
    """The run's ``grid_done.json`` (training it first unless it is there); None if not trained."""
    done = folder / DONE
    if done.exists():
        return json.loads(done.read_text())
    if log is None:
        return None
    print(f"[grid] train {side} {folder}", flush=True)
    t0 = time.time()
    ckpt = TRAINERS[side](config, overrides)
    info = {"checkpoint": str(ckpt), "sha256": file_hash(ckpt / "model.safetensors"), "config": config,
            "overrides": overrides, "seconds": round(time.time() - t0, 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    atomic_write_json(done, info)
    log.append(str(folder))
    return info


# --- evaluation -----------------------------------------------------------------------------

def test_clips(manifest: str, split: str, window: float) -> list:
    """The captioned clips of ``split``; every one must fit one ``window`` (else the cached
    training crop is not what the user path computes)."""
    from audiocap.data.manifest import read_manifest

    clips = [c for c in read_manifest(manifest) if c.split == split and c.captions]
    if not clips:
        sys.exit(f"{manifest}: no captioned clip in split '{split}'")
    long = [c.id for c in clips if (c.duration or 0) > window + 1e-6]
    if long:
        sys.exit(f"{manifest}: {len(long)} {split} clips are longer than the {window:g} s window (e.g. {long[0]}); "
                 "the grid scores one cached window per clip")
    return clips


class CachedTextEmbedder:
    """``embed_text`` of a CLAP model through its frozen text tower's feature cache (the cache
    training uses), so each model only runs its projection head over the test texts."""

    def __init__(self, model, texts: list[str], cache_dir: str | None) -> None:
        from audiocap.train.features import cache_text_features, read_cache

        self.model, self.row = model, {t: i for i, t in enumerate(texts)}
        self.feats = read_cache(cache_text_features(model.text_tower, texts, cache_dir))[0]["feats"]

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.model.encode_text(text_feats=self.feats[[self.row[t] for t in texts]]).numpy()


def clap_figures(folder: Path, manifest: str, split: str, precision: str = "") -> dict[str, Any]:
    """clap_quality's figures with per-item outputs for one CLAP checkpoint, from cached frames
    (tower arithmetic ``precision``, default the recipe's)."""
    import torch

    from audiocap.checkpoint import read_recipe
    from audiocap.embed import embed_text
    from audiocap.models.clap import load_clap
    from audiocap.train.features import cache_audio_frames, read_cache

    recipe = read_recipe(folder)
    if not (recipe["model"].get("freeze_audio") and recipe["model"].get("freeze_text")):
        sys.exit(f"{folder}: the grid scores CLAP from cached frozen-tower features; train with frozen towers")
    model = load_clap(folder)
    data = recipe["data"]
    clips = test_clips(manifest, split, float(data["max_seconds"]))
    cache_dir = data.get("cache_dir") or None
    path = cache_audio_frames(model.audio_tower, manifest, clips, split, cache_dir,
                              max_seconds=float(data["max_seconds"]), precision=precision or data.get("precision", "fp32"))
    t, meta = read_cache(path)
    if meta["ids"] != [c.id for c in clips]:
        sys.exit(f"{path}: cached clip ids differ from the split's clips; delete the file so it is recomputed")
    with torch.no_grad():
        audio = torch.cat([model.encode_audio(frame_embs=t["frames"][i:i + 256], mask=t["mask"][i:i + 256])
                           for i in range(0, len(clips), 256)]).double().numpy()
    texts = sorted({cap for c in clips for cap in c.captions} | {tag for c in clips for tag in c.tags})
    emb = CachedTextEmbedder(model, texts, cache_dir)
    probe = texts[:8]
    text_diff = float(np.abs(emb.embed_text(probe) - np.asarray(embed_text(model, probe))).max())
    if text_diff > 1e-4:
        sys.exit(f"{folder}: cached text features give embeddings {text_diff:.1e} away from embed_text")
    res = clap_evaluate(emb, audio, clips, per_item=True)
    res["check"] = {"audio_cache": str(path), "precision": meta.get("precision"), "text_max_abs_diff": text_diff}
    return res


def clap_summary(res: dict) -> tuple[dict[str, float], dict[str, list[float]]]:
    """(corpus figures, per-unit figures) of one CLAP run; caption queries averaged per clip."""
    figs, units = {}, {}
    t2a = res.get("captions", {}).get("text_to_audio")
    if t2a:
        pq = t2a["per_query"]
        clip = np.asarray(pq["clip"])
        n = np.bincount(clip)
        for key, name in (("R@1", "t2a_R@1"), ("mAP@10", "t2a_mAP@10")):
            figs[name] = t2a[key]
            units[name] = (np.bincount(clip, weights=pq[key], minlength=len(n)) / np.maximum(n, 1)).tolist()
    sq = res["short_queries"]["all"]
    if sq.get("n_queries"):
        figs["short_mAP@10"], units["short_mAP@10"] = sq["mAP@10"], sq["per_query"]["mAP@10"]
    if "zero_shot" in res:
        figs["zs_top1"], units["zs_top1"] = res["zero_shot"]["top1"], res["zero_shot"]["per_clip"]["top1"]
    return figs, units


def caption_test_split(checkpoints: list[Path], manifest: str, split: str, beam: int,
                       precision: str = "") -> dict[str, Any]:
    """Beam-``beam`` captions of the test clips by one captioner or an ensemble. Frames come from
    the training cache of the split (the recipe's tower and clip length; tower arithmetic
    ``precision``, default the recipe's), decoding settings (max_len, no_repeat_ngram, alpha) from
    the first checkpoint's recipe."""
    from audiocap.captioning import CaptionPipeline, load_captioner
    from audiocap.train.captioner_data import load_frame_tower, split_frames

    members = [load_captioner(c) for c in checkpoints]
    r = members[0].recipe
    clips = test_clips(manifest, split, float(r["clip_seconds"]))
    tower = load_frame_tower(r["tower"]["name"], r["tower"].get("options"))
    frames = split_frames(manifest, clips, split, tower, clip_seconds=float(r["clip_seconds"]),
                          cache_dir=r["data"].get("cache_dir") or None,
                          precision=precision or r["data"].get("precision", "fp32"))
    pipe = CaptionPipeline(members, beam=beam, tower=tower)
    t0 = time.time()
    preds = [pipe.vocab.decode(h.tokens) for h in pipe.caption_frames([frames[c.id] for c in clips])]
    return {"ids": [c.id for c in clips], "predictions": preds, "references": [c.captions for c in clips],
            "empty": sum(not p for p in preds), "decode_seconds": round(time.time() - t0, 1), "beam": beam,
            "no_repeat_ngram": pipe.no_repeat_ngram, "max_len": pipe.max_len, "alpha": pipe.alpha}


def score_systems(decoded: dict[str, dict], metrics: list[str]) -> dict[str, dict]:
    """Score several systems' captions of the same clips in one :meth:`Evaluator.evaluate_many`
    call (the references tokenized and sentence-embedded once); per system the corpus scores,
    the per-item scores (None for corpus-only figures) and what was decoded."""
    from audiocap.metrics.evaluator import Evaluator

    refs = next(iter(decoded.values()))["references"]
    if any(d["references"] != refs for d in decoded.values()):
        raise ValueError("the systems were decoded on different clips; they cannot be scored together")
    scores = Evaluator(metrics).evaluate_many({k: [p or "empty" for p in d["predictions"]] for k, d in decoded.items()},
                                              refs)
    return {k: caption_scores(decoded[k], scores[k]) for k in decoded}


def caption_scores(decoded: dict, scores: dict) -> dict[str, Any]:
    out = {k: v for k, v in decoded.items() if k != "references"}
    out["metrics"] = {}
    for name, m in scores.items():
        out["metrics"][name] = {"available": m.available, "reason": m.reason, "score": m.score,
                                "per_item": None if m.per_item is None or name in CORPUS_ONLY
                                else [None if not np.isfinite(x) else float(x) for x in m.per_item]}
    c = out["metrics"].get("cider_d")
    if c and c["available"]:  # coco-caption's CIDEr-D is the mean of the per-item scores
        out["cider_d_mean_of_items_minus_corpus"] = float(np.mean(c["per_item"]) - c["score"])
    return out


def caption_summary(res: dict) -> tuple[dict[str, float], dict[str, list[float]]]:
    figs, units = {}, {}
    for name, m in res["metrics"].items():
        if m["available"]:
            figs[name] = m["score"]
            if m["per_item"] is not None:
                units[name] = [np.nan if x is None else x for x in m["per_item"]]
    return figs, units


def read_cached(path: Path, key: dict) -> dict | None:
    """The ``result`` saved in ``path`` under ``key``, or None."""
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return saved["result"]
    return None


def cached_eval(folder: Path, key: dict, compute: Callable[[], dict], log: list, name: str = EVAL) -> dict:
    """``compute()`` once per ``key``: the result lives in ``<folder>/<name>`` (written atomically)."""
    result = read_cached(folder / name, key)
    if result is not None:
        return result
    print(f"[grid] {'decode' if name == PRED else 'evaluate'} {folder}", flush=True)
    result = compute()
    atomic_write_json(folder / name, {"key": key, "result": result})
    if name == EVAL:
        log.append(str(folder))
    return result


# --- summary --------------------------------------------------------------------------------

def summarize(per_seed: dict[str, dict[int, tuple[dict, dict]]], baseline: str, figures: Sequence[str],
              *, resamples: int) -> dict[str, Any]:
    """Mean ± sd per recipe and figure over its seeds; paired bootstrap of each recipe vs ``baseline``."""
    out: dict[str, Any] = {}
    base = per_seed.get(baseline, {})
    for name, seeds in per_seed.items():
        row: dict[str, Any] = {"seeds": sorted(seeds), "figures": {}, "vs_baseline": {}}
        for fig in figures:
            vals = [seeds[s][0][fig] for s in sorted(seeds) if fig in seeds[s][0]]
            row["figures"][fig] = {**mean_sd(vals), "values": vals}
            if name == baseline or not base or not vals or not all(fig in seeds[s][1] for s in seeds):
                continue
            if not all(fig in base[s][1] for s in base):
                continue
            a = np.nanmean([seeds[s][1][fig] for s in sorted(seeds)], axis=0)  # (U,) mean over this recipe's seeds
            b = np.nanmean([base[s][1][fig] for s in sorted(base)], axis=0)
            if a.shape != b.shape:
                raise ValueError(f"{name} vs {baseline}: {fig} has {a.shape} vs {b.shape} units; not paired")
            row["vs_baseline"][fig] = paired_bootstrap(a, b, n_resamples=resamples, seed=0)
        out[name] = row
    return out


def _cell(f: dict) -> str:
    if not f or f.get("mean") is None:
        return "-"
    return f"{f['mean']:.3f} ± {f['sd']:.3f}" if f.get("sd") is not None else f"{f['mean']:.3f} (one seed)"


def markdown(side: dict[str, Any], labels: dict[str, str], figures: Sequence[str], baseline: str) -> str:
    """Two tables: mean ± sd (n) per recipe, then recipe − baseline with its bootstrap interval."""
    head = ["recipe", "n seeds", *figures]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in side.items():
        lines.append("| " + " | ".join([labels.get(name, name), str(len(row["seeds"])),
                                        *[_cell(row["figures"].get(f, {})) for f in figures]]) + " |")
    boot = [f for f in figures if any(f in r["vs_baseline"] for r in side.values())]
    if boot:
        lines += ["", f"| recipe − {labels.get(baseline, baseline)} | " + " | ".join(f"Δ {f} [95 % CI]" for f in boot)
                  + " |", "|" + "---|" * (len(boot) + 1)]
        for name, row in side.items():
            if name == baseline:
                continue
            cells = []
            for f in boot:
                b = row["vs_baseline"].get(f)
                cells.append("-" if b is None else
                             f"{b['diff']:+.3f} [{b['low']:+.3f}, {b['high']:+.3f}] {'**real**' if b['real'] else 'not real'}")
            lines.append("| " + " | ".join([labels.get(name, name), *cells]) + " |")
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------

def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[1], check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class StopGrid(Exception):
    """--max-train trainings are done in this call (a deliberate stop; re-run to continue)."""


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", default="data/foley-full/manifest-12k.jsonl")
    ap.add_argument("--split", default="test")
    ap.add_argument("--clap-config", default="configs/clap/foley-12k.yaml")
    ap.add_argument("--captioner-config", default="configs/captioner/foley-12k.yaml")
    ap.add_argument("--runs", type=Path, default=Path("runs/issue17"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/issue17/grid.json"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--side", choices=("all", "clap", "captioner"), default="all")
    ap.add_argument("--only", action="append", default=[], help="recipe names to run (default: all; repeatable)")
    ap.add_argument("--clap-epochs", type=int, default=0, help="trainer.max_epochs (0 = the recipe's)")
    ap.add_argument("--captioner-epochs", type=int, default=0, help="train.epochs (0 = the recipe's)")
    ap.add_argument("--delay-epochs", type=int, default=0,
                    help="CE-only epochs of ntxent_delayed (0 = a third of the captioner epochs, at least 1)")
    ap.add_argument("--beam", type=int, default=3)
    ap.add_argument("--metrics", default=",".join(CAPTION_METRICS), help="Evaluator metrics, comma-separated")
    ap.add_argument("--spice", action="store_true", help="add SPICE and SPIDEr (Java CoreNLP: slow)")
    ap.add_argument("--set-clap", action="append", default=[], help="extra CLAP recipe override k=v")
    ap.add_argument("--set-captioner", action="append", default=[], help="extra captioner recipe override k=v")
    ap.add_argument("--test-precision", default="", choices=("", "fp32", "bf16", "auto"),
                    help="tower arithmetic of the test frames (default: each recipe's data.precision)")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--no-train", action="store_true", help="evaluate and summarize the finished runs only")
    ap.add_argument("--max-train", type=int, default=0, help="stop after N trainings in this call (0 = no limit)")
    args = ap.parse_args(argv)

    from audiocap.config import load_recipe
    from audiocap.train.captioner import CaptionerRecipe
    from audiocap.train.clap import ClapRecipe

    clap_base = load_recipe(ClapRecipe, args.clap_config, args.set_clap)
    cap_base = load_recipe(CaptionerRecipe, args.captioner_config, args.set_captioner)
    clap_epochs = args.clap_epochs or clap_base.trainer.max_epochs
    cap_epochs = args.captioner_epochs or cap_base.train.epochs
    delay = args.delay_epochs or max(1, round(cap_epochs / 3))
    metrics = [m for m in args.metrics.split(",") if m] + (["spice", "spider"] if args.spice else [])
    trained: list[str] = []
    evaluated: list[str] = []
    log = None if args.no_train else trained

    def want(name: str) -> bool:
        return not args.only or name in args.only

    def train(side, name, seed, folder, config, extra):
        if args.max_train and len(trained) >= args.max_train and not (folder / DONE).exists():
            raise StopGrid
        return ensure_trained(side, folder, config, extra, log)

    results: dict[str, Any] = {"manifest": args.manifest, "split": args.split, "seeds": args.seeds,
                               "commit": _git_commit(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                               "load_average": [round(x, 2) for x in os.getloadavg()], "resamples": args.resamples,
                               "test_precision": args.test_precision or "each recipe's data.precision"}
    stopped = False
    try:
        if args.side in ("all", "clap"):
            per_seed: dict[str, dict[int, tuple]] = {}
            for seed in args.seeds:  # seed-major: a cut-short grid still has every recipe at equal n
                for name, (_, extra) in CLAP_GRID.items():
                    if not want(name):
                        continue
                    folder = args.runs / "clap" / name / f"s{seed}"
                    ov = [f"data.manifest={args.manifest}", *args.set_clap, *extra, f"out={folder}",
                          f"trainer.seed={seed}", f"trainer.max_epochs={clap_epochs}", "trainer.progress_bar=false"]
                    if extra and extra[0] == "tag.enabled=true":
                        ov.append(f"tag.tagger={args.runs / 'clap' / 'tagger'}")
                    info = train("clap", name, seed, folder, args.clap_config, ov)
                    if info is None:
                        continue
                    key = {"version": EVAL_VERSION, "sha256": info["sha256"], "manifest": args.manifest, "split": args.split,
                           "test_precision": args.test_precision}
                    res = cached_eval(folder, key, lambda: clap_figures(Path(info["checkpoint"]), args.manifest, args.split,
                                                                        args.test_precision), evaluated)
                    per_seed.setdefault(name, {})[seed] = clap_summary(res)
            results["clap"] = {"epochs": clap_epochs, "config": args.clap_config,
                               "selection": "weights at the end of training (no checkpoint selection)",
                               "recipes": summarize(per_seed, BASELINE["clap"], CLAP_FIGURES, resamples=args.resamples)}
        if args.side in ("all", "captioner"):
            per_seed = {}
            figures = [m for m in (*CAPTION_METRICS, "spice", "spider") if m in metrics]
            for seed in args.seeds:
                ckpts, systems = {}, {}  # systems: folder -> (recipe, checkpoint shas, checkpoints)
                for name, (_, extra) in CAPTIONER_GRID.items():
                    if not want(name):
                        continue
                    folder = args.runs / "captioner" / name / f"s{seed}"
                    ov = [f"data.manifest={args.manifest}", *args.set_captioner,
                          *[e.format(delay=delay) for e in extra], f"train.out={folder}", f"train.seed={seed}",
                          f"train.epochs={cap_epochs}", "train.progress=false"]
                    info = train("captioner", name, seed, folder, args.captioner_config, ov)
                    if info is None:
                        continue
                    ckpts[name] = info
                    systems[folder] = (name, [info])
                for name, (_, members) in ENSEMBLES.items():
                    if want(name) and all(m in ckpts for m in members):
                        systems[args.runs / "captioner" / name / f"s{seed}"] = (name, [ckpts[m] for m in members])
                pending = {}  # decode each system once (cached), then score the unscored ones together
                for folder, (name, infos) in systems.items():
                    folder.mkdir(parents=True, exist_ok=True)
                    key = {"version": EVAL_VERSION, "sha256": [i["sha256"] for i in infos], "manifest": args.manifest,
                           "split": args.split, "beam": args.beam, "test_precision": args.test_precision}
                    if read_cached(folder / EVAL, {**key, "metrics": metrics}) is None:
                        paths = [Path(i["checkpoint"]) for i in infos]
                        pending[folder] = (key, cached_eval(folder, key, lambda: caption_test_split(
                            paths, args.manifest, args.split, args.beam, args.test_precision), evaluated, name=PRED))
                if pending:
                    print(f"[grid] score {len(pending)} captioner system(s) of seed {seed}", flush=True)
                    scored = score_systems({str(f): d for f, (_, d) in pending.items()}, metrics)
                    for folder, (key, _) in pending.items():
                        atomic_write_json(folder / EVAL, {"key": {**key, "metrics": metrics}, "result": scored[str(folder)]})
                        evaluated.append(str(folder))
                for folder, (name, infos) in systems.items():
                    key = {"version": EVAL_VERSION, "sha256": [i["sha256"] for i in infos], "manifest": args.manifest,
                           "split": args.split, "beam": args.beam, "test_precision": args.test_precision, "metrics": metrics}
                    per_seed.setdefault(name, {})[seed] = caption_summary(read_cached(folder / EVAL, key))
            sel = cap_base.train.monitor
            results["captioner"] = {
                "epochs": cap_epochs, "delay_epochs": delay, "config": args.captioner_config, "beam": args.beam,
                "metrics": metrics, "spice": args.spice,
                "selection": f"checkpoint of the epoch with the {'lowest' if sel == 'val/ce' else 'highest'} {sel}",
                "recipes": summarize(per_seed, BASELINE["captioner"], figures, resamples=args.resamples)}
    except StopGrid:
        stopped = True
        print(f"[grid] stopped after {len(trained)} training(s) (--max-train); re-run to continue", flush=True)
    results["trained"], results["evaluated"], results["stopped"] = trained, evaluated, stopped
    if stopped:
        return results
    results["markdown"] = {}
    if "clap" in results:
        labels = {k: v[0] for k, v in CLAP_GRID.items()}
        results["markdown"]["clap"] = markdown(results["clap"]["recipes"], labels, CLAP_FIGURES, BASELINE["clap"])
    if "captioner" in results:
        labels = {k: v[0] for k, v in {**CAPTIONER_GRID, **ENSEMBLES}.items()}
        figs = [m for m in (*CAPTION_METRICS, "spice", "spider") if m in metrics]
        results["markdown"]["captioner"] = markdown(results["captioner"]["recipes"], labels, figs, BASELINE["captioner"])
    atomic_write_json(args.out, results)
    text = "\n\n".join(results["markdown"].values())
    atomic_write_text(args.out.with_suffix(".md"), text + "\n")
    print(text)
    return results


if __name__ == "__main__":
    sys.exit(3 if main().get("stopped") else 0)
