"""Text-only training of the WSAC prefix decoder (Lightning) and its checkpoint.

Kouzelis & Katsouros, "Weakly-supervised Automated Audio Captioning via text only training"
(DCASE 2023): captions are embedded once by the frozen text side of a joint audio-text space
(cached on disk), optionally bridged towards the audio side (Gaussian noise with σ estimated
from same-clip caption pairs, and/or the shift Δgap estimated on a few paired clips), and a
prefix decoder learns to reproduce each caption from its embedding. The checkpoint (kind
``wsac``) also stores the memory of training-caption embeddings used by NND and projection
decoding, σ and Δgap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
import torch
from torch.utils.data import DataLoader, TensorDataset

from audiocap.checkpoint import save_checkpoint
from audiocap.config import recipe_to_dict
from audiocap.data.caption_files import read_caption_groups
from audiocap.inference.shared_space import cached_text_embeddings
from audiocap.models.modality_gap import bridge_text_embedding, estimate_noise_std
from audiocap.losses import caption_ce
from audiocap.models.prefix_decoder import PrefixDecoder, PrefixDecoderConfig
from audiocap.text.vocab import Vocab, tokenize_captions
from audiocap.train.callbacks import FiniteGuard, ResumableLoader, ResumeCheckpoint, check_finite_weights
from audiocap.train.schedule import warmup_cosine_scheduler

KIND = "wsac"


@dataclass
class DataRecipe:
    captions: str = ""  # Clotho/AudioCaps caption CSV or JSONL manifest
    split: str | None = None  # manifest split to keep (None = all clips)
    val_captions: str | None = None
    val_split: str | None = None
    space: str = "minilm"  # joint space: "minilm" or "clap:CHECKPOINT_FOLDER"
    cache_dir: str | None = "runs/cache"
    limit_clips: int | None = None  # keep the first N clips (debug runs)


@dataclass
class GapRecipe:
    mode: Literal["none", "noise", "shift", "noise+shift"] = "noise"
    noise_std: float | None = None  # None: estimate from same-clip caption pairs
    paired_manifest: str | None = None  # clips with audio+captions to estimate Δgap (shift modes)
    paired_split: str | None = "train"
    paired_clips: int = 200
    renormalize: bool = False


@dataclass
class ModelRecipe:
    prefix_len: int = 8
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    mlp_hidden: int = 1024
    max_len: int = 32
    dropout: float = 0.1
    min_count: int = 2  # words seen fewer times become <unk>


@dataclass
class OptimRecipe:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 200
    seed: int = 0
    threads: int = 1
    num_workers: int = 0
    checkpoint_every_n_steps: int = 200  # atomic <out>/lightning/last.ckpt this often and every epoch


@dataclass
class WSACRecipe:
    # the common names of docs/recipes.md (``run.epochs=5`` is ``optim.epochs=5``); the output
    # folder is the command's --out
    RUN_KEYS: ClassVar[dict[str, str]] = {
        "epochs": "optim.epochs", "batch_size": "optim.batch_size", "lr": "optim.lr", "seed": "optim.seed",
        "threads": "optim.threads", "cache_dir": "data.cache_dir"}

    data: DataRecipe = field(default_factory=DataRecipe)
    gap: GapRecipe = field(default_factory=GapRecipe)
    model: ModelRecipe = field(default_factory=ModelRecipe)
    optim: OptimRecipe = field(default_factory=OptimRecipe)


class WSACModule(L.LightningModule):
    """Lightning wrapper: bridge text embeddings, predict next words, cross-entropy."""

    def __init__(self, cfg: PrefixDecoderConfig, optim: OptimRecipe, total_steps: int, *,
                 noise_std: float = 0.0, shift: torch.Tensor | None = None, renormalize: bool = False) -> None:
        super().__init__()
        self.model = PrefixDecoder(cfg)
        self.optim, self.total_steps = optim, total_steps
        self.noise_std, self.renormalize = noise_std, renormalize
        self.register_buffer("shift", shift if shift is not None else torch.zeros(0), persistent=False)

    def _loss(self, batch, bridge: bool) -> torch.Tensor:
        emb, tokens = batch  # (B, E), (B, T)
        if bridge:
            emb = bridge_text_embedding(emb, noise_std=self.noise_std, renormalize=self.renormalize,
                                        shift=self.shift if self.shift.numel() else None)
        elif self.shift.numel():
            emb = bridge_text_embedding(emb, shift=self.shift, renormalize=self.renormalize)
        logits = self.model(emb, tokens[:, :-1])  # (B, T-1, V)
        return caption_ce(logits, tokens[:, 1:], pad_id=self.model.cfg.pad_id)

    def training_step(self, batch, _):
        loss = self._loss(batch, bridge=True)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, _):
        self.log("val_loss", self._loss(batch, bridge=False), prog_bar=True)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.optim.lr, weight_decay=self.optim.weight_decay)
        return [opt], [warmup_cosine_scheduler(opt, warmup=self.optim.warmup_steps,
                                               total=max(self.total_steps, 1), min_ratio=0.1)]


def _trim(batch):
    emb, tokens = torch.utils.data.default_collate(batch)
    width = int((tokens != Vocab.pad_id).sum(1).max())
    return emb, tokens[:, :width]


def encode_captions(vocab: Vocab, captions: list[str], max_len: int) -> torch.Tensor:
    """Pad ``[<bos> words <eos>]`` ids of each caption to a (N, max_len) LongTensor.

    Captions are PTB-tokenized as the caption metrics tokenize them (the captioner's
    :func:`~audiocap.text.vocab.tokenize_captions`); words are cut so the total is at most ``max_len``.
    """
    out = torch.full((len(captions), max_len), vocab.pad_id, dtype=torch.long)
    for i, toks in enumerate(tokenize_captions(captions)):
        ids = vocab.encode(toks, max_len=max_len - 2)
        out[i, : len(ids)] = torch.tensor(ids)
    return out


def load_caption_embeddings(path: str, split: str | None, recipe: DataRecipe):
    """Caption groups of ``path`` and the flat (N, D) text embeddings of all their captions."""
    groups = read_caption_groups(path, split=split)
    if recipe.limit_clips:
        groups = groups[: recipe.limit_clips]
    flat = [c for g in groups for c in g.captions]
    return groups, flat, cached_text_embeddings(flat, recipe.space, recipe.cache_dir)


def estimate_shift(gap: GapRecipe, space: str) -> torch.Tensor:
    """Δgap from up to ``gap.paired_clips`` clips of a manifest: mean audio − mean caption embedding."""
    from audiocap.data.manifest import audio_path, read_manifest
    from audiocap.inference.shared_space import audio_embedder, text_embedder
    from audiocap.models.modality_gap import estimate_gap

    if not gap.paired_manifest:
        raise ValueError(f"gap mode '{gap.mode}' needs gap.paired_manifest (clips with audio and captions)")
    clips = [c for c in read_manifest(gap.paired_manifest)
             if c.captions and (gap.paired_split is None or c.split == gap.paired_split)][: gap.paired_clips]
    if not clips:
        raise ValueError(f"{gap.paired_manifest}: no clips with captions in split '{gap.paired_split}'")
    embed_audio, embed_text = audio_embedder(space), text_embedder(space)
    audio = embed_audio([audio_path(gap.paired_manifest, c) for c in clips])  # (N, D)
    text = embed_text([cap for c in clips for cap in c.captions])
    return estimate_gap(audio, text)



def train_wsac(recipe: WSACRecipe, out_dir: str | Path, *, progress: bool = True, resume: bool = True) -> Path:
    """Train a WSAC decoder on captions only and save a ``wsac`` checkpoint folder in ``out_dir``.

    Implements the text-only training of Kouzelis & Katsouros (2023): frozen text embeddings,
    gap bridging by noise (σ estimated or given) and/or shift (Δgap from a paired manifest),
    autoregressive cross-entropy. ``out_dir/lightning/last.ckpt`` (atomic, every
    ``optim.checkpoint_every_n_steps`` steps and epoch) resumes a killed run; rerunning a
    finished run keeps its checkpoint. Returns the checkpoint folder.
    """
    torch.manual_seed(recipe.optim.seed)
    torch.set_num_threads(recipe.optim.threads)
    d, g, m, o = recipe.data, recipe.gap, recipe.model, recipe.optim
    groups, flat, emb = load_caption_embeddings(d.captions, d.split, d)
    starts = torch.tensor([0, *[len(x.captions) for x in groups]]).cumsum(0).tolist()
    estimated = None
    if sum(len(x.captions) >= 2 for x in groups):
        estimated = estimate_noise_std([emb[a:b] for a, b in zip(starts[:-1], starts[1:])])
    noise_std = 0.0
    if "noise" in g.mode:
        noise_std = g.noise_std if g.noise_std is not None else estimated
        if noise_std is None:
            raise ValueError(f"{d.captions}: no clip has two captions; set gap.noise_std by hand")
    shift = estimate_shift(g, d.space) if "shift" in g.mode else None

    vocab = Vocab.build(tokenize_captions(flat), min_count=m.min_count)
    cfg = PrefixDecoderConfig(vocab_size=len(vocab), emb_dim=emb.shape[1], prefix_len=m.prefix_len,
                              d_model=m.d_model, n_layers=m.n_layers, n_heads=m.n_heads,
                              mlp_hidden=m.mlp_hidden, max_len=m.max_len, dropout=m.dropout, pad_id=vocab.pad_id)
    train_dl = ResumableLoader(TensorDataset(emb, encode_captions(vocab, flat, m.max_len)), batch_size=o.batch_size,
                               seed=o.seed, collate_fn=_trim, num_workers=o.num_workers)
    val_dl = None
    if d.val_captions:
        _, vflat, vemb = load_caption_embeddings(d.val_captions, d.val_split, d)
        val_dl = DataLoader(TensorDataset(vemb, encode_captions(vocab, vflat, m.max_len)),
                            batch_size=256, collate_fn=_trim)
    module = WSACModule(cfg, o, total_steps=o.epochs * len(train_dl), noise_std=noise_std, shift=shift,
                        renormalize=g.renormalize)
    same = {k: v for k, v in recipe_to_dict(recipe).items() if k != "optim"}  # epochs etc. may change
    same["optim"] = {k: v for k, v in asdict(o).items() if k not in ("epochs", "threads", "checkpoint_every_n_steps")}
    resume_cb = ResumeCheckpoint(Path(out_dir) / "lightning", every_n_steps=o.checkpoint_every_n_steps,
                                 identity=same)
    trainer = L.Trainer(max_epochs=o.epochs, accelerator="auto", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=progress, enable_model_summary=False,
                        gradient_clip_val=1.0, num_sanity_val_steps=0,
                        callbacks=[FiniteGuard("lower optim.lr"), resume_cb,
                                   *([TQDMProgressBar(refresh_rate=20)] if progress else [])])
    trainer.fit(module, train_dl, val_dl, ckpt_path=resume_cb.resume_path(resume), weights_only=True)
    if resume and not resume_cb.trained and (Path(out_dir) / "model.safetensors").is_file():
        print(f"{out_dir}: already trained ({trainer.current_epoch} epochs); nothing to do (--force retrains)")
        return Path(out_dir)
    check_finite_weights(module, "at the end of training; nothing saved (lower optim.lr)")

    state = {f"model.{k}": v.clone() for k, v in module.model.state_dict().items()}  # untie for safetensors
    state["memory.embeddings"] = emb
    if shift is not None:
        state["gap.shift"] = shift
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    extras = {
        "vocab": vocab.to_json(),
        "memory_captions": flat,
        "gap": {"mode": g.mode, "noise_std": noise_std, "estimated_noise_std": estimated},
        "decoder": asdict(cfg),
        "train_metrics": metrics,
    }
    return save_checkpoint(out_dir, state, kind=KIND, recipe=recipe_to_dict(recipe), extras=extras,
                           audio_policy=space_policy(d.space))


def space_policy(space: str):
    """The long-audio policy a WSAC model decodes under: that of its ``clap:FOLDER`` space (the
    CLAP model embeds the audio; :mod:`audiocap.audio.policy`), the default for text-only spaces."""
    from audiocap.audio.policy import DEFAULT_POLICY, audio_policy_of

    return audio_policy_of(space[5:]) if space.startswith("clap:") else DEFAULT_POLICY
