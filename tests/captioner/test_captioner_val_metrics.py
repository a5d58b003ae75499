"""Caption metrics during training and checkpoint selection by a metric (issue 19)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from audiocap.checkpoint import read_recipe
from audiocap.config import load_recipe
from audiocap.data.manifest import Clip, write_manifest
from audiocap.train.captioner import CaptionerRecipe, SaveBest, train_captioner

CAPS = {440.0: ["a low tone hums", "a low steady hum"], 1760.0: ["a high pitched beep", "a high beep rings"]}


def _manifest(root, sine_writer):
    clips = []
    for i in range(12):
        freq = 440.0 if i % 2 else 1760.0
        sine_writer(root / f"c{i}.wav", seconds=2.0, freq=freq)
        clips.append(Clip(id=f"c{i}", audio=f"c{i}.wav", duration=2.0, captions=CAPS[freq],
                          split="train" if i < 8 else "val"))
    write_manifest(root / "manifest.jsonl", clips)
    return root / "manifest.jsonl"


def _recipe(root, manifest, out, *extra):
    return load_recipe(CaptionerRecipe, None, [
        f"data.manifest={manifest}", f"data.cache_dir={root / 'cache'}", "data.min_count=1",
        "model.d_model=32", "model.ff_dim=64", "model.dropout=0.0", "model.proj_dim=8", "model.encoder_layers=1",
        "train.epochs=8", "train.threads=1", "train.batch_size=4", "train.lr=5e-3", f"train.out={root / out}",
        "train.progress=false", "clip_seconds=2.0", "tower.name=standin", "decode.max_len=8", *extra])


@pytest.fixture(scope="module")
def by_cider(tmp_path_factory, standin_tower, sine_writer):
    root = tmp_path_factory.mktemp("valmetrics")
    manifest = _manifest(root, sine_writer)
    recipe = _recipe(root, manifest, "run", "train.monitor=val/cider_d", "train.val_metrics_every=1",
                     "train.val_metrics=[cider_d, sbert_sim]")
    ckpt = train_captioner(recipe, tower=standin_tower())
    return root, manifest, ckpt


def test_callback_logs_metrics_every_epoch(by_cider):
    root, _, _ = by_cider
    hist = json.loads((root / "run" / "val_metrics.json").read_text())
    assert hist["metrics"] == ["cider_d", "sbert_sim"] and hist["clips"] == 4 and hist["beam"] == 3
    assert [r["epoch"] for r in hist["epochs"]] == list(range(8))
    for row in hist["epochs"]:
        assert 0.0 <= row["cider_d"] <= 10.0 and -1.0 <= row["sbert_sim"] <= 1.0
        assert len(row["examples"]) == 4 and all(e["caption"] for e in row["examples"])
    ciders = [r["cider_d"] for r in hist["epochs"]]
    assert len(set(ciders)) > 1  # the captions changed while it trained: selection has a choice to make
    assert max(ciders) > 1.0  # and it learned to say the tones' words


def test_checkpoint_is_the_epoch_with_the_best_metric(by_cider, standin_tower):
    """The saved epoch is the (first) argmax of the logged CIDEr-D, and captioning the validation
    split with the saved checkpoint as 'audiocap eval captioner' does gives that CIDEr-D again."""
    from audiocap.evaluation.captioner import evaluate_captioner

    root, manifest, ckpt = by_cider
    ciders = [r["cider_d"] for r in json.loads((root / "run" / "val_metrics.json").read_text())["epochs"]]
    meta = read_recipe(ckpt)
    best = max(range(len(ciders)), key=lambda i: (ciders[i], -i))
    assert meta["epoch"] == best and meta["selected_by"] == "val/cider_d"
    assert meta["selected_value"] == pytest.approx(ciders[best], abs=1e-6)
    ce = json.loads((root / "run" / "val_ce.json").read_text())["val_ce_per_epoch"]
    assert min(range(len(ce)), key=ce.__getitem__) != best  # here CE would have kept another epoch
    report = evaluate_captioner([ckpt], manifest, split="val", beam=3, tower=standin_tower(), metrics=["cider_d"],
                                precision="fp32", cache_dir=str(root / "cache"))
    assert report["metrics"]["cider_d"].score == pytest.approx(ciders[best], abs=1e-6)


def test_default_still_selects_by_validation_ce(tmp_path, standin_tower, sine_writer):
    manifest = _manifest(tmp_path, sine_writer)
    ckpt = train_captioner(_recipe(tmp_path, manifest, "ce", "train.epochs=3"), tower=standin_tower())
    ce = json.loads((tmp_path / "ce" / "val_ce.json").read_text())["val_ce_per_epoch"]
    meta = read_recipe(ckpt)
    assert meta["epoch"] == min(range(len(ce)), key=lambda i: (ce[i], i)) and meta["selected_by"] == "val/ce"
    assert not (tmp_path / "ce" / "val_metrics.json").exists()  # no captioning unless asked


class _Trainer(SimpleNamespace):
    sanity_checking = False


def test_metric_and_ce_disagree_the_monitor_decides(tmp_path):
    """CE keeps falling while CIDEr-D peaks at epoch 1: val/ce keeps epoch 3, val/cider_d epoch 1;
    an epoch without a computed metric is never chosen."""
    from audiocap.text.vocab import Vocab

    vocab = Vocab.build([["a", "b"]], min_count=1)
    ce = [3.0, 2.5, 2.0, 1.5]
    cider = [0.1, 0.9, None, 0.4]  # epoch 2: not computed (val_metrics_every)
    for monitor, want in (("val/ce", 3), ("val/cider_d", 1)):
        save = SaveBest(tmp_path / monitor.replace("/", "_") / "checkpoint", {"kind": "captioner"}, vocab,
                        monitor=monitor)
        for epoch in range(4):
            weights = {"w": torch.full((2,), float(epoch))}
            metrics = {"val/ce": torch.tensor(ce[epoch])}
            if cider[epoch] is not None:
                metrics["val/cider_d"] = torch.tensor(cider[epoch])
            task = SimpleNamespace(model=SimpleNamespace(state_dict=lambda w=weights: w))
            save.on_validation_end(_Trainer(callback_metrics=metrics, current_epoch=epoch), task)
        meta = read_recipe(save.folder)
        assert meta["epoch"] == want and meta["selected_by"] == monitor
        assert math.isclose(meta["selected_value"], ce[3] if monitor == "val/ce" else 0.9, rel_tol=1e-6)


def test_resume_refuses_another_monitor(tmp_path):
    from audiocap.text.vocab import Vocab

    save = SaveBest(tmp_path / "checkpoint", {}, Vocab.build([["a"]], min_count=1), monitor="val/spider")
    with pytest.raises(ValueError, match="selected checkpoints by val/ce.*train.monitor=val/ce"):
        save.load_state_dict({"best": 2.0, "history": [2.0]})  # a run from before train.monitor


@pytest.mark.parametrize("extra, message", [
    (["train.monitor=val/spider"], r"train.monitor=val/spider: not computed.*train.val_metrics \(cider_d\)"),
    (["train.monitor=val/cider_d"], r"needs train.val_metrics_every >= 1"),
    (["train.monitor=cider_d", "train.val_metrics_every=1"], r"use val/ce or val/<metric>"),
    (["train.val_metrics=[cider, spice]", "train.val_metrics_every=1"], r"unknown or unusable metric\(s\) cider;"),
])
def test_bad_monitor_is_refused_before_any_work(tmp_path, extra, message):
    recipe = _recipe(tmp_path, tmp_path / "missing.jsonl", "bad", *extra)
    with pytest.raises(ValueError, match=message):
        train_captioner(recipe, tower=object())
    assert not (tmp_path / "cache").exists()


def test_resumed_run_keeps_the_metric_history_and_best(tmp_path, standin_tower, sine_writer):
    manifest = _manifest(tmp_path, sine_writer)
    extra = ("train.monitor=val/cider_d", "train.val_metrics_every=2", "train.val_metrics=[cider_d]")
    train_captioner(_recipe(tmp_path, manifest, "r", "train.epochs=4", *extra), tower=standin_tower())
    first = json.loads((tmp_path / "r" / "val_metrics.json").read_text())["epochs"]
    assert [r["epoch"] for r in first] == [1, 3]  # every 2nd epoch
    ckpt = train_captioner(_recipe(tmp_path, manifest, "r", "train.epochs=5", *extra), tower=standin_tower(),
                           resume=True)
    rows = json.loads((tmp_path / "r" / "val_metrics.json").read_text())["epochs"]
    assert rows[:2] == first and [r["epoch"] for r in rows] == [1, 3, 4]  # and the last epoch
    ciders = [r["cider_d"] for r in rows]
    assert read_recipe(ckpt)["epoch"] == rows[max(range(3), key=lambda i: (ciders[i], -i))]["epoch"]
