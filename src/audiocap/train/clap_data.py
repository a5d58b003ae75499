"""Data for CLAP training: (clip, caption) pairs from a manifest, with frozen-tower caching.

Every caption of every clip is one training pair (so an epoch sees all captions); pairs from the
same clip share a group id that :func:`audiocap.losses.clip_loss` removes from the negatives.
Frozen towers are run once and read from the disk cache (:mod:`audiocap.train.features`);
trainable towers get waveforms (padded/cropped to ``max_seconds``) or token ids. With an image
tower (CLAIP) each pair also carries the cached features of its clip's picture and a flag saying
whether the clip has one (the manifest's optional ``image`` field).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset

from audiocap.audio.io import load_audio
from audiocap.data.manifest import Clip, audio_path, read_manifest
from audiocap.train.callbacks import ResumableLoader
from audiocap.train.features import cache_audio_frames, cache_image_features, cache_text_features, read_cache


@dataclass
class DataRecipe:
    """Where the pairs come from."""

    manifest: str = ""
    train_split: str = "train"
    val_split: str = "val"
    max_seconds: float = 10.0
    cache_dir: str | None = None
    num_workers: int = 0
    precision: str = "fp32"  # frozen-tower arithmetic for the cache: auto | fp32 | bf16
    augment_versions: int = 0  # augmented versions of each train clip cached beside the clean one
    augment_seed: int = 0
    short_texts: bool = False  # also train on one-event phrases of each clip's tags (multi-positive)
    exclude_packages: list[str] = field(default_factory=list)  # drop clips built from these source packages


def packages_of(clip: Clip) -> set[str]:
    """Source packages a clip was built from (foley ``source`` = "foley:pkgA,pkgB")."""
    src = clip.source or ""
    return set(src.split(":", 1)[1].split(",")) if src.startswith("foley:") else set()


def tag_phrases(tags: list[str]) -> tuple[list[str], list[int]]:
    """Short texts for each tag: the tag itself ("dog barking") plus, when the foley lexicon
    knows the tag, its clauses and gerunds ("a dog barks", "a barking dog", ...).

    Returns (phrases, index of the tag of each phrase); phrases are unique.
    """
    from audiocap.data.foley.captions import lexicon

    by_tag = {e["tag"]: e for e in lexicon()["labels"].values()}
    phrases, owner, seen = [], [], set()
    for j, tag in enumerate(tags):
        entry = by_tag.get(tag, {})
        for ph in [tag, *entry.get("clause", []), *entry.get("gerund", [])]:
            if ph not in seen:
                seen.add(ph)
                phrases.append(ph)
                owner.append(j)
    return phrases, owner


class SplitData:
    """One split: its clips, the flat caption list, and cached tower outputs when frozen."""

    def __init__(self, manifest: str, clips: list[Clip]) -> None:
        self.manifest, self.clips = manifest, clips
        self.captions = [c for clip in clips for c in clip.captions]  # (M,)
        self.caption_clip = torch.tensor([i for i, clip in enumerate(clips) for _ in clip.captions])  # (M,)
        self.frames = self.mask = self.text_feats = None
        self.versions: list[torch.Tensor] = []  # augmented frame versions (N, T, D), same mask
        self.tag_hot: torch.Tensor | None = None  # (N, C) multi-hot over the short-text tags
        self.image_feats: torch.Tensor | None = None  # (N, Di) cached image-tower features (CLAIP)
        self.has_image: torch.Tensor | None = None  # (N,) bool: the clip has a picture

    def load_cache(self, audio: Path | None, text: Path | None, versions: list[Path] = (),
                   image: Path | None = None) -> None:
        if audio is not None:
            t, meta = read_cache(audio)
            assert meta["ids"] == [c.id for c in self.clips], f"{audio}: cache does not match the manifest"
            self.frames, self.mask = t["frames"], t["mask"]
            self.versions = []
            for path in versions:
                v, vmeta = read_cache(path)
                assert vmeta["ids"] == meta["ids"] and v["frames"].shape == self.frames.shape, path
                self.versions.append(v["frames"])
        if text is not None:
            self.text_feats = read_cache(text)[0]["feats"]
        if image is not None:
            t, meta = read_cache(image)
            assert meta["ids"] == [c.id for c in self.clips], f"{image}: cache does not match the manifest"
            self.image_feats, self.has_image = t["feats"], t["has"]

    def subset(self, keep: list[bool]) -> None:
        """Keep only the clips where ``keep`` is True (with their captions and cached rows)."""
        idx = torch.tensor([i for i, k in enumerate(keep) if k], dtype=torch.long)
        remap = {int(i): j for j, i in enumerate(idx)}
        cap_keep = torch.tensor([bool(keep[int(i)]) for i in self.caption_clip])
        self.clips = [self.clips[int(i)] for i in idx]
        self.captions = [c for c, k in zip(self.captions, cap_keep) if k]
        self.caption_clip = torch.tensor([remap[int(i)] for i in self.caption_clip[cap_keep]], dtype=torch.long)
        if self.frames is not None:
            self.frames, self.mask = self.frames[idx], self.mask[idx]
            self.versions = [v[idx] for v in self.versions]
        if self.text_feats is not None:
            self.text_feats = self.text_feats[cap_keep]
        if self.tag_hot is not None:
            self.tag_hot = self.tag_hot[idx]
        if self.image_feats is not None:
            self.image_feats, self.has_image = self.image_feats[idx], self.has_image[idx]


class PairDataset(Dataset):
    """Item m = (audio of clip caption_clip[m], caption m, group id)."""

    def __init__(self, split: SplitData, sample_rate: int, max_seconds: float, *, augment: bool = False) -> None:
        self.s, self.sr, self.max_n = split, sample_rate, int(max_seconds * sample_rate)
        self.augment = augment and bool(split.versions)  # draw clean or one augmented version per item

    def __len__(self) -> int:
        return len(self.s.captions)

    def __getitem__(self, m: int) -> dict:
        i = int(self.s.caption_clip[m])
        item: dict = {"group": i}
        if self.s.frames is not None:
            v = int(torch.randint(len(self.s.versions) + 1, ())) if self.augment else 0
            item["frames"] = self.s.frames[i] if v == 0 else self.s.versions[v - 1][i]
            item["mask"] = self.s.mask[i]
        else:
            wave = load_audio(audio_path(self.s.manifest, self.s.clips[i]), sr=self.sr)[: self.max_n]
            item["wave"] = torch.from_numpy(np.pad(wave, (0, self.max_n - len(wave))))
        if self.s.tag_hot is not None:
            item["tag_hot"] = self.s.tag_hot[i]
        if self.s.image_feats is not None:
            item["image_feats"], item["has_image"] = self.s.image_feats[i], self.s.has_image[i]
        if self.s.text_feats is not None:
            item["text_feats"] = self.s.text_feats[m]
        else:
            item["text"] = self.s.captions[m]
        return item


def collate(items: list[dict]) -> dict:
    """Stack tensors, keep strings as lists."""
    out = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        out[k] = vals if isinstance(vals[0], str) else torch.stack(vals) if torch.is_tensor(vals[0]) else torch.tensor(vals)
    return out


class ClapDataModule(L.LightningDataModule):
    """Reads the manifest, fills the caches in ``prepare_data`` (rank 0 only) and serves pairs
    with a seeded, rank-sharded sampler so that runs and resumed runs see the same order."""

    def __init__(self, recipe: DataRecipe, model, *, batch_size: int, seed: int, tag_vocab: list[str] | None = None,
                 device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.r, self.model, self.batch_size, self.seed = recipe, model, batch_size, seed
        self.device = device  # where the frozen towers fill the caches (the training device)
        path = Path(recipe.manifest)
        if not path.exists():
            raise FileNotFoundError(f"{path}: manifest not found; set data.manifest in the recipe")
        clips = read_manifest(path)
        self.splits = {}
        for name in (recipe.train_split, recipe.val_split):
            chosen = [c for c in clips if c.split == name and c.captions]
            if not chosen:
                raise ValueError(f"{path}: no clips with captions in split '{name}'")
            self.splits[name] = SplitData(str(path), chosen)
        self._full = dict(self.splits)  # what the caches hold; ``splits`` may become subsets in setup()
        if getattr(model, "image_tower", None) is not None and not any(c.image for c in self.splits[recipe.train_split].clips):
            raise ValueError(f"{path}: model.image is set (CLAIP) but no '{recipe.train_split}' clip has an 'image'; "
                             "add pictures to the manifest or leave model.image empty")
        self._ready = False
        self.tag_vocab = tag_vocab
        self.short_tags: list[str] = []
        self.phrases: list[str] = []
        self.phrase_tag = torch.zeros(0, dtype=torch.long)  # (P,) tag index of each phrase
        self.phrase_feats: torch.Tensor | None = None  # (P, Dt) cached frozen text features
        if recipe.short_texts:
            train = self.splits[recipe.train_split].clips
            self.short_tags = sorted({t for c in train for t in c.tags})
            if not self.short_tags:
                raise ValueError(f"{path}: data.short_texts needs tags on the train clips; this manifest has none")
            self.phrases, owner = tag_phrases(self.short_tags)
            self.phrase_tag = torch.tensor(owner)
            index = {t: j for j, t in enumerate(self.short_tags)}
            for s in self.splits.values():
                s.tag_hot = torch.zeros(len(s.clips), len(self.short_tags), dtype=torch.bool)
                for i, c in enumerate(s.clips):
                    for t in c.tags:
                        if t in index:
                            s.tag_hot[i, index[t]] = True
        if recipe.augment_versions < 0:
            raise ValueError(f"data.augment_versions must be >= 0, got {recipe.augment_versions}")
        if recipe.augment_versions and not model.cfg.freeze_audio:
            raise ValueError("data.augment_versions caches augmented tower outputs; it needs model.freeze_audio: true")

    def _audio_cache(self, name: str, augment: tuple | None = None) -> Path:
        from audiocap.audio.augment import AugmentSpec

        s = self._full[name]
        aug = None if augment is None else (AugmentSpec(), self.r.augment_seed, augment)
        return cache_audio_frames(self.model.audio_tower, s.manifest, s.clips, name, self.r.cache_dir,
                                  max_seconds=self.r.max_seconds, precision=self.r.precision, augment=aug,
                                  device=self.device)

    def _cache_paths(self, name: str) -> tuple[Path | None, Path | None, list[Path], Path | None]:
        s, cfg = self._full[name], self.model.cfg
        audio = self._audio_cache(name) if cfg.freeze_audio else None
        versions = ([self._audio_cache(name, v) for v in range(1, self.r.augment_versions + 1)]
                    if cfg.freeze_audio and name == self.r.train_split else [])
        text = (cache_text_features(self.model.text_tower, s.captions, self.r.cache_dir, device=self.device)
                if cfg.freeze_text else None)
        image = (cache_image_features(self.model.image_tower, s.manifest, s.clips, self.r.cache_dir, device=self.device)
                 if self.model.image_tower is not None else None)
        return audio, text, versions, image

    def _phrase_cache(self) -> Path | None:
        if not self.phrases or not self.model.cfg.freeze_text:
            return None
        return cache_text_features(self.model.text_tower, self.phrases, self.r.cache_dir, device=self.device)

    def prepare_data(self) -> None:
        for name in self.splits:
            self._cache_paths(name)
        self._phrase_cache()

    def setup(self, stage: str | None = None) -> None:
        """Load the caches (once: Lightning calls setup again after train_clap did) and apply
        ``exclude_packages`` to a copy, so the caches' clip lists stay those of the whole splits."""
        if self._ready:
            return
        for name, s in self._full.items():
            s.load_cache(*self._cache_paths(name))  # found on disk: no recomputation
            if self.r.exclude_packages:  # caches hold the whole split; training sees the rest
                sub = copy.copy(s)
                sub.subset([not (packages_of(c) & set(self.r.exclude_packages)) for c in s.clips])
                if not sub.clips:
                    raise ValueError(f"data.exclude_packages={self.r.exclude_packages} leaves no '{name}' clips")
                self.splits[name] = sub
        self._ready = True
        phrases = self._phrase_cache()
        if phrases is not None:
            self.phrase_feats = read_cache(phrases)[0]["feats"]

    def dataset(self, name: str) -> PairDataset:
        return PairDataset(self.splits[name], self.model.sample_rate, self.r.max_seconds,
                           augment=name == self.r.train_split)

    def train_dataloader(self) -> ResumableLoader:
        ds = self.dataset(self.r.train_split)
        world, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)
        bs = min(self.batch_size, len(ds) // world)
        return ResumableLoader(ds, batch_size=bs, seed=self.seed, shuffle=True, drop_last=True,
                               num_replicas=world, rank=rank, collate_fn=collate,
                               num_workers=self.r.num_workers, persistent_workers=self.r.num_workers > 0)

    def tag_targets(self, name: str) -> torch.Tensor:
        """Multi-hot tag targets (N_clips, C) of a split over ``tag_vocab``."""
        index = {t: j for j, t in enumerate(self.tag_vocab or [])}
        clips = self.splits[name].clips
        y = torch.zeros(len(clips), len(index))
        for i, c in enumerate(clips):
            for t in c.tags:
                if t in index:
                    y[i, index[t]] = 1.0
        return y
