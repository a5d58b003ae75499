"""Shipped-model packaging: heads-only CLAP checkpoints, reference outputs, default models."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file, save_file

from audiocap.checkpoint import CheckpointError, read_recipe, save_checkpoint
from audiocap.pretrained import DefaultModelMissing, default_model, has_default, package_model, verify_reference

CARD = {"name": "stand-in", "summary": "A tiny untrained stand-in.", "reproduce": "pytest tests/pretrained",
        "tolerance": "exact", "data": "none", "metrics": {"t2a R@1": "n/a"}}


class FixedTower(torch.nn.Module):
    """Deterministic frozen tower: 0.25 s frames at 8 kHz -> log spectrum -> fixed projection (B, T, 16)."""

    sample_rate = 8000
    frame_dim = 16

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.proj = torch.nn.Parameter(torch.randn(1001, 16, generator=g) / 30, requires_grad=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        n = max(wave.shape[1] // 2000 * 2000, 2000)
        wave = torch.nn.functional.pad(wave, (0, max(0, n - wave.shape[1])))[:, :n]
        return torch.log1p(torch.fft.rfft(wave.view(wave.shape[0], -1, 2000)).abs()) @ self.proj


@pytest.fixture(scope="module")
def trained_clap(tmp_path_factory):
    """A tiny CLAP (random tiny audio tower, the packaged MiniLM) saved as training saves it."""
    from audiocap.config import recipe_to_dict
    from audiocap.models.clap import ClapConfig, build_clap

    folder = tmp_path_factory.mktemp("clap") / "trained"
    torch.manual_seed(0)
    cfg = ClapConfig(audio="tiny", text="minilm", embed_dim=32, head_hidden=64, adapter_hidden=64)
    model = build_clap(cfg, pretrained=True)
    save_checkpoint(folder, model.state_dict(), kind="clap", recipe={"model": recipe_to_dict(cfg)},
                    extras={"calibration": {"a": 12.0, "b": -3.0, "threshold": 0.3, "info": {"stand_in": True}}})
    return folder


@pytest.fixture(scope="module")
def packaged_clap(trained_clap, tmp_path_factory):
    return package_model(trained_clap, tmp_path_factory.mktemp("pkg") / "clap-default", card=CARD)


def test_clap_package_leaves_out_the_packaged_tower_and_reproduces_reference(trained_clap, packaged_clap):
    from audiocap.models.clap import load_clap

    recipe = read_recipe(packaged_clap)
    assert recipe["excluded_prefixes"] == ["text_tower."]  # MiniLM comes from its package; tiny is trained
    assert recipe["stored_dtype"] == "float16"
    stored = load_file(str(packaged_clap / "model.safetensors"))
    assert not any(k.startswith("text_tower.") for k in stored)
    assert all(v.dtype == torch.float16 for v in stored.values() if v.is_floating_point())
    full = (trained_clap / "model.safetensors").stat().st_size
    assert (packaged_clap / "model.safetensors").stat().st_size < full / 10
    assert (packaged_clap / "calibration.json").is_file()  # extras travel with the weights
    card = (packaged_clap / "MODEL_CARD.md").read_text()
    for needle in ("CC BY 4.0", "Apache-2.0", "CC-BY-SA-3.0", "pytest tests/pretrained", "text_tower."):
        assert needle in card
    model = load_clap(packaged_clap)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    report = verify_reference(packaged_clap, atol=0.0)
    assert report["ok"] and report["max_abs_diff"] == 0.0, report


def test_packaged_clap_matches_trained_within_fp16(trained_clap, packaged_clap):
    import numpy as np

    from audiocap.embed import embed_text
    from audiocap.models.clap import load_clap

    a = embed_text(load_clap(trained_clap), ["a dog barks", "rain"])
    b = embed_text(load_clap(packaged_clap), ["a dog barks", "rain"])
    assert np.max(np.abs(a - b)) < 5e-3


def test_heads_only_load_rejects_missing_or_stray_tensors(packaged_clap, tmp_path):
    from audiocap.models.clap import load_clap

    for name, edit in (("missing-head", lambda s: s.pop("audio_proj.0.weight")),
                       ("stray", lambda s: s.__setitem__("surprise.weight", torch.zeros(2))),
                       ("stored-excluded", lambda s: s.__setitem__("text_tower.bert.pooler.x", torch.zeros(2)))):
        bad = tmp_path / name
        bad.mkdir()
        for f in packaged_clap.iterdir():
            (bad / f.name).write_bytes(f.read_bytes())
        state = load_file(str(bad / "model.safetensors"))
        edit(state)
        save_file(state, str(bad / "model.safetensors"))
        with pytest.raises(CheckpointError, match=str(bad)):
            load_clap(bad)
    with pytest.raises(CheckpointError, match="audio_proj.0.weight"):
        load_clap(tmp_path / "missing-head")


def test_partly_trained_tower_keeps_only_changed_submodules(trained_clap):
    from audiocap.checkpoint import load_checkpoint
    from audiocap.pretrained.package import frozen_prefixes

    state, recipe = load_checkpoint(trained_clap)
    state = dict(state)
    key = next(k for k in state if k.startswith("text_tower.bert.encoder.layer.1."))
    state[key] = state[key] + 1.0
    prefixes = frozen_prefixes(state, recipe["model"])
    assert "text_tower." not in prefixes
    assert "text_tower.bert.encoder.layer.0." in prefixes
    assert not any(key.startswith(p) for p in prefixes)


def test_captioner_package_copies_and_reproduces_caption(tmp_path):
    from audiocap.models.captioner import Captioner, CaptionerConfig
    from audiocap.text.vocab import Vocab

    torch.manual_seed(0)
    vocab = Vocab.build([["a", "dog", "barks"], ["rain", "falls", "on", "a", "roof"]])
    cfg = CaptionerConfig(vocab_size=len(vocab), frame_dim=16, d_model=32, encoder_layers=1, decoder_layers=1,
                          heads=2, ff_dim=64, max_len=12, proj_dim=16)
    src = tmp_path / "captioner"
    save_checkpoint(src, Captioner(cfg).state_dict(), kind="captioner",
                    recipe={"model_config": dataclasses.asdict(cfg), "clip_seconds": 10.0,
                            "tower": {"name": "tiny", "options": {}}, "decode": {"max_len": 12}},
                    extras={"vocab": vocab.to_json()})
    dst = package_model(src, tmp_path / "captioner-default", card=CARD, tower=FixedTower())
    assert (dst / "model.safetensors").read_bytes() == (src / "model.safetensors").read_bytes()
    assert (dst / "vocab.json").is_file() and (dst / "MODEL_CARD.md").is_file()
    report = verify_reference(dst, tower=FixedTower(), score_atol=0.0)
    assert report["ok"] and not report["mismatches"], report
    with pytest.raises(FileExistsError):
        package_model(src, dst, card=CARD, tower=FixedTower())


def test_default_model_missing_and_present(tmp_path, monkeypatch, packaged_clap):
    monkeypatch.setenv("AUDIOCAP_PRETRAINED_DIR", str(tmp_path))
    with pytest.raises(DefaultModelMissing, match="--model"):
        default_model("clap")
    assert not has_default("captioner")
    (tmp_path / "clap-default").symlink_to(packaged_clap)
    assert default_model("clap") == tmp_path / "clap-default"
    with pytest.raises(ValueError):
        default_model("wsac")


@pytest.mark.skipif(not has_default("clap"), reason="this build ships no default CLAP model")
def test_shipped_clap_reproduces_its_reference():
    report = verify_reference(default_model("clap"))
    assert report["ok"], report


@pytest.mark.skipif(not has_default("captioner"), reason="this build ships no default captioner")
def test_shipped_captioner_reproduces_its_reference():
    report = verify_reference(default_model("captioner"))
    assert report["ok"], report
