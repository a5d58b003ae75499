"""Checkpoint folders: ``model.safetensors`` + ``recipe.yaml`` (+ optional extra JSON files).

Every trained model in audiocap is a folder. ``recipe.yaml`` holds the resolved recipe and a
``kind`` (``clap``, ``captioner``, ``wsac``...) so tools can dispatch on it; tensors are stored
with safetensors so loading never unpickles anything. Writes are atomic per file, and the
folder is complete only once ``recipe.yaml`` (written last) exists.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from audiocap.fileio import atomic_path, atomic_write_json, atomic_write_text

WEIGHTS = "model.safetensors"
RECIPE = "recipe.yaml"
POLICY_KEY = "audio_policy"  # the recipe section audiocap.audio.policy reads back


# the fix for a damaged file: the folder's files belong together, so copy all of them again
RECOPY = "copy (or download) the whole checkpoint folder again"
# a safetensors header is JSON of a few KB per hundred tensors; safetensors itself refuses > 100 MB
MAX_HEADER = 100_000_000
T = TypeVar("T")


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete, damaged or of the wrong kind.

    Every loader raises only this for a bad folder (never a safetensors, YAML, JSON or torch
    error), with one line naming the file, what is wrong with it and how to fix it.
    """


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
    if audio_policy is not None:  # an AudioPolicy (audiocap.audio.policy imports this module, not vice versa)
        recipe[POLICY_KEY] = audio_policy.to_dict()
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


def _read_text(path: Path) -> str:
    """UTF-8 text of a checkpoint file, or :class:`CheckpointError` naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{path}: not UTF-8 text (byte {exc.start}); the file is damaged, {RECOPY}") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc}); {RECOPY}") from None


def _yaml_at(exc: yaml.YAMLError) -> str:
    """``"line N: "`` of a YAML error, or "" when PyYAML gives no position."""
    mark = getattr(exc, "problem_mark", None)
    return f"line {mark.line + 1}: " if mark is not None else ""


def read_recipe(folder: str | os.PathLike) -> dict[str, Any]:
    """Read ``recipe.yaml`` of a checkpoint folder as plain YAML (``yaml.safe_load``: tags that
    would build Python objects are refused, never run); any fault is a :class:`CheckpointError`."""
    folder = Path(folder)
    path = folder / RECIPE
    if not folder.exists():
        raise CheckpointError(f"{folder}: checkpoint folder not found; pass a folder holding {RECIPE} and {WEIGHTS}")
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a folder; a checkpoint is a folder holding {RECIPE} and {WEIGHTS}")
    if not path.is_file():
        raise CheckpointError(f"{folder}: no {RECIPE}, so not an audiocap checkpoint or its save was interrupted; "
                              f"save it again or {RECOPY}")
    try:
        data = yaml.safe_load(_read_text(path))
    except yaml.YAMLError as exc:
        problem = str(getattr(exc, "problem", None) or str(exc).splitlines()[0])  # PyYAML's text spans lines
        tag = re.search(r"constructor for the tag '([^']*)'", problem)
        if tag:  # e.g. !!python/object/apply:os.system: safe_load refused it, nothing ran
            name = tag.group(1).replace("tag:yaml.org,2002:", "!!")
            raise CheckpointError(f"{path}: {_yaml_at(exc)}YAML tag '{name}' refused (tags can build Python "
                                  f"objects or run code); a recipe holds plain values only: remove the tag or "
                                  f"{RECOPY}") from None
        raise CheckpointError(f"{path}: invalid YAML ({_yaml_at(exc)}{problem}); fix the file or {RECOPY}") from None
    except RecursionError:
        raise CheckpointError(f"{path}: YAML nested too deeply to read; {RECOPY}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a YAML mapping (got {type(data).__name__}); a recipe maps keys such "
                              f"as 'kind' to values: {RECOPY}")
    if not isinstance(data.get("kind"), str):
        raise CheckpointError(f"{path}: no 'kind' (e.g. {', '.join(LOADERS)}); the file is not an audiocap "
                              f"recipe: {RECOPY}")
    return data


def read_weights(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file; a pickle, a truncated file or a bad header is a
    :class:`CheckpointError`. Nothing is ever unpickled: a ``torch.save`` file is recognised by
    its first bytes and refused before any reader opens it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing or not a file; the save was interrupted or the copy is "
                              f"incomplete: {RECOPY}")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc}); {RECOPY}") from None
    header = int.from_bytes(head[:8], "little")
    # safetensors: an 8-byte little-endian header length, then a JSON header that starts with "{"
    if len(head) < 9 or header > min(size - 8, MAX_HEADER) or head[8:9] != b"{":
        if head[:4] == b"PK\x03\x04" or (head[:1] == b"\x80" and 2 <= head[1] <= 5):
            raise CheckpointError(f"{path}: a PyTorch pickle (torch.save), not safetensors; audiocap never "
                                  "unpickles a checkpoint (it can run code): convert it where you trust its origin "
                                  "with safetensors.torch.save_file(torch.load(f, weights_only=True), "
                                  "'model.safetensors')")
        if len(head) < 9:
            raise CheckpointError(f"{path}: {size} bytes, too short for a safetensors file; {RECOPY}")
        if header > min(size - 8, MAX_HEADER):
            raise CheckpointError(f"{path}: safetensors header claims {header} bytes but the file holds "
                                  f"{size - 8} after it (limit {MAX_HEADER}); truncated or not safetensors: {RECOPY}")
        raise CheckpointError(f"{path}: not a safetensors file (no JSON header after the length); {RECOPY}")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0]}); "
                              f"{RECOPY}") from None


def load_checkpoint(
    folder: str | os.PathLike, *, kind: str | None = None, device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return ``(state_dict, recipe)``; check ``kind`` when given."""
    folder = Path(folder)
    recipe = read_recipe(folder)
    if kind is not None and recipe["kind"] != kind:
        raise CheckpointError(f"{folder / RECIPE}: a '{recipe['kind']}' checkpoint, expected '{kind}'; "
                              f"pass a '{kind}' checkpoint folder")
    state = read_weights(folder / WEIGHTS, device=device)
    if recipe.get("stored_dtype"):  # stored in fp16/bf16 to be small: compute in fp32
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return state, recipe


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], folder: str | os.PathLike, *,
                 strict: bool = True) -> Any:
    """``model.load_state_dict(state)``, with weights that do not fit the model the recipe
    describes (another config's tensors) reported as one :class:`CheckpointError` line instead of
    torch's multi-line RuntimeError. ``strict=False`` lets keys be missing or extra, never shapes differ."""
    own = model.state_dict()
    wrong = [f"{k} {tuple(v.shape)} != {tuple(own[k].shape)}" for k, v in state.items()
             if k in own and v.shape != own[k].shape]
    if strict:
        wrong += [f"missing {k}" for k in own if k not in state]
        wrong += [f"unexpected {k}" for k in state if k not in own]
    if wrong:
        more = f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
        raise CheckpointError(f"{Path(folder) / WEIGHTS}: tensors do not fit the model its {RECIPE} describes "
                              f"({'; '.join(wrong[:3])}{more}); weights and recipe must come from the same "
                              f"training run: {RECOPY}")
    return model.load_state_dict(state, strict=strict)


def read_extra(folder: str | os.PathLike, name: str, parse: Callable[[Any], T] | None = None) -> Any:
    """Read one JSON extra (``name.json``) written by :func:`save_checkpoint`, through ``parse``
    when given; a missing, undecodable or malformed file is a :class:`CheckpointError`."""
    path = Path(folder) / f"{name}.json"
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; {RECOPY}")
    text = _read_text(path)
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise CheckpointError(f"{path}: invalid JSON ({exc}); {RECOPY}") from None
    except RecursionError:
        raise CheckpointError(f"{path}: JSON nested too deeply to read; {RECOPY}") from None
    if parse is None:
        return obj
    try:
        return parse(obj)
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, AssertionError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: malformed ({type(exc).__name__}: {exc}); {RECOPY}") from None


def build_from_recipe(build: Callable[..., T], section: Any, folder: str | os.PathLike, key: str) -> T:
    """``build(**section)`` for the recipe section ``key`` (a model's settings); a section that is
    not a mapping, does not fit ``build`` or names a tower that cannot be loaded is a
    :class:`CheckpointError` naming ``recipe.yaml``."""
    from audiocap.text.minilm import TextModelError

    path = Path(folder) / RECIPE
    if not isinstance(section, dict):
        raise CheckpointError(f"{path}: '{key}' is {type(section).__name__}, not a mapping of model settings; "
                              f"{RECOPY}")
    try:
        return build(**section)
    except CheckpointError:
        raise
    except (TextModelError, OSError) as exc:  # a tower folder or file it names; the message says the fix
        raise CheckpointError(f"{path}: '{key}' names a tower that cannot be loaded: "
                              f"{str(exc).splitlines()[0]}") from None
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: '{key}' does not describe a model audiocap can build "
                              f"({str(exc).splitlines()[0]}); the checkpoint comes from another version or was "
                              f"edited: {RECOPY}") from None


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
        raise CheckpointError(f"{Path(folder) / RECIPE}: is a '{kind}' checkpoint; expected kind "
                              f"{' or '.join(repr(k) for k in allowed)}: pass a checkpoint folder of that kind")
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
