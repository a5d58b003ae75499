"""The real backend (CLAP checkpoint + vector index) behind the HTTP app, on a tiny random CLAP.

The model is untrained (a tiny CNN tower and the packaged MiniLM text tower with random
heads), so the test checks the wiring, not quality: scores equal the CLAP cosine computed
directly, an indexed clip finds itself first, only registered files are served.
"""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_standin import tone_bytes

from audiocap.serve.app import create_app
from audiocap.serve.backend import ModelBackend

FREQS = [220.0, 440.0, 880.0, 1760.0]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    import torch

    from audiocap.checkpoint import save_checkpoint
    from audiocap.embed import embed_audio
    from audiocap.index import VectorIndex
    from audiocap.config import recipe_to_dict
    from audiocap.models.clap import ClapConfig, build_clap

    root = tmp_path_factory.mktemp("served")
    torch.manual_seed(0)
    cfg = ClapConfig(audio="tiny", text="minilm", embed_dim=32, head_hidden=64, adapter_hidden=64)
    model = build_clap(cfg, pretrained=False).eval()
    save_checkpoint(root / "clap", model.state_dict(), kind="clap",
                    recipe={"model": recipe_to_dict(cfg)})
    files, items = [], []
    for i, hz in enumerate(FREQS):
        path = root / "audio" / f"tone{i}.wav"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(tone_bytes(hz, seconds=2.0 + i, sr=16000))
        files.append(path)
        items.append({"id": f"tone/{int(hz)}", "path": str(path), "captions": [f"a tone at {int(hz)} hertz"]})
    items.append({"id": "gone", "path": str(root / "audio" / "missing.wav"), "captions": ["missing"]})
    vectors = embed_audio(model, [str(f) for f in files])  # (4, 32)
    vectors = np.concatenate([vectors, vectors[:1] * -1.0])  # a fifth row whose file is gone
    VectorIndex.build(vectors, items).save(root / "index")
    return root, model, vectors


@pytest.fixture(scope="module")
def captioner_folder(tmp_path_factory):
    import dataclasses

    import torch

    from audiocap.checkpoint import save_checkpoint
    from audiocap.models.captioner import Captioner, CaptionerConfig
    from audiocap.text.vocab import Vocab

    torch.manual_seed(0)
    vocab = Vocab.build([["a", "dog", "barks"], ["rain", "falls", "on", "a", "roof"]])
    cfg = CaptionerConfig(vocab_size=len(vocab), frame_dim=64, d_model=32, encoder_layers=1,
                          decoder_layers=1, heads=2, ff_dim=64, max_len=12, proj_dim=16)
    folder = tmp_path_factory.mktemp("captioner") / "ckpt"
    save_checkpoint(folder, Captioner(cfg).state_dict(), kind="captioner",
                    recipe={"model_config": dataclasses.asdict(cfg), "clip_seconds": 10.0,
                            "tower": {"name": "tiny", "options": {}}, "decode": {"max_len": 12}},
                    extras={"vocab": vocab.to_json()})
    return folder, vocab


@pytest.fixture(scope="module")
def loaded(library):
    """The real backend loaded once from the folders (CLAP + index, no captioner)."""
    root, _, _ = library
    return ModelBackend.load(root / "clap", root / "index")


def test_model_backend_search_and_audio(library, loaded):
    from audiocap.embed import embed_text

    root, model, vectors = library
    backend = loaded
    assert backend.sample_rate == 16000
    assert backend.info()["items"] == 5 and backend.info()["playable"] == 4
    with TestClient(base_url="http://localhost", app=create_app(backend)) as client:
        body = client.post("/v1/search", json={"text": "a high pitched beep", "k": 5}).json()
        want = vectors @ embed_text(model, ["a high pitched beep"])[0]  # (5,) cosine
        ids = [f"tone/{int(hz)}" for hz in FREQS] + ["gone"]
        got = {r["id"]: r["score"] for r in body["results"]}
        assert set(got) == set(ids)
        for i, item_id in enumerate(ids):
            assert got[item_id] == pytest.approx(float(want[i]), abs=1e-4)
        assert [r["audio_url"] is None for r in body["results"]].count(True) == 1  # "gone"

        resp = client.post("/v1/search/audio", params={"k": 2},
                           files={"file": ("q.wav", (root / "audio" / "tone2.wav").read_bytes(), "audio/wav")})
        top = resp.json()["results"][0]
        assert top["id"] == "tone/880" and top["score"] == pytest.approx(1.0, abs=1e-3)

        audio = client.get(top["audio_url"])
        assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
        assert audio.content == (root / "audio" / "tone2.wav").read_bytes()
        assert client.get("/v1/audio/gone").status_code == 404
        assert client.get("/v1/audio/" + str(root / "audio" / "tone0.wav")).status_code == 404

        resp = client.post("/v1/caption", files={"file": ("q.wav", tone_bytes(), "audio/wav")})
        assert resp.status_code == 503 and resp.json()["error"] == "no_captioner"


def test_long_audio_query_is_windowed_like_the_index(library):
    from audiocap.serve import wiring

    _, model, _ = library
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(16000 * 25)).astype(np.float32)  # 25 s > 10 s clip
    q = wiring.embed_audio(model, wave)  # (1, D)
    assert q.shape == (1, 32) and np.linalg.norm(q) == pytest.approx(1.0, abs=1e-5)
    from audiocap.audio.io import split_windows
    from audiocap.embed import embed_audio

    windows = split_windows(wave, sr=16000, window=10.0, last="overlap")[0]  # (3, 160000)
    mean = embed_audio(model, list(windows)).mean(0)
    assert np.allclose(q[0], mean / np.linalg.norm(mean), atol=1e-5)


@pytest.mark.parametrize("beam", [1, 3])
def test_caption_matches_the_captioning_pipeline(loaded, captioner_folder, beam):
    from audiocap.audio.io import load_audio

    from audiocap.serve import wiring

    folder, vocab = captioner_folder
    backend = ModelBackend(loaded.clap, loaded.index, wiring.load_captioner(folder))
    assert backend.info()["captioner"] is True
    data = tone_bytes(660.0, seconds=3.0, sr=22050)
    with TestClient(base_url="http://localhost", app=create_app(backend)) as client:
        resp = client.post("/v1/caption", params={"beam": beam},
                           files={"file": ("q.wav", data, "audio/wav")})
    assert resp.status_code == 200, resp.text
    got = resp.json()["captions"]
    pipe = backend.captioner  # the same weights (the debug "tiny" tower is randomly initialised)
    pipe.beam = beam
    want = [c.text for c in pipe.caption_wave(load_audio(data, sr=16000))]
    assert got == want and len(got) == 1
    assert set(got[0].split()) <= set(vocab.words)


@pytest.fixture(scope="module")
def wsac_folder(library, tmp_path_factory):
    """A tiny untrained WSAC checkpoint decoding from the ``clap:`` space of the served CLAP."""
    import dataclasses

    import torch

    from audiocap.checkpoint import save_checkpoint
    from audiocap.models.prefix_decoder import PrefixDecoder, PrefixDecoderConfig
    from audiocap.text.vocab import Vocab

    root, _, vectors = library
    torch.manual_seed(0)
    vocab = Vocab.build([["a", "dog", "barks"], ["rain", "falls", "on", "a", "roof"]])
    cfg = PrefixDecoderConfig(vocab_size=len(vocab), emb_dim=vectors.shape[1], prefix_len=2, d_model=16,
                              n_layers=1, n_heads=2, mlp_hidden=32, max_len=8, dropout=0.0)
    state = {f"model.{k}": v.clone() for k, v in PrefixDecoder(cfg).state_dict().items()}  # untie
    state["memory.embeddings"] = torch.from_numpy(vectors[:2].copy()).float()
    folder = tmp_path_factory.mktemp("wsac") / "ckpt"
    save_checkpoint(folder, state, kind="wsac", recipe={"data": {"space": f"clap:{root / 'clap'}"}},
                    extras={"vocab": vocab.to_json(), "memory_captions": ["a dog barks", "rain falls"],
                            "gap": {"mode": "noise", "noise_std": 0.0}, "decoder": dataclasses.asdict(cfg)})
    return folder, vocab


def test_one_registry_loads_every_kind(library, captioner_folder, wsac_folder):
    import audiocap
    from audiocap.captioning import LoadedCaptioner
    from audiocap.checkpoint import LOADERS, CheckpointError, load_model
    from audiocap.decoding.wsac import WSAC
    from audiocap.models.clap import ClapModel

    root, _, _ = library
    assert set(LOADERS) == {"clap", "captioner", "wsac"}
    assert isinstance(audiocap.load(root / "clap"), ClapModel)
    assert isinstance(audiocap.load(captioner_folder[0]), LoadedCaptioner)
    assert isinstance(audiocap.load(wsac_folder[0]), WSAC)
    with pytest.raises(CheckpointError, match="'clap' checkpoint; expected kind 'captioner' or 'wsac'"):
        load_model(root / "clap", expect=("captioner", "wsac"))


@pytest.mark.parametrize("beam", [1, 3])
def test_serve_loads_clap_captioner_and_wsac(library, captioner_folder, wsac_folder, beam):
    """``ModelBackend.load`` (what ``audiocap serve`` calls) takes a captioner or a WSAC model."""
    import torch

    from audiocap.audio.io import load_audio
    from audiocap.search import ClapEmbedder, embed_wave

    root, _, _ = library
    data = tone_bytes(660.0, seconds=3.0, sr=22050)
    for folder, vocab in (captioner_folder, wsac_folder):
        backend = ModelBackend.load(root / "clap", root / "index", folder)
        assert backend.info()["captioner"] is True
        with TestClient(base_url="http://localhost", app=create_app(backend)) as client:
            resp = client.post("/v1/caption", params={"beam": beam},
                               files={"file": ("q.wav", data, "audio/wav")})
        assert resp.status_code == 200, resp.text
        got = resp.json()["captions"]
        assert len(got) == 1 and set(got[0].split()) <= set(vocab.words)
    wsac = backend.captioner.wsac  # the WSAC caption is the decoder's caption of the windowed CLAP embedding
    emb = embed_wave(ClapEmbedder(backend.captioner.clap), load_audio(data, sr=backend.sample_rate))[0]
    assert got == wsac.caption_embeddings(torch.from_numpy(emb[None, :]).float(), beam=beam)
