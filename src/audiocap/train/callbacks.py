"""Lightning callbacks every trainer shares: crash-safe resume and a stop on non-finite loss.

* :class:`ResumeCheckpoint` writes ``last.ckpt`` every ``every_n_steps`` optimizer steps and at
  every epoch end, atomically (temporary file + ``os.replace``, so ``kill -9`` mid-write leaves
  the previous checkpoint intact). Lightning 2.6's ``ModelCheckpoint(save_top_k=0,
  save_last=True)`` writes ``last.ckpt`` only when a fit ends, so a killed run restarted at step
  0. With a :class:`ResumableLoader` the rerun continues mid-epoch on exactly the batches the
  killed run had not seen yet, with the global RNG state of the moment of the checkpoint, so a
  resumed run ends with the weights of an uninterrupted one.
* :class:`FiniteGuard` stops training with :class:`NonFiniteError` (a clear message, non-zero
  exit in the CLI) as soon as the loss or, at epoch end, a weight is NaN/inf, before any
  checkpoint of broken weights is written.
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

LAST = "last.ckpt"


class NonFiniteError(ValueError):
    """Training produced a NaN/inf loss or weight; nothing broken is saved as a result.

    A ValueError, so the training commands report it as one ``error:`` line with exit code 2."""


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))


class ResumeCheckpoint(L.Callback):
    """Atomic ``<dirpath>/last.ckpt`` every ``every_n_steps`` steps and every epoch end.

    Pass ``ckpt_path=callback.resume_path()`` to ``trainer.fit``. After the fit,
    :attr:`trained` is False when the run had already finished (the rerun trained nothing:
    callers must then keep the results they wrote before instead of overwriting them), and
    :attr:`resumed_step` is the step the run continued from (None for a fresh run).
    """

    def __init__(self, dirpath: str | os.PathLike, *, every_n_steps: int = 50, identity: Any = None) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.dirpath, self.every_n_steps = Path(dirpath), int(every_n_steps)
        # what must not change between a run and its resume (data, model, loss...): JSON-able
        self.identity = None if identity is None else json.loads(json.dumps(identity, sort_keys=True, default=str))
        self.path = self.dirpath / LAST
        self.trained, self.resumed_step = False, None
        self._rng: dict[str, Any] | None = None
        self._saved_step = -1

    def resume_path(self, resume: bool = True) -> str | None:
        """``last.ckpt`` if resuming and it exists, else None (a fresh run).

        The checkpoint is opened first (memory-mapped, tensors only): an unreadable file or one
        written by a run with a different ``identity`` raises ValueError naming it, before any
        weights are loaded into a model of another shape."""
        if not (resume and self.path.is_file()):
            return None
        try:
            ckpt = torch.load(self.path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as exc:  # truncated by a crash of an older, non-atomic writer, or not ours
            raise ValueError(f"{self.path}: unreadable checkpoint ({type(exc).__name__}); delete it to "
                             "start over") from None
        for key, state in (ckpt.get("callbacks") or {}).items():
            if str(key).startswith(type(self).__name__) and isinstance(state, dict):
                self._check_identity(state)
        return str(self.path)

    # -- state carried inside the checkpoint ---------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"rng": _rng_state(), "identity": json.dumps(self.identity, sort_keys=True)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._check_identity(state)
        self._rng = state.get("rng")

    def _check_identity(self, state: dict[str, Any]) -> None:
        saved = json.loads(state.get("identity") or "null")
        if self.identity is not None and saved is not None and saved != self.identity:
            keys = sorted(k for k in set(saved) | set(self.identity) if saved.get(k) != self.identity.get(k)) \
                if isinstance(saved, dict) and isinstance(self.identity, dict) else []
            raise ValueError(f"{self.path}: belongs to a run with a different recipe"
                             f"{' (' + ', '.join(keys) + ' differ)' if keys else ''}; delete the folder "
                             f"{self.dirpath} to start over, or write to another output folder")

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.ckpt_path:
            self.resumed_step = int(trainer.global_step)
        self._saved_step = int(trainer.global_step)  # nothing new to save before the next step

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        self.trained = True
        if self._rng is not None:  # first step after a resume: the RNG of the checkpoint moment
            _set_rng_state(self._rng)
            self._rng = None

    # -- saving ---------------------------------------------------------------------------
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self._save(trainer, epoch=trainer.current_epoch, batches=batch_idx + 1)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._save(trainer, epoch=trainer.current_epoch + 1, batches=0)

    def _save(self, trainer: L.Trainer, *, epoch: int, batches: int) -> None:
        if trainer.sanity_checking or trainer.global_step == self._saved_step:
            return
        check_finite_weights(trainer.lightning_module, f"at step {trainer.global_step}; not checkpointed "
                             "(lower the learning rate)")
        for loader in _train_loaders(trainer):
            loader.position = {"epoch": int(epoch), "batches": int(batches)}
        partial = self.path.with_name(self.path.name + ".partial")
        trainer.save_checkpoint(partial, weights_only=False)  # full state (optimizer, loops) for resume; every rank calls it, rank 0 writes
        if trainer.is_global_zero:
            with open(partial, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(partial, self.path)
        trainer.strategy.barrier("resume-checkpoint")
        self._saved_step = int(trainer.global_step)


def _train_loaders(trainer: L.Trainer) -> list["ResumableLoader"]:
    dl = trainer.train_dataloader
    loaders = list(dl.values()) if isinstance(dl, dict) else list(dl) if isinstance(dl, (list, tuple)) else [dl]
    return [x for x in loaders if isinstance(x, ResumableLoader)]


class SkippingSampler(DistributedSampler):
    """``DistributedSampler`` (one replica by default) whose order depends only on (seed, epoch)
    and that can skip the first ``skip`` samples of one epoch (a run resumed mid-epoch)."""

    def __init__(self, dataset, *, num_replicas: int = 1, rank: int = 0, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)
        self.skip_epoch, self.skip = -1, 0

    def resume(self, epoch: int, skip: int) -> None:
        self.set_epoch(epoch)
        self.skip_epoch, self.skip = epoch, skip

    def __iter__(self):
        order = list(super().__iter__())
        return iter(order[self.skip:] if self.epoch == self.skip_epoch else order)


class ResumableLoader(DataLoader):
    """A training DataLoader that resumes mid-epoch: a :class:`SkippingSampler` plus Lightning's
    ``state_dict``/``load_state_dict`` loader protocol; :class:`ResumeCheckpoint` records the
    position (epoch, batches done) just before it writes a checkpoint."""

    def __init__(self, dataset, *, batch_size: int, seed: int, shuffle: bool = True, drop_last: bool = False,
                 num_replicas: int = 1, rank: int = 0, **kwargs: Any) -> None:
        sampler = SkippingSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                                  drop_last=drop_last)
        super().__init__(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, **kwargs)
        self.position = {"epoch": 0, "batches": 0}

    def state_dict(self) -> dict[str, int]:
        return dict(self.position)

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.position = {"epoch": int(state["epoch"]), "batches": int(state["batches"])}
        self.sampler.resume(self.position["epoch"], self.position["batches"] * int(self.batch_size))


class FiniteGuard(L.Callback):
    """Raise :class:`NonFiniteError` at the first non-finite training loss, or at an epoch end
    where a weight is NaN/inf, naming the step and the recipe keys that usually cause it."""

    def __init__(self, hint: str = "lower the learning rate") -> None:
        self.hint = hint

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteError(f"training loss became {float(loss)} at step {trainer.global_step} "
                                 f"(epoch {trainer.current_epoch}); no model was saved; {self.hint}")

    def on_train_epoch_end(self, trainer, module) -> None:
        check_finite_weights(module, f"after epoch {trainer.current_epoch}; {self.hint}")


def check_finite_weights(module: torch.nn.Module, when: str = "") -> None:
    """Raise :class:`NonFiniteError` naming the first parameter/buffer holding NaN or inf."""
    bad = [name for name, t in module.state_dict().items()
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise NonFiniteError(f"{len(bad)} tensor(s) hold NaN/inf ({', '.join(bad[:3])}) {when}".strip())


__all__ = ["FiniteGuard", "NonFiniteError", "ResumableLoader", "ResumeCheckpoint", "SkippingSampler",
           "check_finite_weights"]
