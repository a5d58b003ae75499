"""The aisfx sound-effects CNN (Hagos et al., "Learning a sound-effects representation from
cross-dataset training", ISMIR 2022), re-declared in audiocap.

Architecture (the DCASE cross-task 9-layer CNN of Kong et al., 2018): four ConvBlocks with
64/128/256/512 channels, max-pools (2,2)×3 then (1,1); the embedding of a 100-frame window
(≈ 2.32 s) is the mean over frequency then the max over time (512-d). The weights ship in the
PyPI package ``aisfx==0.1.2`` (CC BY 4.0) as a pickle; :func:`convert_aisfx_checkpoint` turns
them ONCE into a safetensors file, and the tower only ever loads that file, strictly.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from audiocap.encoders.blocks import AudioTower, ConvBlock
from audiocap.encoders.frontend import AisfxFrontEnd
from audiocap.fileio import atomic_path

WINDOW_FRAMES, HOP_FRAMES = 100, 50


class AisfxEmbeddingNet(nn.Module):
    """The embedding CNN: spectrogram windows (B, 100, 96) -> (B, 512). Keys as the package's."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        chans = [1, width, width * 2, width * 4, width * 8]
        for i in range(4):
            setattr(self, f"conv_block{i + 1}", ConvBlock(chans[i], chans[i + 1]))
        self.dim = chans[-1]

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        x = spec.unsqueeze(1)  # (B, 1, T, F)
        x = self.conv_block1(x, (2, 2))
        x = self.conv_block2(x, (2, 2))
        x = self.conv_block3(x, (2, 2))
        x = self.conv_block4(x, (1, 1))  # (B, 512, T/8, F/8)
        return x.mean(dim=3).amax(dim=2)  # (B, 512)


def frame_windows(spec: torch.Tensor, window: int = WINDOW_FRAMES, hop: int = HOP_FRAMES) -> torch.Tensor:
    """Cut (B, T, F) spectrograms into windows (B, W, window, F): full windows every ``hop``
    frames plus, if frames remain, one last window ending at the last frame; inputs shorter
    than one window are zero-padded."""
    b, t, f = spec.shape
    if t < window:
        spec = torch.nn.functional.pad(spec, (0, 0, 0, window - t))
        t = window
    starts = list(range(0, t - window + 1, hop))
    if starts[-1] + window < t:
        starts.append(t - window)
    return torch.stack([spec[:, s : s + window] for s in starts], dim=1)


class AisfxTower(AudioTower):
    """Waveform at 44.1 kHz (B, N) -> window embeddings (B, W, 512), one per 100-frame window
    hopped by ``hop_frames`` (50 ≈ 1.16 s, as the package); :meth:`pool` averages them to (B, 512)."""

    sample_rate = AisfxFrontEnd.sr

    def __init__(self, weights: str | os.PathLike | None = None, peak_normalize: bool = True,
                 hop_frames: int = HOP_FRAMES) -> None:
        super().__init__()
        self.hop_frames = hop_frames  # 50 as the package; 100 = no overlap, ~40 % less compute
        self.frontend = AisfxFrontEnd(peak_normalize=peak_normalize)
        self.net = AisfxEmbeddingNet()
        self.frame_dim = self.dim = self.net.dim
        if weights != "none":
            self.net.load_state_dict(load_file(str(weights or aisfx_weights())), strict=True)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = self.frontend(wave)  # (B, T, 96)
        win = frame_windows(spec, WINDOW_FRAMES, self.hop_frames)  # (B, W, 100, 96)
        b, w = win.shape[:2]
        emb = self.net(win.flatten(0, 1))  # (B·W, 512)
        return emb.view(b, w, -1)


def cache_dir() -> Path:
    """Where converted weights live: ``$AUDIOCAP_CACHE`` or ``~/.cache/audiocap``."""
    return Path(os.environ.get("AUDIOCAP_CACHE", Path.home() / ".cache" / "audiocap"))


def package_checkpoint() -> Path:
    """Path of the pickled checkpoint inside the installed ``aisfx`` package."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("aisfx")
    except ImportError:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the aisfx package is not installed; run: pip install --no-deps aisfx==0.1.2")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / "checkpoint.pth"


def convert_aisfx_checkpoint(src: str | os.PathLike | None = None, dst: str | os.PathLike | None = None) -> Path:
    """Convert the package's ``checkpoint.pth`` (a pickled ``(state_dict, datasets)`` tuple) to a
    safetensors file holding only the embedding net (48 tensors, ``embedding_net.`` stripped).

    The pickle is the package's own file and is read with ``weights_only=True``; the only extra
    globals allowed are the numpy scalar/dtype types its dataset table uses.
    """
    import numpy as np

    src = Path(src) if src else package_checkpoint()
    dst = Path(dst) if dst else cache_dir() / "aisfx.safetensors"
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    allowed = [(scalar, "numpy.core.multiarray.scalar"), np.dtype, type(np.dtype("int64"))]
    with torch.serialization.safe_globals(allowed):
        state, _datasets = torch.load(src, map_location="cpu", weights_only=True)
    net = {k.removeprefix("embedding_net."): v.contiguous() for k, v in state.items()
           if k.startswith("embedding_net.")}
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst, suffix=".safetensors") as tmp:
        save_file(net, str(tmp), metadata={"source": "aisfx==0.1.2 models/checkpoint.pth", "license": "CC BY 4.0"})
    return dst


def aisfx_weights() -> Path:
    """The converted safetensors weights, converting the package checkpoint on first use."""
    path = cache_dir() / "aisfx.safetensors"
    return path if path.exists() else convert_aisfx_checkpoint(dst=path)
