"""One 30-s file through every inference path: each path must hand the model the same windows.

A spy audio tower (the debug ``tiny`` CNN with fixed weights) records every waveform row it
is given; the long file is float32 noise, so each recorded row is located in the file exactly
and becomes a ``(start, length)`` window. Every path — index build, audio query, the service's
audio search and caption uploads, ``eval clap``, ``audiocap caption``, ``eval captioner`` and WSAC
(CLI and service) — must show the windows of the checkpoint's long-audio policy, and ``eval
captioner`` must score the caption ``audiocap caption`` prints. Run twice: with a policy stored in
the checkpoints (10 s windows every 8 s) and for old checkpoints without one (the default).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from audiocap.audio.policy import AudioPolicy, window_spans
from audiocap.encoders.tiny import TinyTower

SR = 16000
SEEN: list[np.ndarray] = []  # waveform rows the spy tower was given, in call order


class SpyTower(TinyTower):
    """``tiny`` with weights fixed by a seed (so every load is the same tower) that records inputs."""

    def __init__(self, **kw) -> None:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            super().__init__(**kw)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        SEEN.extend(w.detach().float().cpu().numpy().copy() for w in wave)
        return super().forward(wave)


@pytest.fixture(scope="module", params=["stored", "legacy"])
def world(request, tmp_path_factory):
    """Audio, a manifest, and tiny CLAP, captioner and WSAC checkpoints with the spy tower."""
    from audiocap.checkpoint import save_checkpoint
    from audiocap.data.manifest import Clip, write_manifest
    from audiocap.encoders import AUDIO_ENCODERS
    from audiocap.models.captioner import Captioner, CaptionerConfig
    from audiocap.models.clap import ClapConfig, build_clap
    from audiocap.models.prefix_decoder import PrefixDecoder, PrefixDecoderConfig
    from audiocap.text.vocab import Vocab

    mp = pytest.MonkeyPatch()
    mp.setitem(AUDIO_ENCODERS, "spy", lambda **kw: SpyTower(**kw))
    request.addfinalizer(mp.undo)
    stored = request.param == "stored"
    policy = AudioPolicy(clip_seconds=10.0, hop_seconds=8.0) if stored else AudioPolicy()
    root = tmp_path_factory.mktemp(f"long-{request.param}")
    rng = np.random.default_rng(0)
    long_wave = (0.1 * rng.standard_normal(30 * SR)).astype(np.float32)
    (root / "audio").mkdir()
    sf.write(root / "audio" / "long.wav", long_wave, SR, subtype="FLOAT")  # read back bit-exactly
    sf.write(root / "audio" / "short.wav", (0.1 * rng.standard_normal(4 * SR)).astype(np.float32), SR,
             subtype="FLOAT")
    refs = {"long": ["rain falls on a roof", "a dog barks"], "short": ["a dog barks", "rain on a roof"]}
    manifest = write_manifest(root / "manifest.jsonl", [
        Clip(id=k, audio=f"audio/{k}.wav", duration=d, captions=refs[k], tags=[k], split="test", source="t",
             license="CC0") for k, d in (("long", 30.0), ("short", 4.0))])

    torch.manual_seed(0)
    cfg = ClapConfig(audio="spy", text="minilm", embed_dim=32, head_hidden=64, adapter_hidden=64)
    clap = build_clap(cfg, pretrained=False).eval()
    save_checkpoint(root / "clap", clap.state_dict(), kind="clap", recipe={"model": dataclasses.asdict(cfg)},
                    audio_policy=policy if stored else None)

    vocab = Vocab.build([["a", "dog", "barks"], ["rain", "falls", "on", "a", "roof"]])
    ccfg = CaptionerConfig(vocab_size=len(vocab), frame_dim=64, d_model=32, encoder_layers=1, decoder_layers=1,
                           heads=2, ff_dim=64, max_len=12, proj_dim=16)
    save_checkpoint(root / "captioner", Captioner(ccfg).state_dict(), kind="captioner",
                    recipe={"model_config": dataclasses.asdict(ccfg), "clip_seconds": 10.0,
                            "tower": {"name": "spy", "options": {}}, "decode": {"max_len": 12},
                            "data": {"cache_dir": str(root / "cache")}},
                    extras={"vocab": vocab.to_json()},
                    audio_policy=dataclasses.replace(policy, combine="concat") if stored else None)

    pcfg = PrefixDecoderConfig(vocab_size=len(vocab), emb_dim=32, prefix_len=2, d_model=16, n_layers=1,
                               n_heads=2, mlp_hidden=32, max_len=8, dropout=0.0)
    state = {f"model.{k}": v.clone() for k, v in PrefixDecoder(pcfg).state_dict().items()}
    state["memory.embeddings"] = torch.nn.functional.normalize(torch.randn(2, 32), dim=-1)
    save_checkpoint(root / "wsac", state, kind="wsac", recipe={"data": {"space": f"clap:{root / 'clap'}"}},
                    extras={"vocab": vocab.to_json(), "memory_captions": ["a dog barks", "rain falls"],
                            "gap": {"mode": "noise", "noise_std": 0.0}, "decoder": dataclasses.asdict(pcfg)},
                    audio_policy=policy if stored else None)
    want = sorted((a, b - a) for a, b in window_spans(len(long_wave), sr=SR, policy=policy))
    return {"root": root, "manifest": manifest, "wave": long_wave, "policy": policy, "want": want}


def windows_of(wave: np.ndarray, rows: list[np.ndarray]) -> list[tuple[int, int]]:
    """Sorted ``(start, length)`` of the recorded rows that are slices of ``wave`` (others dropped)."""
    out = []
    for row in rows:
        for s in np.flatnonzero(wave == row[0]):
            if s + len(row) <= len(wave) and np.array_equal(wave[s : s + len(row)], row):
                out.append((int(s), len(row)))
                break
    return sorted(out)


def spy(world, fn):
    """Run ``fn`` and return (its result, the windows of the long file the tower saw)."""
    SEEN.clear()
    result = fn()
    return result, windows_of(world["wave"], SEEN)


def cli_caption(model, path, *extra) -> list[dict]:
    from typer.testing import CliRunner

    from audiocap.cli import app

    res = CliRunner().invoke(app, ["caption", str(path), "--model", str(model), "--json", *extra])
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def test_every_path_sees_the_policy_windows(world):
    from fastapi.testclient import TestClient

    from audiocap.evaluation.captioner import evaluate_captioner, score_captions
    from audiocap.evaluation.clap import evaluate_clap, embed_split, load_for_eval, split_clips
    from audiocap.search import build_index, search
    from audiocap.serve.app import create_app
    from audiocap.serve.backend import ModelBackend

    root, want = world["root"], world["want"]
    assert len(want) == (4 if world["policy"].hop_seconds == 8.0 else 3)
    long_path = root / "audio" / "long.wav"

    (index, report), seen = spy(world, lambda: build_index(root / "audio", root / "clap", root / "index",
                                                           progress=False))
    assert seen == want and report["windows"] == len(want) + 1  # + the 4-s file, one window
    hits, seen = spy(world, lambda: search(root / "index", audio=long_path, k=2))
    assert seen == want and hits[0]["id"] == "long.wav" and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)

    model = load_for_eval(str(root / "clap"))
    assert model.audio_policy == world["policy"]
    (a, _), seen = spy(world, lambda: embed_split(model, world["manifest"], split_clips(world["manifest"], "test"),
                                                  "test", cache_dir=str(root / "cache")))
    assert seen == want
    from audiocap.search import ClapEmbedder, embed_file

    assert np.allclose(a[0].numpy(), embed_file(ClapEmbedder(model), long_path)[0], atol=1e-4)  # one vector
    import audiocap

    api, seen = spy(world, lambda: audiocap.embed_audio(root / "clap", [long_path]))  # the Python API
    assert seen == want and np.allclose(api[0], a[0].numpy(), atol=1e-4)
    res = evaluate_clap({"m": model}, world["manifest"], cache_dir=str(root / "cache"))  # cached windows now
    assert res["n_audio"] == 2

    backend = ModelBackend.load(root / "clap", root / "index", root / "captioner")
    with TestClient(base_url="http://localhost", app=create_app(backend)) as client:
        resp, seen = spy(world, lambda: client.post("/v1/search/audio", params={"k": 2}, files={
            "file": ("q.wav", long_path.read_bytes(), "audio/wav")}))
    assert resp.status_code == 200, resp.text
    assert seen == want and resp.json()["results"][0]["score"] == pytest.approx(1.0, abs=1e-4)

    printed, seen = spy(world, lambda: cli_caption(root / "captioner", long_path))
    assert seen == want and len(printed) == 1 and printed[0]["end"] == pytest.approx(30.0)
    served, seen = spy(world, lambda: backend.caption(world["wave"], 3))
    assert seen == want and served == [printed[0]["caption"]]

    rep, seen = spy(world, lambda: evaluate_captioner([root / "captioner"], world["manifest"], beam=3,
                                                      metrics=["bleu_1", "rouge_l"]))
    assert seen == want  # the window cache computed the same windows, file by file
    preds = {r["id"]: r["caption"] for r in rep["predictions"]}
    assert preds["long"] == printed[0]["caption"]  # eval scores what `audiocap caption` prints
    assert rep["windows"] == len(want) + 1 and rep["audio_policy"]["combine"] == "concat"
    alone = score_captions([printed[0]["caption"] or "empty"], [["rain falls on a roof", "a dog barks"]],
                           metrics=["rouge_l"])  # the printed caption scored on its own
    ids = [r["id"] for r in rep["predictions"]]
    assert rep["metrics"]["rouge_l"].per_item[ids.index("long")] == pytest.approx(alone["rouge_l"].per_item[0])

    wsac_cli, seen = spy(world, lambda: cli_caption(root / "wsac", long_path))
    assert seen == want and len(wsac_cli) == 1
    from audiocap.serve import wiring

    wsac_served, seen = spy(world, lambda: wiring.caption(wiring.load_captioner(root / "wsac"), world["wave"],
                                                          sr=SR, beam=3))
    assert seen == want and wsac_served == [wsac_cli[0]["caption"]]


def test_per_window_captions_follow_the_policy(world):
    from audiocap.serve import wiring

    root = world["root"]
    printed, seen = spy(world, lambda: cli_caption(root / "captioner", root / "audio" / "long.wav",
                                                   "--per-window"))
    assert seen == world["want"]
    assert [(p["start"], p["end"]) for p in printed] == [(a / SR, (a + n) / SR) for a, n in world["want"]]
    pipe = wiring.load_captioner(root / "captioner")
    served = wiring.caption_windows(pipe, world["wave"], sr=SR, beam=3)
    assert served == [(p["start"], p["end"], p["caption"]) for p in printed]
