"""Crash-safe training (issue 20 B/C): a real training process is killed with SIGKILL mid-epoch,
rerun, and must continue from the checkpoint step and end with the weights of an uninterrupted
run; a finished run is not retrained or overwritten; a non-finite loss stops with an error
and saves nothing.

The training script is the shared machinery of every trainer (:mod:`audiocap.train.callbacks`:
:class:`ResumeCheckpoint`, :class:`ResumableLoader`, :class:`FiniteGuard`) around a tiny model
with dropout and a warm-up schedule, so RNG and scheduler state must survive the resume too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from resume_helpers import EPOCHS, EVERY, STEPS_PER_EPOCH, train_tiny

HELPERS = Path(__file__).with_name("resume_helpers.py")
TOTAL = EPOCHS * STEPS_PER_EPOCH


def ckpt_state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def max_diff(a: Path, b: Path) -> float:
    x, y = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    return max(float((x[k] - y[k]).abs().max()) for k in x)


def test_sigkill_mid_epoch_then_rerun_equals_uninterrupted(tmp_path, capsys):
    full, part = tmp_path / "full", tmp_path / "part"
    assert train_tiny(full) == 0
    assert json.loads((full / "train.json").read_text()) == {"resumed_step": None, "global_step": TOTAL}

    # a real training process, killed with SIGKILL right after its first (mid-epoch) checkpoint
    proc = subprocess.Popen([sys.executable, str(HELPERS), str(part), "0.5"], stderr=subprocess.PIPE, text=True)
    last = part / "lightning" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.is_file():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no checkpoint written in time"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    state = ckpt_state(last)
    step = int(state["global_step"])
    assert step == EVERY and step % STEPS_PER_EPOCH  # mid-epoch, the run was far from done
    assert state["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 0, "batches": EVERY}]
    assert not (part / "final.pt").exists()

    assert train_tiny(part) == 0  # the rerun resumes
    assert json.loads((part / "train.json").read_text()) == {"resumed_step": step, "global_step": TOTAL}
    assert max_diff(full / "final.pt", part / "final.pt") < 1e-6

    # a finished run rerun is a no-op that says so; its results are not overwritten
    capsys.readouterr()
    before = {p.name: p.stat().st_mtime_ns for p in (part / "final.pt", part / "train.json")}
    assert train_tiny(part) == 0
    assert "already finished" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (part / "final.pt", part / "train.json")} == before


def test_resume_without_resumable_loader_would_differ(tmp_path):
    """Guard against a vacuous test: resuming mid-epoch with a plain shuffled DataLoader (what
    Lightning does by default) ends with different weights, so equality above is earned."""
    import resume_helpers

    full, part = tmp_path / "full", tmp_path / "part"
    assert train_tiny(full) == 0
    real = resume_helpers.ResumableLoader
    try:
        resume_helpers.ResumableLoader = lambda ds, batch_size, seed, shuffle: torch.utils.data.DataLoader(
            ds, batch_size=batch_size, shuffle=shuffle)

        class Stop(resume_helpers.L.Callback):
            def on_train_batch_end(self, trainer, *a):
                if trainer.global_step == EVERY:
                    raise KeyboardInterrupt  # Ctrl-C right after the step-3 checkpoint

        real_slow = resume_helpers.Slow
        resume_helpers.Slow = lambda delay: Stop()
        with pytest.raises(SystemExit):  # Lightning exits after a graceful KeyboardInterrupt
            train_tiny(part)
        resume_helpers.Slow = real_slow
        assert ckpt_state(part / "lightning" / "last.ckpt")["global_step"] == EVERY
        assert train_tiny(part) == 0
    finally:
        resume_helpers.ResumableLoader = real
    assert max_diff(full / "final.pt", part / "final.pt") > 1e-3


def test_non_finite_loss_stops_without_checkpoint(tmp_path, capsys):
    assert train_tiny(tmp_path / "nan", lr=1e30) == 2
    err = capsys.readouterr().err
    assert "NaN/inf" in err or "loss became" in err
    assert not (tmp_path / "nan" / "final.pt").exists()
    last = tmp_path / "nan" / "lightning" / "last.ckpt"
    if last.exists():  # a checkpoint written before the blow-up holds finite weights only
        assert all(torch.isfinite(v).all() for v in ckpt_state(last)["state_dict"].values())


def test_interrupted_checkpoint_write_keeps_the_previous_one(tmp_path):
    """Killed while writing: the .partial file is garbage, last.ckpt is the previous checkpoint."""
    from audiocap.train.callbacks import ResumeCheckpoint

    cb = ResumeCheckpoint(tmp_path, every_n_steps=1)
    (tmp_path / "last.ckpt").write_bytes(b"previous")

    class Boom(Exception):
        pass

    class Trainer:
        sanity_checking, global_step, current_epoch, is_global_zero = False, 5, 0, True
        train_dataloader = None
        lightning_module = torch.nn.Linear(2, 2)

        def save_checkpoint(self, path):
            Path(path).write_bytes(b"half a chec")
            raise Boom  # the process dies here

    with pytest.raises(Boom):
        cb.on_train_batch_end(Trainer(), None, None, None, 0)
    assert (tmp_path / "last.ckpt").read_bytes() == b"previous"
