"""Recipes: nested dataclasses filled from YAML, with dotted command-line overrides.

Each trainer declares its recipe as a dataclass (nanoGPT-style: the defaults are the recipe);
:func:`load_recipe` reads a YAML file, applies ``key.sub=value`` overrides, rejects unknown keys
with the file name and the key, and returns the dataclass. The resolved recipe is saved beside
every checkpoint (:func:`recipe_to_dict`) so a run can be reproduced or resumed.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class RecipeError(ValueError):
    """A recipe file or override is invalid; the message names the file and the key."""


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return _build(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except (RecipeError, TypeError, ValueError):
                continue
        raise RecipeError(f"{where}: {value!r} does not fit {tp}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"{where}: expected a list, got {value!r}")
        (arg, *_rest) = typing.get_args(tp) or (Any,)
        out = [_coerce(v, arg, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise RecipeError(f"{where}: {value!r} is not one of {typing.get_args(tp)}")
        return value
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise RecipeError(f"{where}: expected true/false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise RecipeError(f"{where}: expected a number, got {value!r}")
        try:
            out = tp(value)
        except (TypeError, ValueError):
            raise RecipeError(f"{where}: expected {tp.__name__}, got {value!r}") from None
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise RecipeError(f"{where}: expected an integer, got {value!r}")
        return out
    if tp is str:
        if not isinstance(value, (str, int, float)):
            raise RecipeError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def _build(cls: type[T], data: dict[str, Any], where: str) -> T:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def _set_dotted(tree: dict[str, Any], dotted: str, raw: str) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise RecipeError(f"override {dotted}: '{k}' is not a section")
    node[keys[-1]] = yaml.safe_load(raw)


def load_recipe(cls: type[T], path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> T:
    """Build recipe ``cls`` from a YAML file (optional) and ``key.sub=value`` overrides."""
    data: dict[str, Any] = {}
    label = "recipe"
    if path is not None:
        p = Path(path)
        label = str(p)
        if not p.exists():
            raise RecipeError(f"{p}: recipe file not found")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise RecipeError(f"{p}: invalid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise RecipeError(f"{p}: top level must be a mapping")
        data = loaded
    for item in overrides or []:
        if "=" not in item:
            raise RecipeError(f"override '{item}' must look like key.sub=value")
        key, raw = item.split("=", 1)
        _set_dotted(data, key.strip(), raw)
    try:
        return _build(cls, data, "")
    except RecipeError as exc:
        raise RecipeError(f"{label}: {exc}") from None


def recipe_to_dict(recipe: Any) -> dict[str, Any]:
    """The plain-dict form of a recipe dataclass (what is written beside checkpoints)."""
    return dataclasses.asdict(recipe)
