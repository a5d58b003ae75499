"""A tiny training run built on the shared trainer machinery (:mod:`audiocap.train.callbacks`),
used by tests/test_train_resume.py in-process and as a subprocess that the test kills.

The model has dropout and the optimizer a warm-up schedule, so RNG and scheduler state must
survive a resume for the weights to match an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import TensorDataset

from audiocap.train.callbacks import FiniteGuard, NonFiniteError, ResumableLoader, ResumeCheckpoint

STEPS_PER_EPOCH, EPOCHS, EVERY = 10, 4, 3


class Net(L.LightningModule):
    def __init__(self, lr: float) -> None:
        super().__init__()
        self.lr = lr
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                                       torch.nn.Linear(16, 1))

    def training_step(self, batch, _):
        x, y = batch
        return ((self.net(x) - y) ** 2).mean()

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 7))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class Slow(L.Callback):
    """Stands in for a real model's step time, so that a test can kill the run mid-way."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def on_train_batch_end(self, *args) -> None:
        time.sleep(self.delay)


def kill_at_first_checkpoint(proc: subprocess.Popen, last: Path, *, timeout: float) -> None:
    """SIGKILL ``proc`` as soon as ``last`` (its first checkpoint) exists, as a crash would; fail if
    the process ends or writes nothing within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not last.is_file():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
        assert time.monotonic() < deadline, "no checkpoint written in time"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


def train_tiny(out: Path, *, delay: float = 0.0, lr: float = 0.01) -> int:
    """Train (or resume, or skip when finished); returns the exit code a CLI would use."""
    out = Path(out)
    L.seed_everything(0, verbose=False)
    x = torch.randn(4 * STEPS_PER_EPOCH, 8, generator=torch.Generator().manual_seed(1))
    loader = ResumableLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4, seed=0, shuffle=True)
    ckpt = ResumeCheckpoint(out / "lightning", every_n_steps=EVERY)
    trainer = L.Trainer(max_epochs=EPOCHS, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[FiniteGuard(), ckpt, Slow(delay)])
    try:
        trainer.fit(Net(lr), loader, ckpt_path=ckpt.resume_path(), weights_only=True)
    except NonFiniteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not ckpt.trained:
        print("already finished; nothing to do")
        return 0
    torch.save(trainer.lightning_module.state_dict(), out / "final.pt")
    (out / "train.json").write_text(json.dumps({"resumed_step": ckpt.resumed_step,
                                                "global_step": trainer.global_step}))
    return 0


if __name__ == "__main__":
    sys.exit(train_tiny(Path(sys.argv[1]), delay=float(sys.argv[2])))
