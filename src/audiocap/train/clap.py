"""Lightning training of CLAP, CLAP-TAG, CLAIP and CLAIP-TAG from a YAML recipe.

Loss: symmetric InfoNCE (Elizalde et al., ICASSP 2023), plus for CLAP-TAG λ·reg(tag scores of the
trained audio tower, tag scores of the frozen tagger) with reg = MSLE or MAE (Xiaomi DCASE 2023
Task 6b report). CLAIP (same report, ``model.image`` set): + w·L(image→text) over the pairs whose
clip has a picture, with a frozen, cached image tower. AdamW with linear warm-up then cosine decay.
Frozen towers are cached on disk;
interrupted runs resume from ``<out>/lightning/last.ckpt``; ``trainer.strategy=ddp`` scales to
several processes (gloo on CPU), gathering embeddings so the contrastive batch is global.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import lightning as L
import numpy as np
import torch

from audiocap.audio.policy import AudioPolicy
from audiocap.checkpoint import save_checkpoint
from audiocap.config import recipe_to_dict
from audiocap.losses import claip_loss, clap_tag_loss, clip_loss, multi_positive_nce
from audiocap.models.clap import ClapConfig, ClapModel, build_clap
from audiocap.train.callbacks import FiniteGuard, ResumeCheckpoint, check_finite_weights
from audiocap.train.clap_data import ClapDataModule, DataRecipe
from audiocap.train.schedule import warmup_cosine_scheduler


@dataclass
class OptimRecipe:
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    min_lr_ratio: float = 0.0
    tower_lr_scale: float = 1.0  # trained tower weights (text_kw.train_layers, unfrozen towers) at lr * this


@dataclass
class TrainerRecipe:
    max_epochs: int = 20
    batch_size: int = 128
    seed: int = 0
    accelerator: str = "cpu"
    devices: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    log_every_n_steps: int = 10
    progress_bar: bool = True
    checkpoint_every_n_steps: int = 50  # atomic last.ckpt this often (and every epoch)


@dataclass
class TagRecipe:
    """CLAP-TAG: off unless ``enabled``; ``tagger`` is a tagger checkpoint folder (fitted and
    written there first if missing)."""

    enabled: bool = False
    reg: str = "msle"  # msle | mae
    weight: float = 1.0
    tagger: str = ""
    min_count: int = 2
    fit_epochs: int = 300


@dataclass
class LossRecipe:
    """Weights of the extra loss terms. ``short_weight`` scales the multiple-positive loss between
    clips and the one-event phrases of their tags (active with ``data.short_texts``)."""

    short_weight: float = 0.5
    image_weight: float = 1.0  # CLAIP: w in L = L_CLAP + w·L(image→text) (active with model.image)


@dataclass
class ClapRecipe:
    # the common names of docs/recipes.md (``run.epochs=5`` is ``trainer.max_epochs=5``)
    RUN_KEYS: ClassVar[dict[str, str]] = {
        "out": "out", "epochs": "trainer.max_epochs", "batch_size": "trainer.batch_size", "lr": "optim.lr",
        "seed": "trainer.seed", "accelerator": "trainer.accelerator", "precision": "data.precision",
        "cache_dir": "data.cache_dir", "resume": "resume"}

    out: str = "runs/clap/run"
    resume: bool = True  # continue from <out>/lightning/last.ckpt when it exists
    model: ClapConfig = field(default_factory=ClapConfig)
    data: DataRecipe = field(default_factory=DataRecipe)
    optim: OptimRecipe = field(default_factory=OptimRecipe)
    trainer: TrainerRecipe = field(default_factory=TrainerRecipe)
    tag: TagRecipe = field(default_factory=TagRecipe)
    loss: LossRecipe = field(default_factory=LossRecipe)


class ClapModule(L.LightningModule):
    """Wraps a :class:`ClapModel`; computes the loss from the batch (the model itself never does)."""

    def __init__(self, model: ClapModel, recipe: ClapRecipe, tag_head: torch.nn.Linear | None = None,
                 val_split=None, phrases: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.model, self.recipe, self.tag_head = model, recipe, tag_head
        self.val_split = val_split
        if phrases is not None:  # (P, Dt) cached phrase features, (P,) tag index of each phrase
            self.register_buffer("phrase_feats", phrases[0], persistent=False)
            self.register_buffer("phrase_tag", phrases[1], persistent=False)
        else:
            self.phrase_feats = self.phrase_tag = None
        self.frozen_tower = None
        if tag_head is not None and not model.cfg.freeze_audio:  # the pretrained tower, kept frozen
            import copy

            self.frozen_tower = copy.deepcopy(model.audio_tower).requires_grad_(False).eval()

    def _audio(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        if "frames" in batch:
            return batch["frames"], batch["mask"]
        return self.model.audio_frames(batch["wave"]), None

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        frames, mask = self._audio(batch)  # (B, T, D)
        audio_emb = self.model.encode_audio(frame_embs=frames, mask=mask)  # (B, E)
        if "text_feats" in batch:
            text_emb = self.model.encode_text(text_feats=batch["text_feats"])
        else:
            text_emb = self.model.encode_text(batch["text"])
        groups = batch["group"]
        tag_hot = batch.get("tag_hot")
        image_emb = self.model.encode_image(image_feats=batch["image_feats"]) if "image_feats" in batch else None
        has_image = batch.get("has_image")
        if self.trainer.world_size > 1:  # global contrastive batch across processes
            audio_emb = self.all_gather(audio_emb, sync_grads=True).flatten(0, 1)
            text_emb = self.all_gather(text_emb, sync_grads=True).flatten(0, 1)
            groups = self.all_gather(groups).flatten(0, 1)
            tag_hot = self.all_gather(tag_hot).flatten(0, 1) if tag_hot is not None else None
            if image_emb is not None:
                image_emb = self.all_gather(image_emb, sync_grads=True).flatten(0, 1)
                has_image = self.all_gather(has_image).flatten(0, 1)
        scale = self.model.scale()
        tag_scores = None
        if self.tag_head is not None:
            trained = torch.sigmoid(self.tag_head(self.model.audio_pooled(frames, mask)))  # (B, C)
            with torch.no_grad():
                ref = frames if self.frozen_tower is None else self.frozen_tower(batch["wave"])
                frozen = torch.sigmoid(self.tag_head(self.model.audio_tower.pool(ref, mask)))
            tag_scores = (trained, frozen)
        if image_emb is not None:  # CLAIP / CLAIP-TAG
            loss, parts = claip_loss(audio_emb, text_emb, image_emb, scale, image_weight=self.recipe.loss.image_weight,
                                     has_image=has_image, dup_groups=groups, tag_scores=tag_scores,
                                     tag_weight=self.recipe.tag.weight, tag_kind=self.recipe.tag.reg)
            clap = parts["clap"]
            self.log("loss/i2t", parts["i2t"], prog_bar=True)
            if "tag_reg" in parts:
                self.log("loss/tag_reg", parts["tag_reg"], prog_bar=True)
        elif tag_scores is None:
            loss = clap = clip_loss(audio_emb, text_emb, scale, dup_groups=groups)
        else:
            loss, clap, reg = clap_tag_loss(audio_emb, text_emb, scale, *tag_scores, weight=self.recipe.tag.weight,
                                            kind=self.recipe.tag.reg, dup_groups=groups)
            self.log("loss/tag_reg", reg, prog_bar=True)
        self.log("loss/clap", clap, prog_bar=True)
        if self.phrase_feats is not None and tag_hot is not None and self.recipe.loss.short_weight > 0:
            phrase_emb = self.model.encode_text(text_feats=self.phrase_feats)  # (P, E)
            short = multi_positive_nce(audio_emb, phrase_emb, tag_hot[:, self.phrase_tag], scale)
            self.log("loss/short", short, prog_bar=True)
            loss = loss + self.recipe.loss.short_weight * short
        self.log("logit_scale", scale.detach())
        return loss

    @torch.no_grad()
    def on_train_epoch_end(self) -> None:
        """Validation t2a R@1/R@10 on the whole val split (cached features only, cheap)."""
        s = self.val_split
        if s is None or s.frames is None or s.text_feats is None:
            return
        self.model.eval()
        a = self.model.encode_audio(frame_embs=s.frames.to(self.device), mask=s.mask.to(self.device))
        t = self.model.encode_text(text_feats=s.text_feats.to(self.device))
        ranks = (t @ a.t()).argsort(dim=1, descending=True)  # (M, N)
        pos = (ranks == s.caption_clip.to(self.device)[:, None]).float().argmax(1)
        self.log("val/t2a_R@1", (pos < 1).float().mean(), prog_bar=True, sync_dist=False)
        self.log("val/t2a_R@10", (pos < 10).float().mean(), sync_dist=False)
        if self.phrase_feats is not None and s.tag_hot is not None:  # still in eval mode: no dropout
            self.log("val/short_mAP@10", self._short_map(a, s.tag_hot.to(self.device)), prog_bar=True, sync_dist=False)
        self.model.train()

    def _short_map(self, audio_emb: torch.Tensor, tag_hot: torch.Tensor, k: int = 10) -> torch.Tensor:
        """mAP@10 of one query per tag (the tag text itself, the first phrase of each tag) over the
        clips carrying that tag (AP@k normalized by min(n_rel, k), DCASE Task 6B)."""
        tag = self.phrase_tag
        first = torch.ones_like(tag, dtype=torch.bool)
        first[1:] = tag[1:] != tag[:-1]
        q = self.model.encode_text(text_feats=self.phrase_feats[first])  # (C, E), tag order
        rel = tag_hot.t().float()  # (C, N)
        keep = rel.sum(1) > 0
        q, rel = q[keep], rel[keep]
        top = (q @ audio_emb.t()).topk(min(k, rel.shape[1]), dim=1).indices  # (C', k)
        hit = rel.gather(1, top)  # (C', k)
        prec = hit.cumsum(1) / torch.arange(1, hit.shape[1] + 1, device=hit.device)
        ap = (prec * hit).sum(1) / rel.sum(1).clamp(max=k)
        return ap.mean()

    def configure_optimizers(self):
        o = self.recipe.optim
        groups = []
        for tower, lr in ((False, o.lr), (True, o.lr * o.tower_lr_scale)):  # pretrained weights may move slower
            params = [p for n, p in self.model.named_parameters()
                      if p.requires_grad and n.startswith(("audio_tower.", "text_tower.")) == tower]
            groups += [{"params": [p for p in params if p.ndim >= 2], "weight_decay": o.weight_decay, "lr": lr},
                       {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0, "lr": lr}]  # biases, norms
        opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=o.lr)
        total = int(self.trainer.estimated_stepping_batches)
        return {"optimizer": opt, "lr_scheduler": warmup_cosine_scheduler(
            opt, warmup=o.warmup_steps, total=total, min_ratio=o.min_lr_ratio)}


def prepare_tagger(recipe: ClapRecipe, model: ClapModel, dm: ClapDataModule) -> torch.nn.Linear:
    """Load the tagger checkpoint ``recipe.tag.tagger``, or fit it on the train split's tags with
    the pretrained (frozen) tower and save it there first."""
    from audiocap.train.features import cache_audio_frames, read_cache
    from audiocap.train.tagger import fit_tagger, load_tagger, save_tagger, tag_vocabulary

    folder = Path(recipe.tag.tagger or Path(recipe.out) / "tagger")
    if (folder / "recipe.yaml").exists():
        head, tags, tr = load_tagger(folder)
        if tr["audio"] != recipe.model.audio:
            raise ValueError(f"{folder}: tagger was fitted on tower '{tr['audio']}', recipe uses '{recipe.model.audio}'")
        return head
    s = dm.splits[dm.r.train_split]
    tags = tag_vocabulary([c.tags for c in s.clips], recipe.tag.min_count)
    if not tags:
        raise ValueError(f"{dm.r.manifest}: no tag used by >= {recipe.tag.min_count} train clips; CLAP-TAG needs tags")
    dm.tag_vocab = tags
    path = cache_audio_frames(model.audio_tower, s.manifest, s.clips, dm.r.train_split, dm.r.cache_dir,
                              max_seconds=dm.r.max_seconds, precision=dm.r.precision, device=dm.device)  # the training cache
    t = read_cache(path)[0]
    with torch.no_grad():
        pooled = model.audio_tower.pool(t["frames"], t["mask"])  # (N, P) pretrained tower
    y = dm.tag_targets(dm.r.train_split)
    head = fit_tagger(pooled, y, epochs=recipe.tag.fit_epochs, seed=recipe.trainer.seed)
    with torch.no_grad():
        p = torch.sigmoid(head(pooled))
        acc = float(((p > 0.5) == (y > 0.5)).float().mean())
    save_tagger(folder, head, tags, recipe.model.audio, recipe.model.audio_kw,
                {"n_clips": len(s.clips), "n_tags": len(tags), "train_bit_accuracy": acc})
    return head


@torch.no_grad()
def calibrate_on_split(model: ClapModel, split) -> "Calibration | None":
    """Fit the search calibration (:mod:`audiocap.calibration`) on a split with cached features:
    its captions with their clips, its tags with the clips that carry them. None when the split
    has no cached audio or text features."""
    from audiocap import calibration

    if split.frames is None or split.text_feats is None:
        return None
    was = model.training
    model.eval()
    a = torch.cat([model.encode_audio(frame_embs=split.frames[i:i + 512], mask=split.mask[i:i + 512])
                   for i in range(0, len(split.clips), 512)]).numpy()
    t = model.encode_text(text_feats=split.text_feats).numpy()
    tags = sorted({tag for c in split.clips for tag in c.tags})
    g = model.encode_text(tags).numpy() if tags else np.zeros((0, a.shape[1]), np.float32)
    model.train(was)
    pos, neg = calibration.pair_scores(a, t, split.caption_clip.tolist(), g, [c.tags for c in split.clips], tags)
    return calibration.fit(pos, neg, info={"fitted_on": f"{split.manifest} ({len(split.clips)} clips)"})


def train_clap(recipe: ClapRecipe, *, callbacks: list | None = None) -> Path:
    """Train a CLAP (or CLAP-TAG) model as ``recipe`` says and write the checkpoint folder
    ``recipe.out`` (``model.safetensors`` + ``recipe.yaml`` + ``train.json`` figures)."""
    t0 = time.time()
    tr = recipe.trainer
    L.seed_everything(tr.seed, workers=True, verbose=False)
    out = Path(recipe.out)
    model = build_clap(recipe.model)
    cache_device = "cuda" if tr.accelerator in ("gpu", "cuda") and torch.cuda.is_available() else "cpu"
    dm = ClapDataModule(recipe.data, model, batch_size=tr.batch_size, seed=tr.seed, device=cache_device)
    dm.prepare_data()  # caches on this (launching) process before the workers start
    t_cache = time.time() - t0
    tag_head = prepare_tagger(recipe, model, dm) if recipe.tag.enabled else None
    dm.setup("fit")
    if recipe.data.short_texts and dm.phrase_feats is None:
        raise ValueError("data.short_texts needs a frozen text tower (model.freeze_text: true)")
    phrases = (dm.phrase_feats, dm.phrase_tag) if dm.phrase_feats is not None else None
    module = ClapModule(model, recipe, tag_head, val_split=dm.splits[recipe.data.val_split], phrases=phrases)
    ckpt_dir = out / "lightning"
    ckpt_cb = ResumeCheckpoint(ckpt_dir, every_n_steps=tr.checkpoint_every_n_steps)
    trainer = L.Trainer(
        max_epochs=tr.max_epochs, accelerator=tr.accelerator, devices=tr.devices, strategy=tr.strategy,
        precision=tr.precision, log_every_n_steps=tr.log_every_n_steps, enable_progress_bar=tr.progress_bar,
        callbacks=[FiniteGuard("lower optim.lr or raise optim.warmup_steps"), ckpt_cb, *(callbacks or [])],
        enable_checkpointing=False, logger=L.pytorch.loggers.CSVLogger(out, name="logs"),
        use_distributed_sampler=False, enable_model_summary=False, num_sanity_val_steps=0,
        default_root_dir=out,
    )
    resume = ckpt_cb.resume_path(recipe.resume)
    t1 = time.time()
    trainer.fit(module, datamodule=dm, ckpt_path=resume, weights_only=True)
    t_train = time.time() - t1
    if resume and not ckpt_cb.trained:  # a finished run: keep its train.json and weights
        print(f"{out}: already trained to epoch {trainer.current_epoch} (step {trainer.global_step}); "
              "nothing to do (--force retrains)")
        return out
    if trainer.global_rank == 0 and not trainer.interrupted:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        check_finite_weights(model, "at the end of training; nothing saved")
        save_checkpoint(out, model.state_dict(), kind="clap", recipe=recipe_to_dict(recipe),
                        audio_policy=AudioPolicy(clip_seconds=recipe.data.max_seconds, combine="mean"), extras={"train": {
            "seconds_cache_and_setup": round(t_cache, 1), "seconds_train": round(t_train, 1),
            "seconds_total": round(time.time() - t0, 1), "global_step": trainer.global_step,
            "epochs": trainer.current_epoch, "resumed_from": resume, "world_size": trainer.world_size,
            "final_metrics": metrics}})
        from audiocap.calibration import CalibrationError, save as save_calibration

        try:
            cal = calibrate_on_split(model, dm.splits[recipe.data.val_split])
        except CalibrationError as exc:  # a model that cannot tell matches apart still saves
            print(f"warning: no search calibration: {exc}")
            cal = None
        if cal is not None:
            save_calibration(cal, out)
    return out
