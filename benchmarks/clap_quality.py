"""CLAP quality on a manifest split, the way issue 14 asks: captions, short queries, zero-shot.

For each ``--model NAME=CKPT`` the clips of ``--split`` are embedded through the path users get
(:func:`audiocap.search.load_embedder` + :func:`audiocap.search.embed_file`, which applies the
long-audio window policy) and texts through ``embedder.embed_text``. Three families of figures:

(a) full captions: text->audio and audio->text R@1/5/10 and mAP@10 (DCASE Task 6B,
    :mod:`audiocap.metrics.retrieval`, pessimistic ties).
(b) short queries: one query per tag present in the split (the tag text, "dog barking"); every
    clip carrying the tag is relevant; mAP@10 (AP@10 normalized by min(n_rel, 10)) and R@10 (share
    of queries with a relevant clip in the top 10); ``single_event`` repeats this with only the
    clips that carry exactly one label as relevant (and as the collection).
(c) zero-shot classification over the single-label clips: argmax of cosine over the tag texts
    of every class present among them; top-1 / top-5 accuracy.

Every figure comes with its chance level (the exact expectation under a uniformly random
ranking) and the number of queries / clips. Audio embeddings are cached per (model sha256,
manifest, split) in an .npz beside ``--out``. The JSON is written atomically and a markdown
table is printed.

    nice -n 10 .venv/bin/python benchmarks/clap_quality.py --model base=runs/clap \
        --manifest /work/data/outside/manifest.jsonl --split test --out results.json
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from audiocap.metrics.retrieval import per_query_metrics, rank_metrics, retrieval_report

KS = (1, 5, 10)


def chance_rank_metrics(n_rel: Sequence[int], n_items: int, *, ks: Sequence[int] = KS,
                        map_k: int = 10) -> dict[str, float]:
    """Expected R@k and mAP@k of a uniformly random ranking (mean over queries).

    With n relevant among C items, P(a relevant item in the top k) = 1 - C(C-n, k)/C(C, k), and
    E[AP@K] = (1/min(n, K)) * sum_{r<=K} (n/C) * (1 + (r-1)(n-1)/(C-1)) / r, the same definition
    as :func:`audiocap.metrics.retrieval.rank_metrics` (DCASE Task 6B).
    """
    out: dict[str, list[float]] = {f"R@{k}": [] for k in ks}
    out[f"mAP@{map_k}"] = []
    c = n_items
    for n in n_rel:
        for k in ks:
            kk = min(k, c)
            miss = 1.0
            for i in range(kk):  # C(C-n, k) / C(C, k) as a product
                miss *= max(c - n - i, 0) / (c - i)
            out[f"R@{k}"].append(1.0 - miss)
        ap = sum((n / c) * (1 + (r - 1) * (n - 1) / max(c - 1, 1)) / r for r in range(1, min(map_k, c) + 1))
        out[f"mAP@{map_k}"].append(ap / min(n, map_k))
    return {k: float(np.mean(v)) for k, v in out.items()}


def caption_retrieval(audio_emb: np.ndarray, caption_emb: np.ndarray, audio_of_text: Sequence[int], *,
                      per_item: bool = False) -> dict:
    """(a) text->audio and audio->text R@1/5/10, mAP@10 with full captions, plus chance and counts.

    ``audio_emb`` (A, D) and ``caption_emb`` (T, D) are L2-normalized; ``audio_of_text`` (T,)
    gives each caption's clip (Task 6B protocol, :func:`retrieval_report`). ``per_item`` adds
    ``text_to_audio["per_query"]``: each caption query's R@1 hit and AP@10 (T,) and its clip index.
    """
    aot = np.asarray(audio_of_text)
    sim = audio_emb @ caption_emb.T  # (A, T)
    rep = retrieval_report(sim, aot)
    n_a, n_t = len(audio_emb), len(caption_emb)
    per_clip = np.bincount(aot, minlength=n_a)
    out = {"text_to_audio": {**rep["text_to_audio"], "chance": chance_rank_metrics([1] * n_t, n_a),
                             "n_queries": n_t, "n_items": n_a},
           "audio_to_text": {**rep["audio_to_text"], "chance": chance_rank_metrics(per_clip.tolist(), n_t),
                             "n_queries": n_a, "n_items": n_t}}
    if per_item:
        rel = np.zeros((n_t, n_a), dtype=bool)  # (T, A): each caption's own clip
        rel[np.arange(n_t), aot] = True
        q = per_query_metrics(sim.T, rel, ks=(1,))
        out["text_to_audio"]["per_query"] = {"R@1": q["R@1"].tolist(), "mAP@10": q["mAP@10"].tolist(),
                                             "clip": aot.tolist()}
    return out


def short_query_retrieval(audio_emb: np.ndarray, tag_emb: np.ndarray, clip_tags: Sequence[Sequence[str]],
                          tags: Sequence[str], *, per_item: bool = False) -> dict:
    """(b) one query per tag (row of ``tag_emb``), all clips carrying the tag relevant: mAP@10, R@10.

    ``single_event`` restricts the collection to clips with exactly one distinct tag. Tags with no
    relevant clip in a variant are left out of that variant's queries. ``per_item`` adds each
    variant's ``per_query``: the query tags and their AP@10 and R@10 hit.
    """
    out = {}
    for variant, keep in (("all", [True] * len(clip_tags)),
                          ("single_event", [len(set(t)) == 1 for t in clip_tags])):
        idx = np.flatnonzero(keep)
        rel = np.array([[tag in clip_tags[i] for i in idx] for tag in tags], dtype=bool).reshape(len(tags), len(idx))
        q = np.flatnonzero(rel.any(1))
        if len(idx) == 0 or len(q) == 0:
            out[variant] = {"n_queries": 0, "n_items": int(len(idx))}
            continue
        m = rank_metrics(tag_emb[q] @ audio_emb[idx].T, rel[q], ks=(10,))
        ch = chance_rank_metrics(rel[q].sum(1).tolist(), len(idx), ks=(10,))
        out[variant] = {**m, "chance": ch, "n_queries": int(len(q)), "n_items": int(len(idx))}
        if per_item:
            pq = per_query_metrics(tag_emb[q] @ audio_emb[idx].T, rel[q], ks=(10,))
            out[variant]["per_query"] = {"tag": [tags[i] for i in q], "mAP@10": pq["mAP@10"].tolist(),
                                         "R@10": pq["R@10"].tolist()}
    return out


def zero_shot(audio_emb: np.ndarray, class_emb: np.ndarray, labels: Sequence[int], *,
              per_item: bool = False) -> dict:
    """(c) zero-shot top-1 / top-5 accuracy: argmax cosine of each clip over the class texts.

    ``labels`` (N,) are the true class indices of the single-label clips in ``audio_emb`` (N, D);
    ties count against the clip (the true class is ranked after equal scores). Chance =
    min(k, n_classes) / n_classes. ``per_item`` adds ``per_clip``: each clip's top-1 hit (N,).
    """
    sim = audio_emb @ class_emb.T  # (N, K)
    lab = np.asarray(labels)
    true = sim[np.arange(len(lab)), lab][:, None]
    rank = (sim >= true).sum(1)  # 1 = best; ties pessimistic (true counted once among >=)
    n_cls = class_emb.shape[0]
    out = {"top1": float((rank <= 1).mean()), "top5": float((rank <= 5).mean()),
           "chance": {"top1": 1.0 / n_cls, "top5": min(5, n_cls) / n_cls},
           "n_clips": int(len(lab)), "n_classes": int(n_cls)}
    if per_item:
        out["per_clip"] = {"top1": (rank <= 1).astype(float).tolist()}
    return out


def is_single(clip) -> bool:
    """Exactly one label: ``meta.labels`` when present, else ``tags`` of length 1 (distinct)."""
    labels = (clip.meta or {}).get("labels")
    return len(set(labels)) == 1 if labels else len(set(clip.tags)) == 1


def evaluate(embedder, audio_emb: np.ndarray, clips: list, *, per_item: bool = False) -> dict[str, Any]:
    """All three families for one model, given its (A, D) audio embeddings of ``clips``;
    ``per_item`` adds the per-query / per-clip figures (see each family; zero-shot clips are named
    by id in ``zero_shot["per_clip"]["id"]``)."""
    caps = [(i, c) for i, clip in enumerate(clips) for c in clip.captions]
    res: dict[str, Any] = {}
    if caps:
        cap_emb = np.asarray(embedder.embed_text([c for _, c in caps]), dtype=np.float64)
        res["captions"] = caption_retrieval(audio_emb, cap_emb, [i for i, _ in caps], per_item=per_item)
    tags = sorted({t for c in clips for t in c.tags})
    tag_emb = np.asarray(embedder.embed_text(tags), dtype=np.float64)
    # single_event in (b) follows is_single: a multi-label clip whose labels share one tag gets a marker
    clip_tags = [list(set(c.tags)) if is_single(c) else list(c.tags) + ["\0multi"] for c in clips]
    res["short_queries"] = short_query_retrieval(audio_emb, tag_emb, clip_tags, tags, per_item=per_item)
    single = [i for i, c in enumerate(clips) if is_single(c)]
    classes = sorted({clips[i].tags[0] for i in single})
    if classes:
        cls_emb = tag_emb[[tags.index(t) for t in classes]]
        res["zero_shot"] = zero_shot(audio_emb[single], cls_emb, [classes.index(clips[i].tags[0]) for i in single],
                                     per_item=per_item)
        if per_item:
            res["zero_shot"]["per_clip"]["id"] = [clips[i].id for i in single]
    return res


def embed_clips(embedder, model_sha: str, manifest: Path, clips: list, cache: Path) -> np.ndarray:
    """(A, D) audio embeddings through :func:`audiocap.search.embed_file`, cached in ``cache`` (.npz)."""
    from audiocap.data.manifest import audio_path
    from audiocap.fileio import atomic_path
    from audiocap.search import embed_file

    ids = np.array([c.id for c in clips])
    if cache.exists():
        z = np.load(cache)
        if z["ids"].tolist() == ids.tolist() and str(z["sha"]) == model_sha:
            return z["emb"]
    emb = np.stack([embed_file(embedder, audio_path(manifest, c))[0] for c in clips]).astype(np.float64)
    with atomic_path(cache, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, ids=ids, emb=emb, sha=np.array(model_sha))
    return emb


def embed_from_frames(embedder, frames: Path, manifest: Path, clips: list, n_check: int) -> tuple[np.ndarray, dict]:
    """(A, D) audio embeddings from cached frozen-tower frames of ``clips`` (one window each).

    Identical to the user path (:func:`audiocap.search.embed_file`) when a clip is no longer than
    the model's window: the whole clip is one window, the same tower frames, the same heads. Both
    conditions are checked: every clip's duration fits the window, and ``n_check`` clips spread
    over the split are re-embedded through ``embed_file``; the largest difference is returned.
    """
    import torch

    from audiocap.data.manifest import audio_path
    from audiocap.search import embed_file
    from audiocap.train.features import read_cache

    t, meta = read_cache(frames)
    if meta["ids"] != [c.id for c in clips]:
        sys.exit(f"{frames}: cached clip ids differ from the split's clips; pass the cache of this split")
    model = embedder.model
    window = float(getattr(getattr(model, "audio_policy", None), "clip_seconds", 10.0))
    long = [c.id for c in clips if (c.duration or 0) > window + 1e-6]
    if long:
        sys.exit(f"--frames: {len(long)} clips are longer than the {window:g} s window (e.g. {long[0]}); drop --frames")
    with torch.no_grad():
        emb = np.concatenate([model.encode_audio(frame_embs=t["frames"][i:i + 256], mask=t["mask"][i:i + 256]).numpy()
                              for i in range(0, len(clips), 256)]).astype(np.float64)
    picks = sorted({int(i) for i in np.linspace(0, len(clips) - 1, min(n_check, len(clips)))})
    diff = max(float(np.max(np.abs(embed_file(embedder, audio_path(manifest, clips[i]))[0] - emb[i]))) for i in picks)
    if diff > 1e-3:
        sys.exit(f"--frames: cached frames give embeddings {diff:.2e} away from the user path; drop --frames")
    return emb, {"frames": str(frames), "checked_clips": len(picks), "max_abs_diff_vs_embed_file": diff}


def markdown(results: dict[str, Any]) -> str:
    """One row per model: each figure as value (chance)."""
    head = ["model", "t2a R@1", "t2a R@10", "t2a mAP@10", "a2t R@1", "a2t mAP@10",
            "short mAP@10", "short R@10", "single mAP@10", "zs top-1", "zs top-5"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def f(d, key, ck=None):
        if not d or key not in d:
            return "-"
        return f"{d[key]:.3f} ({d['chance'][ck or key]:.3f})"
    for name, r in results["models"].items():
        cap = r.get("captions", {})
        sq = r["short_queries"]
        lines.append("| " + " | ".join([
            name, f(cap.get("text_to_audio"), "R@1"), f(cap.get("text_to_audio"), "R@10"),
            f(cap.get("text_to_audio"), "mAP@10"), f(cap.get("audio_to_text"), "R@1"),
            f(cap.get("audio_to_text"), "mAP@10"), f(sq["all"], "mAP@10"), f(sq["all"], "R@10"),
            f(sq["single_event"], "mAP@10"), f(r.get("zero_shot"), "top1"), f(r.get("zero_shot"), "top5")]) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, *, load=None) -> dict[str, Any]:
    """Parse arguments, score every model, write the JSON atomically, print the table."""
    from audiocap.data.manifest import read_manifest
    from audiocap.fileio import atomic_write_json
    from audiocap.search import load_embedder, model_fingerprint

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", required=True, help="NAME=CKPT (repeatable)")
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--frames", type=Path, default=None,
                    help="a frozen-tower cache file of this split (audiocap.train.features) to embed from "
                         "instead of running the tower per model; allowed only when every clip fits one "
                         "window of the model's policy, and checked against the user path on --check clips")
    ap.add_argument("--check", type=int, default=8, help="clips re-embedded through search.embed_file with --frames")
    args = ap.parse_args(argv)
    clips = [c for c in read_manifest(args.manifest) if c.split == args.split]
    if not clips:
        sys.exit(f"{args.manifest}: no clip in split '{args.split}'; pick another --split")
    mtag = hashlib.md5(str(args.manifest.resolve()).encode()).hexdigest()[:8]
    results: dict[str, Any] = {"manifest": str(args.manifest), "split": args.split, "n_clips": len(clips),
                               "models": {}}
    for spec in args.model:
        name, _, ckpt = spec.partition("=")
        if not ckpt:
            sys.exit(f"--model {spec}: write NAME=CKPT (a CLAP checkpoint folder)")
        sha = model_fingerprint(ckpt)["sha256"]
        embedder = (load or load_embedder)(ckpt)
        cache = args.out.parent / f".{args.out.stem}.{sha[:12]}.{mtag}.{args.split}.npz"
        if args.frames is not None:
            audio_emb, check = embed_from_frames(embedder, args.frames, args.manifest, clips, args.check)
        else:
            audio_emb, check = embed_clips(embedder, sha, args.manifest, clips, cache), None
        results["models"][name] = {"checkpoint": ckpt, "sha256": sha, **evaluate(embedder, audio_emb, clips)}
        if check is not None:
            results["models"][name]["frames_check"] = check
    atomic_write_json(args.out, results)
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
