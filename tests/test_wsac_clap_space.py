"""WSAC in a ``clap:`` space, captioning audio files the way a user does.

The other WSAC tests decode from the text-only ``minilm`` space or from an untrained CLAP. Here a
tiny CLAP model is trained on short synthetic sounds of four kinds (a high beep, a low hum, hiss,
clicks: tests/clap_helpers.py), a WSAC decoder is trained on the training captions alone in that
model's space (gap: noise + Δgap shift, the shift estimated from the CLAP audio embeddings of the
training clips), and held-out audio files are captioned through ``audiocap caption``, the Python
API and the service's wiring. Checked: every caption is made of the decoder's vocabulary and names
the right kind of sound; the decoder's input is the CLAP embedding of the file, computed through
the CLAP checkpoint's long-audio policy (1-s windows, as the model was trained; a 3.5-s file is
four windows, where the default policy would see one); the stored Δgap is the mean audio minus
mean text embedding of the paired clips.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from clap_helpers import CLASSES, synth, write_dataset

REPO = Path(__file__).resolve().parents[1]
SR = 16000
LONG_SECONDS = 3.5  # longer than the 1-s training clip: four windows under the checkpoint's policy


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A trained tiny CLAP, a WSAC decoder trained on captions in its space, and audio to caption."""
    from audiocap.config import load_recipe
    from audiocap.train.clap import ClapRecipe, train_clap
    from audiocap.train.wsac import WSACRecipe, train_wsac

    root = tmp_path_factory.mktemp("wsac-clap")
    manifest = write_dataset(root / "ds", per_class=6, seconds=1.0)
    torch.manual_seed(0)
    clap = train_clap(load_recipe(ClapRecipe, REPO / "configs" / "clap" / "debug.yaml", overrides=[
        f"out={root / 'clap'}", f"data.manifest={manifest}", f"data.cache_dir={root / 'cache'}",
        "data.max_seconds=1.0", "model.freeze_audio=true", "model.adapter=true", "model.adapter_hidden=32",
        "trainer.max_epochs=10", "trainer.batch_size=8", "optim.lr=0.003", "optim.warmup_steps=2",
        "trainer.progress_bar=false"]))

    recipe = WSACRecipe()
    d, g, m, o = recipe.data, recipe.gap, recipe.model, recipe.optim
    d.captions, d.split, d.space, d.cache_dir = str(manifest), "train", f"clap:{clap}", str(root / "cache")
    g.mode, g.paired_manifest, g.paired_split = "noise+shift", str(manifest), "train"
    m.prefix_len, m.d_model, m.n_heads, m.n_layers, m.mlp_hidden, m.min_count, m.dropout, m.max_len = \
        2, 32, 4, 2, 64, 1, 0.0, 12
    o.epochs, o.batch_size, o.lr, o.warmup_steps = 60, 8, 3e-3, 5
    torch.manual_seed(0)
    wsac = train_wsac(recipe, root / "wsac", progress=False)

    rng = np.random.default_rng(7)
    audio = {}  # held-out files: one per kind, the beep and the hum also as a long file
    for name, (kind, _) in CLASSES.items():
        audio[name] = root / f"{name}.wav"
        sf.write(audio[name], synth(kind, SR, 1.0, rng), SR)
    for name in ("beep", "hum"):
        audio[f"long-{name}"] = root / f"long-{name}.wav"
        sf.write(audio[f"long-{name}"], synth(CLASSES[name][0], SR, LONG_SECONDS, rng), SR)
    return {"root": root, "manifest": manifest, "clap": clap, "wsac": wsac, "audio": audio}


def family(caption: str) -> str:
    """The kind of sound whose training captions share the most words with ``caption``."""
    words = set(caption.split())
    overlap = {name: len(words & {w for c in caps for w in c.lower().split()}) for name, (_, caps) in CLASSES.items()}
    best = max(overlap.values())
    winners = [n for n, v in overlap.items() if v == best]
    return winners[0] if best > 0 and len(winners) == 1 else "?"


def truth(name: str) -> str:
    return name.removeprefix("long-")


def cli_caption(model: Path, files: list[Path], *extra: str) -> list[dict]:
    from typer.testing import CliRunner

    from audiocap.cli import app

    res = CliRunner().invoke(app, ["caption", *map(str, files), "--model", str(model), "--json", *extra])
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def test_checkpoint_decodes_under_its_clap_policy(world):
    from audiocap.audio.policy import AudioPolicy, audio_policy_of
    from audiocap.checkpoint import read_recipe

    want = AudioPolicy(clip_seconds=1.0, hop_seconds=1.0, combine="mean")
    assert audio_policy_of(world["clap"]) == want  # CLAP stores its training clip length
    assert audio_policy_of(world["wsac"]) == want  # WSAC stores the policy of its space
    assert read_recipe(world["wsac"])["data"]["space"] == f"clap:{world['clap']}"


def test_caption_cli_names_the_right_sound_from_the_vocabulary(world):
    import audiocap

    model = audiocap.load(world["wsac"])
    names = list(world["audio"])
    files = [world["audio"][n] for n in names]
    for strategy in ("direct", "nnd"):
        printed = cli_caption(world["wsac"], files, "--strategy", strategy)
        assert [Path(p["file"]).name for p in printed] == [f.name for f in files]
        got = {n: p["caption"] for n, p in zip(names, printed)}
        for name, text in got.items():
            assert text and set(text.split()) <= set(model.vocab.words) - {"<unk>"}, (strategy, name, text)
        assert {n: family(t) for n, t in got.items()} == {n: truth(n) for n in names}, (strategy, got)
        assert printed[names.index("long-beep")]["end"] == pytest.approx(LONG_SECONDS)
        api = [c.text for c in audiocap.caption(files, world["wsac"], strategy=strategy)]
        assert api == [got[n] for n in names]  # the Python API prints what the CLI prints


def test_decoder_input_is_the_policy_windowed_clap_embedding(world, monkeypatch):
    """The embedding WSAC decodes from is CLAP's embedding of the file: the normalized mean over the
    windows of the CLAP checkpoint's policy, which the audio tower is given one by one."""
    import audiocap
    import audiocap.embed
    from audiocap.audio.io import load_audio
    from audiocap.audio.policy import audio_policy_of, audio_windows
    from audiocap.decoding.wsac import WSAC

    clap = audiocap.load(world["clap"])
    long_file = world["audio"]["long-beep"]
    wave = load_audio(long_file, sr=clap.sample_rate)
    windows, spans = audio_windows(wave, sr=clap.sample_rate, policy=audio_policy_of(world["clap"]))
    assert spans == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (2.5, 3.5)]
    per_window = audiocap.embed.embed_audio(clap, windows)  # (4, D)
    mean = per_window.mean(0)
    want = mean / np.linalg.norm(mean)
    whole = audiocap.embed.embed_audio(clap, [wave])[0]  # what embedding the file whole would give
    assert np.dot(want, whole) < 0.9999  # so the check below can tell the two apart

    seen_windows, seen_inputs = [], []
    real_embed, real_caption = audiocap.embed.embed_audio, WSAC.caption_embeddings

    def spy_embed(model, items, **kw):
        seen_windows.extend(np.asarray(w).copy() for w in items)
        return real_embed(model, items, **kw)

    def spy_caption(self, emb, **kw):
        seen_inputs.append(emb.detach().clone())
        return real_caption(self, emb, **kw)

    monkeypatch.setattr(audiocap.embed, "embed_audio", spy_embed)
    monkeypatch.setattr(WSAC, "caption_embeddings", spy_caption)
    printed = cli_caption(world["wsac"], [long_file])
    assert len(printed) == 1 and family(printed[0]["caption"]) == "beep"
    assert len(seen_windows) == len(windows)
    assert all(np.array_equal(a, b) for a, b in zip(seen_windows, windows))  # the same windows, in order
    assert len(seen_inputs) == 1 and seen_inputs[0].shape == (1, want.shape[0])
    assert np.allclose(seen_inputs[0][0].numpy(), want, atol=1e-5)
    api = audiocap.embed_audio(world["clap"], [long_file])[0]  # CLAP's own embedding of the file
    assert np.allclose(seen_inputs[0][0].numpy(), api, atol=1e-5)


def test_stored_gap_is_mean_audio_minus_mean_text(world):
    import audiocap
    from audiocap.data.manifest import audio_path, read_manifest
    from audiocap.decoding.wsac import load_wsac

    wsac = load_wsac(world["wsac"])
    train = [c for c in read_manifest(world["manifest"]) if c.split == "train"]
    audio = audiocap.embed_audio(world["clap"], [audio_path(world["manifest"], c) for c in train])
    text = audiocap.embed_text(world["clap"], [cap for c in train for cap in c.captions])
    want = audio.mean(0) - text.mean(0)
    assert np.linalg.norm(want) > 0.1  # a real gap between the two sides of the tiny CLAP space
    assert np.allclose(wsac.gap["shift"].numpy(), want, atol=1e-5)
    assert wsac.gap["mode"] == "noise+shift" and wsac.gap["noise_std"] > 0


def test_service_captions_the_long_file_like_the_cli(world):
    from audiocap.audio.io import load_audio
    from audiocap.serve import wiring

    pipe = wiring.load_captioner(world["wsac"])
    for name in ("long-beep", "long-hum"):
        wave = load_audio(world["audio"][name], sr=SR)
        served = wiring.caption(pipe, wave, sr=SR, beam=3)
        assert served == [cli_caption(world["wsac"], [world["audio"][name]])[0]["caption"]]
        assert family(served[0]) == truth(name)
