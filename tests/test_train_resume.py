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
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from resume_helpers import EPOCHS, EVERY, STEPS_PER_EPOCH, kill_at_first_checkpoint, train_tiny

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
    kill_at_first_checkpoint(proc, last, timeout=120)
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

        def save_checkpoint(self, path, weights_only=None):
            Path(path).write_bytes(b"half a chec")
            raise Boom  # the process dies here

    with pytest.raises(Boom):
        cb.on_train_batch_end(Trainer(), None, None, None, 0)
    assert (tmp_path / "last.ckpt").read_bytes() == b"previous"


WSAC_CAPTIONS = [("dog.wav", "A dog barks twice in the yard.", "A small dog is barking loudly."),
                 ("rain.wav", "Heavy rain falls on a tin roof.", "Rain is pouring down on a metal roof."),
                 ("car.wav", "A car engine starts and idles.", "An engine revs and then idles quietly."),
                 ("bird.wav", "Birds chirp in the morning forest.", "Many birds are singing among the trees.")]
WSAC_SETTINGS = ["model.d_model=16", "model.n_layers=1", "model.n_heads=2", "model.mlp_hidden=16",
                 "model.prefix_len=2", "model.max_len=12", "model.min_count=1", "optim.batch_size=2",
                 "optim.warmup_steps=3", "optim.checkpoint_every_n_steps=3", "optim.epochs=150"]


def test_wsac_cli_killed_mid_run_resumes_to_the_same_model(tmp_path):
    """The real `audiocap train wsac` process is SIGKILLed after its first checkpoint (mid-epoch);
    the rerun continues from that step and saves the model an uninterrupted run saves."""
    from safetensors.torch import load_file

    from audiocap.config import load_recipe
    from audiocap.train.wsac import WSACRecipe, train_wsac

    caps = tmp_path / "caps.csv"
    caps.write_text("file_name,caption_1,caption_2\n" + "".join(f'{f},"{a}","{b}"\n' for f, a, b in WSAC_CAPTIONS))
    settings = [f"data.captions={caps}", f"data.cache_dir={tmp_path / 'cache'}", *WSAC_SETTINGS]
    recipe = load_recipe(WSACRecipe, None, settings)
    full = train_wsac(recipe, tmp_path / "full", progress=False)  # also fills the embedding cache

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "audiocap", "train", "wsac", "-o", str(out)]
    for s in settings:
        cmd += ["--set", s]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = out / "lightning" / "last.ckpt"
    kill_at_first_checkpoint(proc, last, timeout=180)
    step = int(ckpt_state(last)["global_step"])
    assert 3 <= step < 150 * 4 and not (out / "model.safetensors").exists()

    train_wsac(recipe, out, progress=False)  # the rerun
    a, b = load_file(str(full / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5

    # a different recipe must not silently continue someone else's run
    other = load_recipe(WSACRecipe, None, [*settings, "model.d_model=32"])
    (out / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="different recipe.*model"):
        train_wsac(other, out, progress=False)


def test_truncated_last_ckpt_is_a_clear_error(tmp_path):
    from audiocap.train.callbacks import ResumeCheckpoint

    (tmp_path / "last.ckpt").write_bytes(b"PK\x03\x04 cut short by a crash")
    with pytest.raises(ValueError, match="last.ckpt: unreadable checkpoint.*delete it"):
        ResumeCheckpoint(tmp_path).resume_path()
    assert ResumeCheckpoint(tmp_path).resume_path(resume=False) is None
