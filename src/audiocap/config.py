"""Recipes: nested dataclasses filled from YAML, with dotted command-line overrides.

Each trainer declares its recipe as a dataclass (nanoGPT-style: the defaults are the recipe);
:func:`load_recipe` reads a YAML file, applies ``key.sub=value`` overrides, rejects unknown keys
with the file name and the key, and returns the dataclass. The resolved recipe is saved beside
every checkpoint (:func:`recipe_to_dict`) so a run can be reproduced or resumed.

The three trainers grew their own spellings for the same settings (epochs are
``trainer.max_epochs``, ``train.epochs`` or ``optim.epochs``). A recipe class lists the common
names it has in ``RUN_KEYS`` (common name -> its own dotted key); a ``run:`` section in a file, or
a ``run.epochs=3`` override, is read as those keys, so one spelling works for every trainer while
old recipes and shipped ``recipe.yaml`` files load unchanged (docs/recipes.md has the table).
"""

from __future__ import annotations

import dataclasses
import math
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
    node[keys[-1]] = _yaml_value(raw, f"override {dotted}")


def _yaml_value(raw: str, where: str) -> Any:
    """Parse YAML text; any parser failure becomes a :class:`RecipeError` naming ``where``."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        problem = str(getattr(exc, "problem", None) or exc).splitlines()[0]
        raise RecipeError(f"{where}: not valid YAML ({problem}); quote the value or fix the brackets") from None
    except (ValueError, RecursionError) as exc:  # 5000-digit integers, 100k nested brackets
        raise RecipeError(f"{where}: unusable value ({type(exc).__name__}: {str(exc)[:80]})") from None


def load_recipe(cls: type[T], path: str | os.PathLike | None = None, overrides: list[str] | None = None,
                *, validate: bool = True) -> T:
    """Build recipe ``cls`` from a YAML file (optional) and ``key.sub=value`` overrides.

    The values are checked by :func:`validate_recipe` unless ``validate`` is False (for tests
    that need an out-of-range value on purpose, e.g. ``max_epochs=0`` for an untrained baseline).
    """
    data: dict[str, Any] = {}
    label = "recipe"
    if path is not None:
        p = Path(path)
        label = str(p)
        if not p.exists():
            raise RecipeError(f"{p}: recipe file not found")
        if not p.is_file():
            raise RecipeError(f"{p}: is a {'folder' if p.is_dir() else 'special file'}, not a recipe file; "
                              "pass a YAML file such as configs/clap/debug.yaml")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise RecipeError(f"{p}: not UTF-8 text (byte {exc.start}); save the recipe as UTF-8") from None
        except OSError as exc:
            raise RecipeError(f"{p}: cannot read the recipe ({exc.strerror or exc})") from None
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise RecipeError(f"{p}: invalid YAML: {' '.join(str(exc).split())}") from None
        except (ValueError, RecursionError) as exc:
            raise RecipeError(f"{p}: unusable value ({type(exc).__name__}: {str(exc)[:80]})") from None
        if not isinstance(loaded, dict):
            raise RecipeError(f"{p}: top level must be a mapping")
        data = loaded
    run_keys: dict[str, str] = getattr(cls, "RUN_KEYS", {})
    if run_keys and "run" in data:
        _move_run_section(cls.__name__, run_keys, data, label)
    for item in overrides or []:
        if "=" not in item:
            raise RecipeError(f"override '{item}' must look like key.sub=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if run_keys and key.startswith("run."):
            key = _run_key(cls.__name__, run_keys, key[4:], f"override {key}")
        _set_dotted(data, key, raw)
    try:
        recipe = _build(cls, data, "")
    except RecipeError as exc:
        raise RecipeError(f"{label}: {exc}") from None
    if validate:
        validate_recipe(recipe, label=label)
    return recipe


def _run_key(name: str, run_keys: dict[str, str], key: str, where: str) -> str:
    """The recipe's own dotted key for the common name ``key``."""
    if key not in run_keys:
        raise RecipeError(f"{where}: {name} has no common key '{key}'; its run keys are "
                          f"{', '.join(sorted(run_keys))} (docs/recipes.md)")
    return run_keys[key]


def _move_run_section(name: str, run_keys: dict[str, str], data: dict[str, Any], label: str) -> None:
    """Rewrite a file's ``run:`` section into the recipe's own keys; a key given under both
    spellings with different values is an error rather than a silent choice."""
    section = data.pop("run")
    if not isinstance(section, dict):
        raise RecipeError(f"{label}: run: expected a mapping of common keys, got {section!r}")
    for key, value in section.items():
        dotted = _run_key(name, run_keys, str(key), f"{label}: run.{key}")
        node = data
        *parents, leaf = dotted.split(".")
        for k in parents:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise RecipeError(f"{label}: run.{key}: '{k}' is not a section")
        if leaf in node and node[leaf] != value:
            raise RecipeError(f"{label}: run.{key}={value!r} and {dotted}={node[leaf]!r} disagree; keep one")
        node[leaf] = value


# Value rules by field name (the last part of a dotted key), checked before any work starts, so a
# recipe with lr=-1 fails in a millisecond and not after minutes of caching and training.
def _positive(v) -> bool: return v > 0
def _non_negative(v) -> bool: return v >= 0
def _at_least_one(v) -> bool: return v >= 1
def _fraction(v) -> bool: return 0 <= v < 1


_RULES: dict[str, tuple[Any, str]] = {
    "lr": (lambda v: 0 < v <= 10, "must be > 0 and at most 10 (a learning rate such as 0.001)"),
    "embed_dim": (_at_least_one, "must be >= 1 (the embedding size, e.g. 512)"),
    "d_model": (_at_least_one, "must be >= 1"),
    "warmup_steps": (_non_negative, "must be >= 0 (0 = no warm-up)"),
    "epochs": (_at_least_one, "must be >= 1"),
    "max_epochs": (_at_least_one, "must be >= 1"),
    "batch_size": (_at_least_one, "must be >= 1"),
    "devices": (_at_least_one, "must be >= 1 (the number of devices to train on)"),
    "weight_decay": (_non_negative, "must be >= 0"),
    "threads": (_at_least_one, "must be >= 1"),
    "num_workers": (_non_negative, "must be >= 0"),
    "log_every_n_steps": (_at_least_one, "must be >= 1"),
    "checkpoint_every_n_steps": (_at_least_one, "must be >= 1"),
    "dropout": (_fraction, "must be in [0, 1)"),
    "label_smoothing": (_fraction, "must be in [0, 1)"),
    "temperature": (_positive, "must be > 0"),
    "init_temperature": (_positive, "must be > 0"),
    "grad_clip": (_non_negative, "must be >= 0 (0 = no clipping)"),
    "min_lr_ratio": (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    "tower_lr_scale": (lambda v: 0 < v <= 10, "must be > 0 and at most 10 (1 = the heads' learning rate)"),
    "clip_seconds": (_positive, "must be > 0"),
    "max_seconds": (_positive, "must be > 0"),
    "beam": (_at_least_one, "must be >= 1"),
    "heads": (_at_least_one, "must be >= 1"),
    "n_heads": (_at_least_one, "must be >= 1"),
    "n_layers": (_at_least_one, "must be >= 1"),
    "decoder_layers": (_at_least_one, "must be >= 1"),
    "prefix_len": (_at_least_one, "must be >= 1"),
}
_ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")
_MAX_INT = 2**31 - 1  # what the trainers' C/CUDA code and Lightning's loops handle


def _leaves(node: Any, prefix: str = ""):
    for f in dataclasses.fields(node):
        value, key = getattr(node, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            yield from _leaves(value, key + ".")
        else:
            yield key, f.name, value


def accelerator_problem(name: str) -> str | None:
    """Why ``trainer.accelerator=name`` cannot run on this machine, or None."""
    import torch

    if name not in _ACCELERATORS:
        return f"unknown accelerator; use one of {', '.join(_ACCELERATORS)}"
    if name in ("gpu", "cuda") and not torch.cuda.is_available():
        return "no CUDA GPU is available on this machine; use cpu (or auto)"
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        return "Apple MPS is not available on this machine; use cpu (or auto)"
    return None


def validate_recipe(recipe: Any, *, label: str = "recipe") -> None:
    """Check a recipe's values before any work: every number finite and in range for its key
    (positive learning rate and sizes, epochs and batch size >= 1, warm-up >= 0...), integers
    small enough for the trainers, and an accelerator that exists here. Raises
    :class:`RecipeError` naming every bad key and value in one line."""
    problems = []
    for key, leaf, value in _leaves(recipe):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{key}={value}: must be a finite number")
            continue
        if isinstance(value, int) and abs(value) > _MAX_INT:
            problems.append(f"{key}={str(value)[:20]}{'...' if len(str(value)) > 20 else ''}: too large "
                            f"(at most {_MAX_INT})")
            continue
        if leaf == "accelerator" and isinstance(value, str):
            why = accelerator_problem(value)
            if why:
                problems.append(f"{key}={value}: {why}")
            continue
        rule = _RULES.get(leaf)
        if rule is not None and isinstance(value, (int, float)) and not rule[0](value):
            problems.append(f"{key}={value}: {rule[1]}")
    if problems:
        raise RecipeError(f"{label}: " + "; ".join(problems))


def recipe_to_dict(recipe: Any) -> dict[str, Any]:
    """The plain-dict form of a recipe dataclass (what is written beside checkpoints)."""
    return dataclasses.asdict(recipe)
