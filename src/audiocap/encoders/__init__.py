"""Audio, text and image towers behind small registries.

``build_audio_encoder(name, **kw)``: ``aisfx`` (pretrained sound-effects CNN, 512-d frames),
``cnn14`` (PANNs CNN14, bring ``weights=Cnn14_mAP=0.431.pth``), ``tiny`` (debug CNN).
``build_text_encoder(name, **kw)``: ``minilm`` (all-MiniLM-L6-v2, 384-d), ``hf`` (``folder=``
any local BERT-style Hugging Face folder). Every audio tower maps a waveform (B, N) at its
``sample_rate`` to frame embeddings (B, T, D) and pools them with ``tower.pool``.
``build_image_encoder(name, **kw)`` (CLAIP's third tower, :mod:`audiocap.encoders.image`): ``tiny``
(built-in small CNN, optional ``weights=``), ``torchvision`` (``arch=`` + ``weights=``), ``hf_clip``
(``folder=`` a local CLIP folder); each maps images (B, 3, S, S) in [0, 1] to features (B, dim).
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn


def _aisfx(**kw: Any) -> nn.Module:
    from audiocap.encoders.aisfx import AisfxTower

    return AisfxTower(**kw)


def _cnn14(**kw: Any) -> nn.Module:
    from audiocap.encoders.cnn14 import build_cnn14

    return build_cnn14(**kw)


def _tiny(**kw: Any) -> nn.Module:
    from audiocap.encoders.tiny import TinyTower

    return TinyTower(**kw)


def _minilm(**kw: Any) -> nn.Module:
    from audiocap.encoders.text import TextTower

    kw.pop("folder", None)
    return TextTower(None, **kw)


def _hf(folder: str | None = None, **kw: Any) -> nn.Module:
    from audiocap.encoders.text import TextTower

    if not folder:
        raise ValueError("text encoder 'hf' needs folder=<local Hugging Face model folder>")
    return TextTower(folder, **kw)


def _image(cls_name: str) -> Callable[..., nn.Module]:
    def build(**kw: Any) -> nn.Module:
        from audiocap.encoders import image

        return getattr(image, cls_name)(**kw)

    return build


AUDIO_ENCODERS: dict[str, Callable[..., nn.Module]] = {"aisfx": _aisfx, "cnn14": _cnn14, "tiny": _tiny}
TEXT_ENCODERS: dict[str, Callable[..., nn.Module]] = {"minilm": _minilm, "hf": _hf}
IMAGE_ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "tiny": _image("TinyImageTower"), "torchvision": _image("TorchvisionImageTower"), "hf_clip": _image("HFClipImageTower")}


def build_audio_encoder(name: str, **kw: Any) -> nn.Module:
    """Build the audio tower registered as ``name`` with keyword options ``kw``."""
    if name not in AUDIO_ENCODERS:
        raise ValueError(f"unknown audio encoder {name!r}; choose one of {', '.join(AUDIO_ENCODERS)}")
    return AUDIO_ENCODERS[name](**kw)


def build_text_encoder(name: str, **kw: Any) -> nn.Module:
    """Build the text tower registered as ``name`` with keyword options ``kw``."""
    if name not in TEXT_ENCODERS:
        raise ValueError(f"unknown text encoder {name!r}; choose one of {', '.join(TEXT_ENCODERS)}")
    return TEXT_ENCODERS[name](**kw)


def build_image_encoder(name: str, **kw: Any) -> nn.Module:
    """Build the image tower registered as ``name`` with keyword options ``kw`` (local files only)."""
    if name not in IMAGE_ENCODERS:
        raise ValueError(f"unknown image encoder {name!r}; choose one of {', '.join(IMAGE_ENCODERS)}")
    try:
        return IMAGE_ENCODERS[name](**kw)
    except TypeError as exc:
        raise ValueError(f"image encoder {name!r}: bad option in model.image_kw ({exc})") from None
