"""CLAP training end to end on synthetic tones: checkpoint round trip, cache reuse, CLAP-TAG,
resume after an interruption, evaluation CLI and DDP with 2 processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from safetensors.torch import load_file

from audiocap.config import load_recipe
from audiocap.train.clap import ClapRecipe, train_clap

REPO = Path(__file__).resolve().parents[1]
DEBUG = REPO / "configs" / "clap" / "debug.yaml"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from clap_helpers import write_dataset, write_tiny_bert

    root = tmp_path_factory.mktemp("clapdata")
    return {"manifest": write_dataset(root / "ds"), "bert": write_tiny_bert(root / "bert"), "root": root}


def recipe(data, out: Path, *extra: str) -> ClapRecipe:
    return load_recipe(ClapRecipe, DEBUG, [
        f"out={out}", f"data.manifest={data['manifest']}", "model.text=hf",
        f"model.text_kw={{folder: {data['bert']}}}", f"data.cache_dir={data['root'] / 'cache'}",
        "trainer.progress_bar=false", *extra])


def test_debug_training_writes_loadable_checkpoint(data, tmp_path):
    from audiocap.checkpoint import read_extra, read_recipe
    from audiocap.embed import embed_text
    from audiocap.models.clap import load_clap

    out = train_clap(recipe(data, tmp_path / "run", "trainer.max_epochs=3"))
    info = read_extra(out, "train")
    assert info["global_step"] == 3 * (16 * 2 // 8)  # 16 train clips × 2 captions, batch 8
    assert read_recipe(out)["kind"] == "clap"
    model = load_clap(out)
    saved = load_file(str(out / "model.safetensors"))
    assert set(saved) == set(model.state_dict())
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    t = embed_text(model, ["a low hum drones"])
    assert t.shape == (1, 32)
    assert abs(float((t**2).sum()) - 1) < 1e-5


def test_cached_frozen_tower_and_clap_tag(data, tmp_path, monkeypatch):
    from audiocap.checkpoint import read_extra
    from audiocap.train import clap_data, features

    args = [f"data.cache_dir={tmp_path / 'cache'}", "model.freeze_audio=true", "model.adapter=true", "model.adapter_hidden=16", "tag.enabled=true",
            "tag.reg=mae", "tag.weight=2.0", f"tag.tagger={tmp_path / 'tagger'}", "trainer.max_epochs=2"]
    decoded = []
    real = features.load_audio
    monkeypatch.setattr(features, "load_audio", lambda *a, **k: decoded.append(a[0]) or real(*a, **k))
    out = train_clap(recipe(data, tmp_path / "tag", *args))
    assert len(decoded) == len(set(decoded)) == 16 + 4  # train + val clips, each decoded once
    assert (tmp_path / "tagger" / "model.safetensors").exists()
    assert read_extra(tmp_path / "tagger", "tags") == ["beep", "click", "hum", "noise", "synthetic"]
    metrics = read_extra(out, "train")["final_metrics"]
    assert "loss/tag_reg" in metrics and metrics["loss/tag_reg"] >= 0
    # second run: every frozen-tower output comes from the cache, no audio is decoded
    def boom(*a, **k):
        raise AssertionError("audio decoded although cached")
    monkeypatch.setattr(features, "load_audio", boom)
    monkeypatch.setattr(clap_data, "load_audio", boom)
    train_clap(recipe(data, tmp_path / "tag2", *args[:-1], "trainer.max_epochs=1"))


class StopAfterEpoch(L.Callback):
    """Simulate an interruption: stop the run after ``epoch`` epochs (checkpoint already written)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, module) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


def test_resume_matches_uninterrupted_run(data, tmp_path):
    from audiocap.checkpoint import read_extra

    full = train_clap(recipe(data, tmp_path / "full", "trainer.max_epochs=3"))
    part = recipe(data, tmp_path / "part", "trainer.max_epochs=3")
    train_clap(part, callbacks=[StopAfterEpoch(1)])
    assert read_extra(tmp_path / "part", "train")["global_step"] == 4
    train_clap(part)  # resumes from part/lightning/last.ckpt
    info = read_extra(tmp_path / "part", "train")
    assert info["resumed_from"].endswith("last.ckpt") and info["global_step"] == 12
    a, b = load_file(str(full / "model.safetensors")), load_file(str(tmp_path / "part" / "model.safetensors"))
    diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert diff < 1e-4


def test_eval_cli_table_json_and_errors(data, tmp_path):
    from typer.testing import CliRunner

    from audiocap.cli import app

    out = train_clap(recipe(data, tmp_path / "ev", "trainer.max_epochs=1"))
    res_path = tmp_path / "res.json"
    out2 = train_clap(recipe(data, tmp_path / "ev2", "trainer.max_epochs=1", "trainer.seed=1"))
    r = CliRunner().invoke(app, ["eval", "clap", "--model", str(out), "--model", str(out2), "--model", f"init:{out}",
                                 "--manifest", str(data["manifest"]), "--split", "test", "-o", str(res_path)])
    assert r.exit_code == 0, r.output
    res = json.loads(res_path.read_text())
    assert res["n_audio"] == 4 and res["n_text"] == 8 and res["n_tags"] == 5
    rows = res["rows"]
    assert set(rows) == {"ev", "ev2", f"init:{out}", "ensemble(ev+ev2)", "chance"}
    assert rows["chance"]["t2a_R@1"] == pytest.approx(0.25, abs=0.05)
    assert rows["chance"]["zero_shot_acc"] == pytest.approx(2 / 5)  # 2 of 5 tags are right per clip
    for row in rows.values():
        assert all(0 <= v <= 1 for v in row.values())
    # the ensemble row is the metrics of the mean of the two similarity matrices
    from audiocap.evaluation.clap import embed_split, retrieval_metrics, split_clips
    from audiocap.models.clap import load_clap

    clips = split_clips(data["manifest"], "test")
    sims = []
    for folder in (out, out2):
        a, t = embed_split(load_clap(folder), data["manifest"], clips, "test")
        sims.append(t @ a.t())
    t2a = torch.tensor([i for i, c in enumerate(clips) for _ in c.captions])
    for name, sim in zip(("ev", "ev2"), sims):  # each model's row: ranks of the right clip, counted here
        rank = (sim > sim[torch.arange(len(t2a)), t2a][:, None]).sum(1).float()  # clips scored above it
        assert rows[name]["t2a_R@1"] == pytest.approx((rank == 0).float().mean().item())
        assert rows[name]["t2a_mAP@10"] == pytest.approx((1 / (rank + 1)).mean().item())
    expected = retrieval_metrics((sims[0] + sims[1]) / 2, t2a)
    assert all(rows["ensemble(ev+ev2)"][k] == pytest.approx(v) for k, v in expected.items())
    bad = CliRunner().invoke(app, ["eval", "clap", "--model", str(tmp_path / "nope"), "--manifest", str(data["manifest"])])
    assert bad.exit_code == 2 and "checkpoint folder not found" in bad.output


def _ddp_cmd(data, out: Path) -> list[str]:
    return [sys.executable, "-m", "audiocap", "train", "clap", "--config", str(DEBUG), f"out={out}",
            f"data.manifest={data['manifest']}", "model.text=hf", f"model.text_kw={{folder: {data['bert']}}}",
            f"data.cache_dir={data['root'] / 'cache'}", "trainer.progress_bar=false",
            "trainer.strategy=ddp", "trainer.devices=2", "trainer.max_epochs=2"]


@pytest.mark.slow  # ~60 s on 2 shared cores: two processes each start Lightning and the towers
def test_ddp_two_cpu_processes(data, tmp_path):
    from audiocap.checkpoint import read_extra

    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    p = subprocess.run(_ddp_cmd(data, tmp_path / "ddp"), env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    info = read_extra(tmp_path / "ddp", "train")
    assert info["world_size"] == 2
    assert info["global_step"] == 2 * (32 // 2 // 8)  # each rank: 16 pairs per epoch, batch 8
