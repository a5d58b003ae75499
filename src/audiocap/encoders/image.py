"""Image towers for CLAIP (the tri-encoder of the Xiaomi DCASE 2023 Task 6b report).

Every tower maps images (B, 3, S, S), RGB in [0, 1] at its ``image_size`` S, to features (B, dim);
it normalizes them itself. Weights come from local files only, never a download:

- ``tiny``: a small built-in CNN (``weights=`` a safetensors file of its state dict; without it the
  tower keeps its seeded random initialization, a fixed random-feature baseline);
- ``torchvision``: ``arch=`` a torchvision architecture name (resnet18, ...) with ``weights=`` a
  safetensors state dict; its classifier is dropped (needs torchvision installed);
- ``hf_clip``: ``folder=`` a local Hugging Face CLIP (or CLIP vision) folder; the pooled output.

Pictures are read with Pillow (``pip install 'audiocap[image]'``): transparency is laid on white,
the picture is padded to a square and resized, so a stamp keeps its shape.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


class ImageError(ValueError):
    """A picture or an image-tower file cannot be used; the message names the file and the fix."""


def load_image(path: str | os.PathLike, size: int) -> torch.Tensor:
    """Read a picture as (3, size, size) float RGB in [0, 1]: alpha over white, padded to a square
    (white), resized with bicubic filtering."""
    try:
        from PIL import Image
    except ImportError:
        raise ImageError("reading pictures needs Pillow; install it with pip install 'audiocap[image]'") from None
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            rgba = im.convert("RGBA")
    except FileNotFoundError:
        raise ImageError(f"{path}: picture not found; fix the clip's 'image' path in the manifest") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: not a readable picture ({exc}); use PNG or JPEG") from None
    side = max(rgba.size)
    canvas = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    canvas.alpha_composite(rgba, ((side - rgba.width) // 2, (side - rgba.height) // 2))
    rgb = canvas.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


def _load_state(weights: str | os.PathLike, what: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(weights)
    if not path.is_file():
        raise ImageError(f"{path}: {what} weights not found; pass model.image_kw.weights=<a .safetensors file>")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ImageError(f"{path}: not a safetensors file ({exc}); save the state dict with "
                         "safetensors.torch.save_file") from None


def _load_strict(module: nn.Module, state: dict[str, torch.Tensor], weights: str | os.PathLike) -> None:
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of another shape
        raise ImageError(f"{weights}: weights do not match the architecture ({str(exc).splitlines()[-1].strip()})") from None
    if missing or unexpected:
        raise ImageError(f"{weights}: weights do not match the architecture (missing {list(missing)[:3]}, "
                         f"unexpected {list(unexpected)[:3]})")


class _Normalized(nn.Module):
    """Base: per-channel normalization buffers, then ``features``."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features((images - self.mean) / self.std)


class TinyImageTower(_Normalized):
    """Four stride-2 conv + BatchNorm + GELU stages, global average pooling and a parameter-free
    layer norm: (B, 3, S, S) -> (B, width·8). Small enough to train or to serve as a fixed random-feature tower on a CPU."""

    def __init__(self, width: int = 16, image_size: int = 64, weights: str | None = None, seed: int = 0) -> None:
        super().__init__(IMAGENET_MEAN, IMAGENET_STD)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            chans = [3, width, width * 2, width * 4, width * 8]
            self.net = nn.Sequential(*[nn.Sequential(nn.Conv2d(a, b, 3, stride=2, padding=1, bias=False),
                                                     nn.BatchNorm2d(b), nn.GELU()) for a, b in zip(chans, chans[1:])])
        self.dim, self.image_size = chans[-1], image_size
        if weights:
            _load_strict(self, _load_state(weights, "tiny image tower"), weights)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        # standardized: a frozen (even random) tower then feeds the projection head at unit scale
        return F.layer_norm(self.net(x).mean(dim=(2, 3)), (self.dim,))


class TorchvisionImageTower(_Normalized):
    """A torchvision classification architecture with the user's safetensors weights; the final
    classifier is replaced by the identity, so the features are the pooled penultimate layer."""

    def __init__(self, arch: str = "", weights: str | None = None, image_size: int = 224) -> None:
        super().__init__(IMAGENET_MEAN, IMAGENET_STD)
        try:
            import torchvision
        except ImportError:
            raise ImageError("model.image=torchvision needs torchvision installed; or use model.image=hf_clip "
                             "(folder=) or model.image=tiny") from None
        if not arch or arch not in torchvision.models.list_models(module=torchvision.models):
            raise ImageError(f"unknown torchvision architecture {arch!r}; pass model.image_kw.arch=resnet18 (or "
                             "another name of torchvision.models.list_models())")
        if not weights:
            raise ImageError("model.image=torchvision needs model.image_kw.weights=<state dict .safetensors>")
        net = torchvision.models.get_model(arch, weights=None)
        _load_strict(net, _load_state(weights, arch), weights)
        for attr in ("fc", "classifier", "head", "heads"):
            if hasattr(net, attr):
                setattr(net, attr, nn.Identity())
                break
        self.net, self.image_size = net.eval(), image_size
        with torch.no_grad():
            self.dim = int(self.net(torch.zeros(1, 3, image_size, image_size)).shape[-1])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class HFClipImageTower(_Normalized):
    """The vision half of a local Hugging Face CLIP folder: pooled output (B, hidden size)."""

    def __init__(self, folder: str | None = None) -> None:
        super().__init__(CLIP_MEAN, CLIP_STD)
        from transformers import CLIPVisionConfig, CLIPVisionModel

        if not folder or not (Path(folder) / "config.json").is_file():
            raise ImageError(f"{folder}: not a Hugging Face CLIP folder (no config.json); pass "
                             "model.image_kw.folder=<local folder with config.json and model.safetensors>")
        try:
            self.net = CLIPVisionModel.from_pretrained(folder, local_files_only=True, use_safetensors=True)
        except (OSError, ValueError) as exc:
            raise ImageError(f"{folder}: cannot load a CLIP vision model ({str(exc).splitlines()[0]})") from None
        cfg = self.net.config
        assert isinstance(cfg, CLIPVisionConfig)
        self.dim, self.image_size = int(cfg.hidden_size), int(cfg.image_size)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values=x).pooler_output
