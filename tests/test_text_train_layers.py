"""Training only the top layers of the text tower (issue 14 item 3): the cached states below the
trained layers give exactly what the whole tower computes, only those layers move in training, and
the checkpoint the user loads embeds text through the full tower the same way training did."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from audiocap.config import load_recipe
from audiocap.train.clap import ClapRecipe, train_clap

REPO = Path(__file__).resolve().parents[1]
TEXTS = ["a dog barks", "against a background of rain, a door slams twice then a car horn honks",
         "Ein Hund bellt 🐕 — «ça aboie»", "   "]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from clap_helpers import write_dataset, write_tiny_bert

    root = tmp_path_factory.mktemp("textlayers")
    return {"manifest": write_dataset(root / "ds"), "bert": write_tiny_bert(root / "bert"), "root": root}


def tower(data, k: int):
    from audiocap.encoders import build_text_encoder

    return build_text_encoder("hf", folder=str(data["bert"]), train_layers=k).eval()


def test_cached_states_plus_top_layers_equal_the_whole_tower(data):
    t = tower(data, 1)
    with torch.no_grad():
        full = t(TEXTS)
        cached = t.cache_features(TEXTS)  # (B, L, D + 1): states below the trained layer + mask
        assert cached.shape[0] == len(TEXTS) and cached.shape[2] == t.dim + 1
        assert torch.allclose(t.from_cache(cached), full, atol=1e-5)
        # rows padded to a longer corpus-wide length, and a batch of one short row, give the same
        padded = torch.nn.functional.pad(cached, (0, 0, 0, 7))
        assert torch.allclose(t.from_cache(padded), full, atol=1e-5)
        assert torch.allclose(t.from_cache(cached[:1]), full[:1], atol=1e-5)
        assert torch.allclose(t.from_cache(cached.half()), full, atol=2e-2)  # the cache stores float16
    # a frozen tower caches its pooled output and from_cache is the identity
    f = tower(data, 0)
    with torch.no_grad():
        assert torch.equal(f.from_cache(f.cache_features(TEXTS)), f(TEXTS))


def test_only_the_top_layers_train(data):
    t = tower(data, 1)
    names = {n for n, p in t.named_parameters() if p.requires_grad}
    assert names and all(n.startswith("bert.encoder.layer.1.") for n in names)  # the tiny BERT has 2 layers
    t.train()
    assert t.bert.encoder.layer[1].training and not t.bert.encoder.layer[0].training
    assert not t.bert.embeddings.training
    with pytest.raises(ValueError, match="train_layers"):
        tower(data, 3)
    from audiocap.encoders import build_text_encoder

    with pytest.raises(ValueError, match="train_layers"):
        build_text_encoder("hf", folder=str(data["bert"]), train_layers=1, trainable=True)


def test_training_moves_only_the_top_layer_and_the_checkpoint_embeds_like_training(data, tmp_path):
    from audiocap.embed import embed_text
    from audiocap.models.clap import build_clap, load_clap
    from audiocap.pretrained.package import frozen_prefixes
    from audiocap.train.features import cache_text_features, read_cache

    cache = tmp_path / "cache"
    recipe = load_recipe(ClapRecipe, REPO / "configs" / "clap" / "debug.yaml", [
        f"out={tmp_path / 'run'}", f"data.manifest={data['manifest']}", "model.text=hf",
        f"model.text_kw={{folder: {data['bert']}, train_layers: 1}}", f"data.cache_dir={cache}",
        "trainer.progress_bar=false", "trainer.max_epochs=3", "optim.tower_lr_scale=1.0"])
    out = train_clap(recipe)
    model = load_clap(out)
    before = build_clap(recipe.model).state_dict()
    after = model.state_dict()
    moved = {k for k in before if k.startswith("text_tower.") and not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith("text_tower.bert.encoder.layer.1.") for k in moved)
    # the cache training read holds token states of the untouched layers: the loaded model
    # embeds texts through its whole tower exactly as training embedded the cached states
    path = cache_text_features(model.text_tower, TEXTS, cache)
    feats = read_cache(path)[0]["feats"]
    assert feats.dtype == torch.float16 and feats.ndim == 3
    with torch.no_grad():
        from_cache = model.encode_text(text_feats=feats)
    assert torch.allclose(torch.as_tensor(embed_text(model, TEXTS)), from_cache, atol=2e-3)


def test_package_stores_the_trained_layers_only():
    """With MiniLM from its package, a checkpoint whose top layer trained stores that layer and
    leaves the embeddings and the other five layers to the package."""
    from audiocap.models.clap import build_clap
    from audiocap.pretrained.package import frozen_prefixes

    cfg = {"audio": "aisfx", "audio_kw": {"hop_frames": 100}, "text": "minilm", "text_kw": {"train_layers": 1},
           "embed_dim": 32, "head_hidden": 32, "adapter_hidden": 32}
    state = build_clap(cfg).state_dict()
    state["text_tower.bert.encoder.layer.5.output.dense.weight"] += 0.01  # "trained"
    covered = frozen_prefixes(state, cfg)
    stored = [k for k in state if not k.startswith(tuple(covered))]
    assert "text_tower.bert.encoder.layer.5.output.dense.weight" in stored
    assert not any(k.startswith(("text_tower.bert.encoder.layer.4.", "text_tower.bert.embeddings.",
                                 "audio_tower.")) for k in stored)
