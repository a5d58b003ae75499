"""audiocap's aisfx front end and tower against the aisfx package's own feature code on real clips.

The reference is the package's ISMIR pipeline: ``spectrogram_essentia.compute_spectrogram`` (Essentia
frame cutter, Hann window, HTK unit-sum mel bands, ``log10(1e4·x + 1)``), ``spectrogram_normalize``
('original' scale) and ``blocking`` into 100-frame windows, fed to the package's ``EmbeddingNet``.
Both sides get the same 44.1 kHz samples (written to a float WAV), so only the feature code is
compared. Essentia does not peak-normalize (the package's librosa path does, and so does audiocap by
default), so audiocap runs with ``peak_normalize=False`` here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

FOLEY_TEST = Path(__file__).resolve().parents[1] / "data" / "foley-default" / "audio" / "test"
# without the demo data: three recordings of the minetest-data package the foley builder also uses
MINETEST = ("default_furnace_active.ogg", "env_sounds_lava.1.ogg", "env_sounds_water.1.ogg")

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("essentia") is None or importlib.util.find_spec("aisfx") is None,
    reason="needs essentia and aisfx (make setup installs both)")


def real_clips() -> list[Path]:
    """Three demo test clips (10 s, built by `audiocap demo`), else three minetest-data recordings
    (6-10 s, fetched once into the foley cache); skips when neither is at hand."""
    demo = sorted(FOLEY_TEST.glob("*.flac"))[:3]
    if len(demo) == 3:
        return demo
    from audiocap.data.foley.sources import DEFAULT_CACHE, SourceError, fetch_source, load_registry

    try:
        root, _ = fetch_source("minetest-data", load_registry()["sources"]["minetest-data"], DEFAULT_CACHE)
    except SourceError as exc:
        pytest.skip(f"no demo data and minetest-data not available offline: {exc}")
    found = {p.name: p for p in root.rglob("*.ogg")}
    return [found[name] for name in MINETEST]


def package_spectrogram(wave: np.ndarray, folder: Path) -> np.ndarray:
    """(T, 96) normalized log-mel of ``wave`` (44.1 kHz) by the package's own code."""
    from aisfx.inference import F_MAX, F_MIN, MEL_BINS, SAMPLE_RATE, SPEC_BLOCK_LENGTH, SPEC_HOP_LENGTH
    from aisfx.preprocessing import spectrogram_normalize
    from aisfx.spectrogram.spectrogram_essentia import compute_spectrogram

    path = folder / "clip.wav"
    sf.write(path, wave, 44100, subtype="FLOAT")
    spec = compute_spectrogram(str(path), sr=SAMPLE_RATE, block_size=SPEC_BLOCK_LENGTH, hop_size=SPEC_HOP_LENGTH,
                               n_mels=MEL_BINS, f_min=F_MIN, f_max=F_MAX)
    return spectrogram_normalize(np.asarray(spec), spec_norm="original")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """(audiocap log-mel, package log-mel, wave) for each real clip."""
    from audiocap.audio.io import load_audio
    from audiocap.encoders.frontend import AisfxFrontEnd

    frontend = AisfxFrontEnd(peak_normalize=False)
    out = []
    for clip in real_clips():
        wave = load_audio(clip, sr=44100).astype(np.float32)
        with torch.no_grad():
            ours = frontend(torch.from_numpy(wave)[None])[0].numpy()
        out.append((ours, package_spectrogram(wave, tmp_path_factory.mktemp(clip.stem)), wave))
    return out


def test_log_mel_matches_the_package_essentia_front_end(pairs):
    for ours, ref, wave in pairs:
        # Essentia's frame cutter emits one more frame at the end; frame t is centred on sample 1024·t in both
        assert ours.shape == (1 + len(wave) // 1024, 96) and ref.shape == (ours.shape[0] + 1, 96)
        diff = np.abs(ours - ref[: len(ours)])
        assert ref.max() > 0.5  # real sound, not silence
        assert diff.max() < 5e-3 and diff.mean() < 3e-4  # seen: max 1.4e-3, mean <= 1.2e-4 on a 0-0.9 scale
        # one frame off would be far outside that: the comparison can tell frames apart
        assert np.abs(ours[:-1] - ref[1 : len(ours)]).mean() > 20 * diff.mean()


def test_tower_embeddings_match_the_package_network_on_package_features(pairs, tmp_path, monkeypatch):
    from aisfx.inference import EMB_BLOCK_LENGTH
    from aisfx.models.cnn2d import EmbeddingNet
    from aisfx.preprocessing import blocking, compute_hopSize

    from audiocap.encoders.aisfx import AisfxTower, convert_aisfx_checkpoint

    monkeypatch.setenv("AUDIOCAP_CACHE", str(tmp_path))
    weights = convert_aisfx_checkpoint()
    tower = AisfxTower(weights, peak_normalize=False).eval()
    net = EmbeddingNet("max", 3, 1, 64).eval()
    net.load_state_dict(tower.net.state_dict(), strict=True)
    for _ours, ref, wave in pairs:
        blocks = blocking(ref, block_size=EMB_BLOCK_LENGTH, hop_size=compute_hopSize(EMB_BLOCK_LENGTH, 0.5, ref),
                          drop_partial_block=True)  # the package's defaults (inference.main)
        with torch.no_grad():
            expected = net(torch.tensor(blocks, dtype=torch.float32)).numpy()  # (W, 512)
            got = tower(torch.from_numpy(wave)[None])[0].numpy()  # (W', 512); W' adds a last window at the end
        assert len(expected) >= 4 and got.shape[0] == len(expected) + 1
        got = got[: len(expected)]
        cos = (got * expected).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1))
        rel = np.abs(got - expected).max() / np.abs(expected).max()
        assert cos.min() > 0.99999 and rel < 5e-3, (cos.min(), rel)  # seen: cos >= 0.999999, rel <= 2.7e-3
