"""Train a captioner with Lightning: caption CE, optionally + CL4AC or + NT-Xent (delayed or not).

Recipe -> vocabulary from the training captions -> frozen-tower frame embeddings from the feature
cache shared with CLAP (:mod:`audiocap.train.features`; the first ``clip_seconds`` of each clip)
-> :class:`CaptionerTask` (L = L_CE + λ·L_aux, λ = 0 for the first ``ce_only_epochs`` epochs)
-> the audiocap checkpoint folder ``<out>/checkpoint`` (weights of the best epoch by ``train.monitor``:
the lowest validation CE by default, or the highest caption metric such as ``val/cider_d`` or
``val/spider`` logged by :class:`audiocap.train.val_metrics.CaptionMetrics`, as the DCASE 2024
baseline selects; resolved recipe, ``vocab.json``). ``<out>/lightning/last.ckpt`` (written atomically
every ``train.checkpoint_every_n_steps`` steps and every epoch, loaded with ``weights_only=True``)
resumes an interrupted run mid-epoch (:mod:`audiocap.train.callbacks`); a NaN/inf loss stops it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import lightning as L
import torch
from torch.utils.data import DataLoader

from audiocap.audio.policy import AudioPolicy, with_policy
from audiocap.checkpoint import save_checkpoint
from audiocap.config import recipe_to_dict
from audiocap.fileio import atomic_write_json
from audiocap.losses import aux_weight, caption_ce, cl4ac_loss, cl4ac_mismatch, nt_xent
from audiocap.models.captioner import Captioner, CaptionerConfig
from audiocap.text.vocab import Vocab
from audiocap.train.callbacks import FiniteGuard, ResumableLoader, ResumeCheckpoint
from audiocap.train.schedule import warmup_cosine_scheduler


@dataclass
class DataRecipe:
    manifest: str = "data/foley-default/manifest.jsonl"
    train_split: str = "train"
    val_split: str = "val"
    limit: int = 0  # use only the first N training clips (0 = all); for debug / CPU-bound runs
    val_limit: int = 0  # same for the validation split
    min_count: int = 2  # words seen fewer times in training captions become <unk>
    max_words: int = 25  # longer captions are cut for training (decoding allows max_len)
    captions: Literal["all", "sample"] = "all"  # every caption per epoch, or one random caption per clip
    val_captions: Literal["all", "first"] = "all"  # validation CE on every caption or each clip's first
    cache_dir: str = ""  # frozen-tower feature cache; "" = audiocap.train.features.default_cache_dir (shared with CLAP)
    precision: Literal["fp32", "bf16", "auto"] = "fp32"  # frozen-tower arithmetic of the cache (auto: bf16 where
    # the CPU/GPU runs it natively); the same value as a CLAP recipe's data.precision shares its cache file


@dataclass
class TowerRecipe:
    name: str = "aisfx"  # frozen audio tower, by registry name (audiocap.encoders)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class LossRecipe:
    aux: Literal["none", "cl4ac", "ntxent"] = "none"
    weight: float = 0.1  # λ in L = L_CE + λ·L_aux
    ce_only_epochs: int = 0  # train with CE only for the first N epochs
    label_smoothing: float = 0.0
    temperature: float = 0.07  # NT-Xent


@dataclass
class TrainRecipe:
    out: str = "runs/captioner/debug"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    threads: int = 2
    progress: bool = True
    checkpoint_every_n_steps: int = 50  # atomic <out>/lightning/last.ckpt this often and every epoch
    monitor: str = "val/ce"  # checkpoint selection: val/ce (lowest) or val/<metric> of val_metrics (highest)
    val_metrics: list[str] = field(default_factory=lambda: ["cider_d"])  # + sbert_sim, spice, spider (slower)
    val_metrics_every: int = 0  # caption the val split and log val_metrics every N epochs (0 = never)


@dataclass
class DecodeRecipe:
    beam: int = 3
    alpha: float = 0.0  # length normalization exponent
    max_len: int = 25  # generated tokens incl. <eos>
    no_repeat_ngram: int = 0  # > 0: beam search never repeats an n-gram of the caption (3 stops "a drum beats as a drum beats")


@dataclass
class CaptionerRecipe:
    # the common names of docs/recipes.md (``run.epochs=5`` is ``train.epochs=5``)
    RUN_KEYS: ClassVar[dict[str, str]] = {
        "out": "train.out", "epochs": "train.epochs", "batch_size": "train.batch_size", "lr": "train.lr",
        "seed": "train.seed", "threads": "train.threads", "precision": "data.precision",
        "cache_dir": "data.cache_dir"}

    data: DataRecipe = field(default_factory=DataRecipe)
    tower: TowerRecipe = field(default_factory=TowerRecipe)
    # vocab_size, frame_dim and max_len are filled in from the vocabulary, tower and recipe
    model: CaptionerConfig = field(default_factory=CaptionerConfig)
    loss: LossRecipe = field(default_factory=LossRecipe)
    train: TrainRecipe = field(default_factory=TrainRecipe)
    decode: DecodeRecipe = field(default_factory=DecodeRecipe)
    clip_seconds: float = 10.0  # training clips are cut to this length; = the window for long files


def model_config(recipe: CaptionerRecipe, *, vocab_size: int, frame_dim: int) -> CaptionerConfig:
    """The :class:`CaptionerConfig` a recipe describes for a given vocabulary and tower."""
    return dataclasses.replace(recipe.model, vocab_size=vocab_size, frame_dim=frame_dim,
                               max_len=max(recipe.data.max_words, recipe.decode.max_len) + 2)


class CaptionerTask(L.LightningModule):
    """Lightning wrapper: computes the recipe's loss on cached-frame batches."""

    def __init__(self, model: Captioner, recipe: CaptionerRecipe, steps_per_epoch: int) -> None:
        super().__init__()
        self.model, self.recipe, self.steps_per_epoch = model, recipe, steps_per_epoch

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """CE on next words, plus the auxiliary loss when its weight is non-zero this epoch."""
        rl, pad = self.recipe.loss, self.model.cfg.pad_id
        ids, mask = batch["caption_ids"], batch["frame_mask"]  # (B, L) with <bos> ... <eos>
        out = self.model(batch["frames"], mask, ids)
        ce = caption_ce(out["logits"][:, :-1], ids[:, 1:], pad_id=pad, label_smoothing=rl.label_smoothing)
        lam = aux_weight(self.current_epoch, weight=rl.weight, ce_only_epochs=rl.ce_only_epochs)
        aux = torch.zeros((), device=ce.device)
        if rl.aux == "cl4ac" and lam > 0:
            mismatched, valid = cl4ac_mismatch(ids, batch["clip"])
            _, hidden_mis, _ = self.model.decode(mismatched, self.model.start(out["memory"], mask))
            aux = cl4ac_loss(self.model.cl4ac_logits(out["hidden"], ids),
                             self.model.cl4ac_logits(hidden_mis, mismatched), valid)
        elif rl.aux == "ntxent" and lam > 0:
            aux = nt_xent(self.model.audio_embedding(out["memory"], mask),
                          self.model.text_embedding(out["hidden"], ids), temperature=rl.temperature,
                          groups=batch["clip"])
        return {"loss": ce + lam * aux, "ce": ce, "aux": aux}

    def training_step(self, batch: dict[str, torch.Tensor], _: int) -> torch.Tensor:
        parts = self.losses(batch)
        n = len(batch["caption_ids"])
        self.log_dict({f"train/{k}": v for k, v in parts.items()}, prog_bar=True, batch_size=n)
        return parts["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], _: int) -> None:
        parts = self.losses(batch)
        self.log("val/ce", parts["ce"], prog_bar=True, batch_size=len(batch["caption_ids"]))

    def configure_optimizers(self) -> Any:
        t = self.recipe.train
        opt = torch.optim.AdamW(self.model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        total = max(1, t.epochs * self.steps_per_epoch)
        return {"optimizer": opt, "lr_scheduler": warmup_cosine_scheduler(
            opt, warmup=max(1, total // 20), total=total, cosine_from_start=True)}


class SaveBest(L.Callback):
    """Write the audiocap checkpoint folder whenever ``monitor`` improves (validation CE falls, or
    a caption metric rises; epochs where the metric was not computed are skipped), and every
    epoch's validation CE to ``<folder>/../val_ce.json`` (to see whether training converged)."""

    def __init__(self, folder: Path, recipe: dict[str, Any], vocab: Vocab, monitor: str = "val/ce") -> None:
        from audiocap.train.val_metrics import monitor_mode

        self.folder, self.recipe, self.vocab, self.monitor = folder, recipe, vocab, monitor
        self.sign = 1.0 if monitor_mode(monitor) == "min" else -1.0  # compare sign * value, lower is better
        self.best = math.inf
        self.history: list[float] = []

    def on_validation_end(self, trainer: L.Trainer, task: CaptionerTask) -> None:
        if trainer.sanity_checking:
            return
        val = float(trainer.callback_metrics.get("val/ce", math.inf))
        self.history.append(round(val, 5))
        atomic_write_json(self.folder.parent / "val_ce.json", {"val_ce_per_epoch": self.history})
        watched = trainer.callback_metrics.get(self.monitor) if self.monitor != "val/ce" else val
        if watched is None or not math.isfinite(float(watched)):
            return
        if self.sign * float(watched) < self.best:
            self.best = self.sign * float(watched)
            meta = {**self.recipe, "epoch": trainer.current_epoch, "val_ce": val, "selected_by": self.monitor,
                    "selected_value": float(watched)}
            save_checkpoint(self.folder, task.model.state_dict(), kind="captioner", recipe=meta,
                            extras={"vocab": self.vocab.to_json()})

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "history": self.history, "monitor": self.monitor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("monitor", "val/ce")  # runs from before train.monitor selected by val/ce
        if saved != self.monitor:
            raise ValueError(f"{self.folder.parent / 'lightning'}: the run selected checkpoints by {saved}, the "
                             f"recipe by {self.monitor}; set train.monitor={saved} or write to another output folder")
        self.best, self.history = float(state["best"]), list(state.get("history", []))


def train_captioner(recipe: CaptionerRecipe, *, resume: bool = True, tower: Any = None) -> Path:
    """Train per ``recipe``; returns the checkpoint folder. ``tower`` overrides the named one.
    ``resume`` continues from ``<train.out>/lightning/last.ckpt`` (a finished run is left as it
    is), as the other trainers do; False trains from scratch."""
    from audiocap.data.manifest import read_manifest
    from audiocap.text.vocab import tokenize_captions
    from audiocap.train.captioner_data import CaptionPairs, collate_pairs, load_frame_tower, split_frames
    from audiocap.train.val_metrics import CaptionMetrics, check_monitor

    t, d = recipe.train, recipe.data
    check_monitor(t.monitor, t.val_metrics, t.val_metrics_every)
    torch.set_num_threads(t.threads)
    L.seed_everything(t.seed, workers=True, verbose=False)
    clips = read_manifest(d.manifest)
    splits, names = {}, {}
    for split, limit in ((d.train_split, d.limit), (d.val_split, d.val_limit)):
        chosen = [c for c in clips if c.split == split and c.captions]
        if not chosen:
            raise ValueError(f"{d.manifest}: no captioned clips in split '{split}'")
        splits[split] = chosen[:limit] if limit else chosen
        names[split] = f"{split}[:{limit}]" if limit and limit < len(chosen) else split  # cache key of the subset
    tokenized = {s: _tokenize_clips(cs, tokenize_captions) for s, cs in splits.items()}
    vocab = Vocab.build((toks for caps in tokenized[d.train_split] for toks in caps), min_count=d.min_count)
    tower = tower if tower is not None else load_frame_tower(recipe.tower.name, recipe.tower.options)
    sets, frames = {}, {}
    for s, cs in splits.items():
        frames[s] = feats = split_frames(d.manifest, cs, names[s], tower, clip_seconds=recipe.clip_seconds,
                                         cache_dir=d.cache_dir, precision=d.precision)
        sets[s] = CaptionPairs(cs, feats, tokenized[s], vocab, max_words=d.max_words,
                               captions=d.captions if s == d.train_split else d.val_captions)
    loaders = {s: ResumableLoader(ds, batch_size=t.batch_size, seed=t.seed, collate_fn=collate_pairs,
                                  drop_last=len(ds) > t.batch_size) if s == d.train_split
               else DataLoader(ds, batch_size=t.batch_size, collate_fn=collate_pairs)
               for s, ds in sets.items()}
    cfg = model_config(recipe, vocab_size=len(vocab), frame_dim=int(tower.frame_dim))
    model = Captioner(cfg)
    out = Path(t.out)
    # the long-audio policy: windows of the training clip length, frames concatenated (audiocap.audio.policy)
    saved = with_policy({**recipe_to_dict(recipe), "model_config": dataclasses.asdict(cfg)},
                        AudioPolicy(clip_seconds=recipe.clip_seconds, combine="concat"))
    task = CaptionerTask(model, recipe, len(loaders[d.train_split]))
    same = {k: v for k, v in recipe_to_dict(recipe).items() if k not in ("train", "decode")}
    same["train"] = {k: v for k, v in dataclasses.asdict(t).items()  # SaveBest's own state checks the monitor
                     if k not in ("epochs", "out", "threads", "progress", "checkpoint_every_n_steps", "monitor",
                                  "val_metrics", "val_metrics_every")}
    resume_cb = ResumeCheckpoint(out / "lightning", every_n_steps=t.checkpoint_every_n_steps, identity=same)
    callbacks: list[L.Callback] = [FiniteGuard("lower train.lr")]
    if t.val_metrics_every > 0:  # before SaveBest: it logs the metrics SaveBest may monitor
        val = splits[d.val_split]
        callbacks.append(CaptionMetrics([frames[d.val_split][c.id] for c in val], [c.captions for c in val], vocab,
                                        metrics=t.val_metrics, every=t.val_metrics_every, beam=recipe.decode.beam,
                                        alpha=recipe.decode.alpha, max_len=recipe.decode.max_len,
                                        history_path=out / "val_metrics.json", ids=[c.id for c in val],
                                        progress=t.progress))
    callbacks += [SaveBest(out / "checkpoint", saved, vocab, monitor=t.monitor), resume_cb]
    trainer = L.Trainer(max_epochs=t.epochs, accelerator="auto", devices=1, gradient_clip_val=t.grad_clip,
                        default_root_dir=str(out), enable_progress_bar=t.progress, logger=False,
                        enable_model_summary=False, deterministic=False, num_sanity_val_steps=0,
                        enable_checkpointing=False,
                        callbacks=callbacks)
    trainer.fit(task, loaders[d.train_split], loaders[d.val_split], ckpt_path=resume_cb.resume_path(resume),
                weights_only=True)
    if resume and not resume_cb.trained:
        print(f"{out}: already trained ({trainer.current_epoch} epochs); nothing to do (--force retrains)")
    return out / "checkpoint"


def _tokenize_clips(clips: list, tokenize) -> list[list[list[str]]]:
    flat = tokenize([cap for c in clips for cap in c.captions])
    out, i = [], 0
    for c in clips:
        out.append(flat[i : i + len(c.captions)])
        i += len(c.captions)
    return out


__all__ = ["CaptionerRecipe", "CaptionerTask", "model_config", "train_captioner"]
