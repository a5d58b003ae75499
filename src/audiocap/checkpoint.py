"""Checkpoint folders: ``model.safetensors`` + ``recipe.yaml`` (+ optional extra JSON files).

Every trained model in audiocap is a folder. ``recipe.yaml`` holds the resolved recipe and a
``kind`` (``clap``, ``captioner``, ``wsac``...) so tools can dispatch on it; tensors are stored
with safetensors so loading never unpickles anything. Writes are atomic per file, and the
folder is complete only once ``recipe.yaml`` (written last) exists.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file

from audiocap.fileio import atomic_path, atomic_write_json, atomic_write_text

WEIGHTS = "model.safetensors"
RECIPE = "recipe.yaml"


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete or of the wrong kind."""


def save_checkpoint(
    folder: str | os.PathLike,
    state_dict: dict[str, torch.Tensor],
    *,
    kind: str,
    recipe: dict[str, Any],
    extras: dict[str, Any] | None = None,
    exclude_prefixes: tuple[str, ...] = (),
    dtype: torch.dtype | None = None,
    audio_policy: Any = None,
) -> Path:
    """Write weights, optional JSON extras (``name -> object``) and the recipe to ``folder``.

    ``audio_policy`` (an :class:`audiocap.audio.policy.AudioPolicy`) is written as the recipe's
    top-level ``audio_policy`` section: how the model windows audio longer than its training
    clips; every path that runs the model reads it back (:func:`audiocap.audio.policy.audio_policy_of`).

    ``exclude_prefixes`` leaves out the tensors whose keys start with one of them (frozen
    pretrained towers that the loader rebuilds from their packages); ``dtype`` (e.g.
    ``torch.float16``) stores floating-point tensors in that type. Both are recorded in the
    recipe (``excluded_prefixes``, ``stored_dtype``) so loaders know what to rebuild and cast.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    prefixes = tuple(exclude_prefixes)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()
               if not k.startswith(prefixes)}
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    recipe = dict(recipe)
    if audio_policy is not None:
        from audiocap.audio.policy import with_policy

        recipe = with_policy(recipe, audio_policy)
    if prefixes:
        recipe["excluded_prefixes"] = list(prefixes)
    if dtype is not None:
        recipe["stored_dtype"] = str(dtype).removeprefix("torch.")
    with atomic_path(folder / WEIGHTS, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp))
    for name, obj in (extras or {}).items():
        atomic_write_json(folder / f"{name}.json", obj)
    atomic_write_text(folder / RECIPE, yaml.safe_dump({"kind": kind, **recipe}, sort_keys=False))
    return folder


def read_recipe(folder: str | os.PathLike) -> dict[str, Any]:
    """Read ``recipe.yaml`` of a checkpoint folder (raises :class:`CheckpointError` if absent)."""
    folder = Path(folder)
    path = folder / RECIPE
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: checkpoint folder not found")
    if not path.exists():
        raise CheckpointError(f"{folder}: no {RECIPE}; not an audiocap checkpoint or an interrupted save")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "kind" not in data:
        raise CheckpointError(f"{path}: recipe has no 'kind'")
    return data


def load_checkpoint(
    folder: str | os.PathLike, *, kind: str | None = None, device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return ``(state_dict, recipe)``; check ``kind`` when given."""
    folder = Path(folder)
    recipe = read_recipe(folder)
    if kind is not None and recipe["kind"] != kind:
        raise CheckpointError(f"{folder}: is a '{recipe['kind']}' checkpoint, expected '{kind}'")
    weights = folder / WEIGHTS
    if not weights.exists():
        raise CheckpointError(f"{folder}: {WEIGHTS} missing")
    state = load_file(str(weights), device=str(device))
    if recipe.get("stored_dtype"):  # stored in fp16/bf16 to be small: compute in fp32
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return state, recipe


def read_extra(folder: str | os.PathLike, name: str) -> Any:
    """Read one JSON extra (``name.json``) written by :func:`save_checkpoint`."""
    path = Path(folder) / f"{name}.json"
    if not path.exists():
        raise CheckpointError(f"{path}: missing")
    return json.loads(path.read_text(encoding="utf-8"))


# One ``kind -> loader`` registry for every checkpoint kind: ``audiocap.load``, the CLI, the
# captioning dispatch and the web service all resolve loaders here (lazily, so importing this
# module stays cheap and never pulls in torch models it does not need).
LOADERS: dict[str, str] = {
    "clap": "audiocap.inference.clap:load_clap",  # attaches the checkpoint's audio_policy
    "captioner": "audiocap.captioning:load_captioner",
    "wsac": "audiocap.decoding.wsac:load_wsac",
}


def _resolve(target: str) -> Any:
    import importlib

    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def checkpoint_kind(folder: str | os.PathLike, *, expect: tuple[str, ...] | None = None) -> str:
    """The ``kind`` of a checkpoint folder; raise :class:`CheckpointError` naming the folder and
    the accepted kinds when it is not one of ``expect`` (default: any registered kind)."""
    kind = read_recipe(folder)["kind"]
    allowed = tuple(expect) if expect is not None else tuple(LOADERS)
    if kind not in allowed:
        raise CheckpointError(f"{folder}: is a '{kind}' checkpoint; expected kind "
                              f"{' or '.join(repr(k) for k in allowed)}")
    return kind


def loader_for(kind: str) -> Any:
    """The load function registered for ``kind`` (``folder, *, device -> model``)."""
    if kind not in LOADERS:
        raise CheckpointError(f"no loader for checkpoint kind '{kind}'; known: {', '.join(LOADERS)}")
    return _resolve(LOADERS[kind])


def load_model(folder: str | os.PathLike, *, device: str | torch.device = "cpu",
               expect: tuple[str, ...] | None = None) -> Any:
    """Load any checkpoint folder with the loader its ``recipe.yaml`` ``kind`` names in
    :data:`LOADERS` (CLAP, Elizalde et al. 2023; captioner; WSAC, Kouzelis & Katsouros 2023).

    ``expect`` restricts the accepted kinds (e.g. ``("captioner", "wsac")`` for captioning).
    """
    return loader_for(checkpoint_kind(folder, expect=expect))(folder, device=device)
