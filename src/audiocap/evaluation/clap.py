"""Evaluate CLAP checkpoints on a manifest split: retrieval both ways, zero-shot tagging, ensembles.

Retrieval: every caption of the split is a text query whose relevant item is its clip (t2a), and
every clip is an audio query whose relevant items are its captions (a2t), scored with R@1/5/10
and mAP@10 as in DCASE 2022–2024 Task 6b. Ensembles average the similarity matrices of several
models. Zero-shot classification (Elizalde et al., CLAP, 2023): each tag of the vocabulary becomes
a prompt (default "the sound of {}"); a clip counts as correct when its highest-scoring tag is one
of its own tags. Chance levels come from the same metrics on random similarity matrices.

Each clip is embedded as search and serving embed its file: every window of the checkpoint's
long-audio policy (:mod:`audiocap.audio.policy`), window embeddings averaged and re-normalized.
Frozen audio towers read the per-window frames from :func:`audiocap.features.cache_window_frames`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from audiocap.data.manifest import Clip, audio_path, read_manifest
from audiocap.zeroshot import DEFAULT_PROMPT, label_prompts


def retrieval_metrics(sim: torch.Tensor, text_to_audio: torch.Tensor) -> dict:
    """Flat ``t2a_R@k`` / ``a2t_R@k`` / ``*_mAP@10`` from ``sim`` (n_text, n_audio) and the clip
    index of each caption, computed by :mod:`audiocap.metrics.retrieval` (DCASE Task 6B)."""
    from audiocap.metrics.retrieval import retrieval_report

    rep = retrieval_report(sim.t(), text_to_audio.cpu().numpy())
    return {f"{p}_{k}": v for p, d in (("t2a", rep["text_to_audio"]), ("a2t", rep["audio_to_text"])) for k, v in d.items()}


def split_clips(manifest: str | os.PathLike, split: str) -> list[Clip]:
    """Clips of ``split`` that have captions (raises naming the manifest if there are none)."""
    clips = [c for c in read_manifest(manifest) if c.split == split and c.captions]
    if not clips:
        raise ValueError(f"{manifest}: no captioned clips in split '{split}'")
    return clips


@torch.no_grad()
def embed_split(model, manifest: str | os.PathLike, clips: list[Clip], split: str, *,
                cache_dir: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Audio embeddings (N, E) and caption embeddings (M, E) of a split, each clip through the
    model's long-audio policy (module docstring). Frozen audio towers read/fill the window cache
    (shared by all checkpoints with the same tower weights and policy) on the model's device."""
    from audiocap.audio.policy import audio_policy_of, pool_embeddings
    from audiocap.features.cache import cache_window_frames, read_window_frames
    from audiocap.features.towers import pad_frames
    from audiocap.inference.clap import embed_clips

    model.eval()
    policy = audio_policy_of(model)
    dev = next(model.parameters()).device
    if model.cfg.freeze_audio:
        windows, _ = read_window_frames(cache_window_frames(model.audio_tower, manifest, clips, split, policy,
                                                            cache_dir, device=dev))
        flat = [f for c in clips for f in windows[c.id]]  # every window of every clip, in clip order
        embs = []
        for i in range(0, len(flat), 256):
            x, mask = pad_frames(flat[i : i + 256])  # (b, T, D), (b, T)
            embs.append(model.encode_audio(frame_embs=x.to(dev), mask=mask.to(dev)).float().cpu())
        embs_all = torch.cat(embs).numpy()  # (W, E)
        rows, start = [], 0
        for c in clips:
            n = len(windows[c.id])
            rows.append(pool_embeddings(embs_all[start : start + n]))
            start += n
        a = torch.from_numpy(np.stack(rows))
    else:
        a = torch.from_numpy(embed_clips(model, [audio_path(manifest, c) for c in clips], policy=policy))
    captions = [c for clip in clips for c in clip.captions]
    text = torch.cat([model.encode_text(captions[i : i + 256]).cpu() for i in range(0, len(captions), 256)])
    return a, text


def zero_shot_accuracy(audio_emb: torch.Tensor, tag_emb: torch.Tensor, clip_tags: list[list[str]],
                       vocab: list[str]) -> float:
    """Top-1 zero-shot accuracy: share of clips (with ≥ 1 tag in ``vocab``) whose most similar
    tag prompt is one of their tags (the cosine ``audiocap classify`` ranks labels by)."""
    from audiocap.zeroshot import label_scores

    pred = label_scores(audio_emb, tag_emb).argmax(1)  # (N,)
    hits = [vocab[int(p)] in set(tags) for p, tags in zip(pred, clip_tags) if set(tags) & set(vocab)]
    return float(np.mean(hits)) if hits else float("nan")


def chance_levels(text_to_audio: torch.Tensor, n_audio: int, clip_tags: list[list[str]], vocab: list[str],
                  *, trials: int = 50, seed: int = 0) -> dict:
    """Expected metrics of a random ranking: retrieval averaged over ``trials`` random similarity
    matrices; zero-shot = mean over clips of |tags ∩ vocab| / |vocab|."""
    g = torch.Generator().manual_seed(seed)
    runs = [retrieval_metrics(torch.rand(len(text_to_audio), n_audio, generator=g), text_to_audio) for _ in range(trials)]
    out = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    vs = set(vocab)
    fr = [len(set(t) & vs) / len(vs) for t in clip_tags if set(t) & vs]
    out["zero_shot_acc"] = float(np.mean(fr)) if fr else float("nan")
    return out


def evaluate_clap(models: dict[str, object], manifest: str | os.PathLike, *, split: str = "test",
                  prompt: str = DEFAULT_PROMPT, vocab: list[str] | None = None, ensemble: bool = True,
                  cache_dir: str | None = None) -> dict:
    """Rows ``name -> metrics`` for each model, the ensemble of the trained ones (mean similarity
    matrices; ``init:`` starting points are left out of it) and chance."""
    clips = split_clips(manifest, split)
    text_to_audio = torch.tensor([i for i, c in enumerate(clips) for _ in c.captions])
    tags = [c.tags for c in clips]
    vocab = vocab or sorted({t for ts in tags for t in ts})
    rows, sims, zs = {}, [], []
    for name, model in models.items():
        a, t = embed_split(model, manifest, clips, split, cache_dir=cache_dir)
        tag_emb = model.encode_text(label_prompts(vocab, prompt)).cpu()
        sims.append(t @ a.t())
        zs.append(a @ tag_emb.t())
        rows[name] = {**retrieval_metrics(sims[-1], text_to_audio),
                      "zero_shot_acc": zero_shot_accuracy(a, tag_emb, tags, vocab)}
    members = [i for i, name in enumerate(models) if not name.startswith("init:")]  # trained models only
    if ensemble and len(members) > 1:
        sim = torch.stack([sims[i] for i in members]).mean(0)
        zero = torch.stack([zs[i] for i in members]).mean(0)  # mean clip–prompt similarity
        acc = zero_shot_accuracy(zero, torch.eye(len(vocab)), tags, vocab)
        names = [list(models)[i] for i in members]
        rows["ensemble(" + "+".join(names) + ")"] = {**retrieval_metrics(sim, text_to_audio), "zero_shot_acc": acc}
    rows["chance"] = chance_levels(text_to_audio, len(clips), tags, vocab)
    return {"manifest": str(manifest), "split": split, "n_audio": len(clips), "n_text": len(text_to_audio),
            "prompt": prompt, "n_tags": len(vocab), "rows": rows}


def load_for_eval(spec: str, device: str | None = None):
    """``FOLDER`` loads a checkpoint (with its long-audio policy); ``init:FOLDER`` rebuilds that
    run's starting point (pretrained towers, projection heads as initialized by the recipe's
    seed, i.e. untrained), windowing audio like the run's checkpoint."""
    from audiocap.inference.clap import load_clap
    from audiocap.models.clap import build_clap

    if spec.startswith("init:"):
        import lightning as L

        from audiocap.checkpoint import read_recipe

        recipe = read_recipe(spec[5:])
        from audiocap.audio.policy import policy_from_recipe

        L.seed_everything(int(recipe.get("trainer", {}).get("seed", 0)), verbose=False)
        model = build_clap(recipe["model"]).to(device or "cpu").eval()
        model.audio_policy = policy_from_recipe(recipe, "clap")
        return model
    if not Path(spec).is_dir():
        raise FileNotFoundError(f"{spec}: checkpoint folder not found")
    return load_clap(spec, device)
