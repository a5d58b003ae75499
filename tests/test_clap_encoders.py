"""Audio/text towers: aisfx equivalence with the package, CNN14 stand-in checkpoint, registries."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from audiocap.encoders import build_audio_encoder, build_text_encoder
from audiocap.models.clap import ClapConfig, build_clap

HAS_AISFX = importlib.util.find_spec("aisfx") is not None


@pytest.mark.skipif(not HAS_AISFX, reason="aisfx not installed (make setup installs it with --no-deps)")
def test_aisfx_matches_package_network(tmp_path, monkeypatch):
    from aisfx.models.cnn2d import EmbeddingNet  # the package's own module code

    from audiocap.encoders.aisfx import convert_aisfx_checkpoint, frame_windows

    monkeypatch.setenv("AUDIOCAP_CACHE", str(tmp_path))
    path = convert_aisfx_checkpoint()  # fresh conversion into tmp_path
    state = load_file(str(path))
    assert len(state) == 48 and path.parent == tmp_path
    tower = build_audio_encoder("aisfx").eval()  # loads tmp_path/aisfx.safetensors strictly
    ref = EmbeddingNet("max", 3, 1, 64).eval()
    ref.load_state_dict(state, strict=True)
    g = torch.Generator().manual_seed(0)
    wave = 0.1 * torch.randn(2, 44100 * 4, generator=g)  # (B, N) 4 s
    with torch.no_grad():
        frames = tower(wave)  # (B, W, 512)
        windows = frame_windows(tower.frontend(wave))  # (B, W, 100, 96)
        expected = ref(windows.flatten(0, 1)).view(2, -1, 512)
    assert frames.shape == (2, 3, 512)  # 173 frames -> windows at 0, 50, 73
    assert torch.allclose(frames, expected, atol=1e-5)
    assert (frames >= 0).all() and tower.pool(frames).shape == (2, 512)


def test_aisfx_frontend_shape_and_scale():
    from audiocap.encoders.frontend import AisfxFrontEnd

    fe = AisfxFrontEnd()
    assert torch.allclose(fe.melW.sum(0), torch.ones(96), atol=1e-5)  # filters sum to 1
    spec = fe(torch.randn(1, 44100))
    assert spec.shape == (1, 1 + 44100 // 1024, 96) and spec.min() >= 0


def _panns_layout(seed: int = 0) -> dict[str, torch.Tensor]:
    """The public Cnn14_mAP=0.431.pth key/shape layout, written out from the PANNs architecture."""
    g = torch.Generator().manual_seed(seed)
    sd = {"spectrogram_extractor.stft.conv_real.weight": (513, 1, 1024),
          "spectrogram_extractor.stft.conv_imag.weight": (513, 1, 1024),
          "logmel_extractor.melW": (513, 64)}
    def bn(p, c):
        sd.update({f"{p}.weight": (c,), f"{p}.bias": (c,), f"{p}.running_mean": (c,), f"{p}.running_var": (c,),
                   f"{p}.num_batches_tracked": ()})
    bn("bn0", 64)
    chans = [1, 64, 128, 256, 512, 1024, 2048]
    for i in range(6):
        sd[f"conv_block{i + 1}.conv1.weight"] = (chans[i + 1], chans[i], 3, 3)
        sd[f"conv_block{i + 1}.conv2.weight"] = (chans[i + 1], chans[i + 1], 3, 3)
        bn(f"conv_block{i + 1}.bn1", chans[i + 1])
        bn(f"conv_block{i + 1}.bn2", chans[i + 1])
    sd.update({"fc1.weight": (2048, 2048), "fc1.bias": (2048,), "fc_audioset.weight": (527, 2048),
               "fc_audioset.bias": (527,)})
    out = {}
    for k, shape in sd.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(1000)
        elif k.endswith("running_var"):
            out[k] = torch.rand(shape, generator=g) + 0.5
        elif math.prod(shape) > 100_000:  # large: cheap distinct values
            out[k] = torch.linspace(-0.02, 0.02, math.prod(shape)).view(shape)
        else:
            out[k] = 0.02 * torch.randn(shape, generator=g)
    return out


def test_cnn14_loads_panns_standin_strictly(tmp_path):
    state = _panns_layout()
    path = tmp_path / "Cnn14_mAP=0.431.pth"
    torch.save({"model": state, "sampler": None}, path)  # the PANNs wrapping
    tower = build_audio_encoder("cnn14", weights=str(path)).eval()
    loaded = tower.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    with torch.no_grad():
        frames = tower(0.1 * torch.randn(2, 32000))  # 1 s at 32 kHz
    assert frames.shape[0] == 2 and frames.shape[2] == 2048
    assert tower.pool(frames).shape == (2, 2048)
    bad = tmp_path / "bad.pth"
    torch.save({"model": {"x": torch.zeros(1)}}, bad)
    with pytest.raises(ValueError, match="bad.pth"):
        build_audio_encoder("cnn14", weights=str(bad))


def test_tiny_and_registry_errors():
    tower = build_audio_encoder("tiny", width=4)
    frames = tower(torch.randn(3, 16000))
    assert frames.shape[0] == 3 and frames.shape[2] == 16
    with pytest.raises(ValueError, match="unknown audio encoder"):
        build_audio_encoder("vggish")
    with pytest.raises(ValueError, match="folder"):
        build_text_encoder("hf")


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    from clap_helpers import write_tiny_bert

    return write_tiny_bert(tmp_path_factory.mktemp("bert"))


def test_hf_text_tower_and_encode_normalized(bert):
    folder = bert
    cfg = ClapConfig(audio="tiny", audio_kw={"width": 4}, text="hf", text_kw={"folder": str(folder)},
                     freeze_audio=False, embed_dim=16, head_hidden=32, adapter_hidden=8)
    model = build_clap(cfg).eval()
    assert model.text_tower.dim == 32 and not any(p.requires_grad for p in model.text_tower.parameters())
    a = model.encode_audio(torch.randn(2, 16000))
    t = model.encode_text(["a dog barks", "rain on a roof", "x"])
    assert a.shape == (2, 16) and t.shape == (3, 16)
    assert torch.allclose(a.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(t.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert model.scale().item() == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert model.scale().item() == 100.0  # clamped


def test_embed_api_numpy(tmp_path, bert):
    from audiocap.audio.io import AudioError
    from audiocap.embed import embed_audio, embed_text

    folder = bert
    model = build_clap(ClapConfig(audio="tiny", audio_kw={"width": 4}, text="hf", text_kw={"folder": str(folder)},
                                  embed_dim=16, head_hidden=32, adapter_hidden=8))
    import soundfile as sf

    sf.write(tmp_path / "a.wav", 0.1 * np.random.default_rng(0).standard_normal(8000).astype(np.float32), 16000)
    waves = [np.zeros(16000, np.float32), 0.1 * np.ones(8000, np.float32)]
    out = embed_audio(model, waves + [tmp_path / "a.wav"], batch_size=2)
    assert out.shape == (3, 16) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    assert np.allclose(out[1], out[2], atol=1e-5) is False
    single = embed_audio(model, [waves[1]])
    assert np.allclose(single[0], out[1], atol=1e-5)  # batching does not change results
    assert embed_text(model, ["a", "b c"]).shape == (2, 16)
    with pytest.raises(AudioError, match="missing.wav"):
        embed_audio(model, [tmp_path / "missing.wav"])
