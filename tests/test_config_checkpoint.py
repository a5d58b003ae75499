from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from audiocap.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from audiocap.config import RecipeError, load_recipe, recipe_to_dict


@dataclass
class Optim:
    lr: float = 1e-3
    warmup: int = 10


@dataclass
class Recipe:
    name: str = "x"
    epochs: int = 2
    optim: Optim = field(default_factory=Optim)
    tags: list[str] = field(default_factory=list)
    dim: int | None = None


def test_recipe_yaml_and_overrides(tmp_path: Path):
    p = tmp_path / "r.yaml"
    p.write_text("epochs: 5\noptim:\n  lr: 0.01\ntags: [a, b]\n")
    r = load_recipe(Recipe, p, ["optim.warmup=3", "dim=7"])
    assert r.epochs == 5 and r.optim.lr == 0.01 and r.optim.warmup == 3
    assert r.tags == ["a", "b"] and r.dim == 7
    assert recipe_to_dict(r)["optim"] == {"lr": 0.01, "warmup": 3}


def test_recipe_unknown_key_names_file(tmp_path: Path):
    p = tmp_path / "r.yaml"
    p.write_text("optim:\n  lrr: 1\n")
    with pytest.raises(RecipeError, match=r"r.yaml.*unknown key\(s\) lrr"):
        load_recipe(Recipe, p)
    with pytest.raises(RecipeError, match="expected an integer"):
        load_recipe(Recipe, None, ["epochs=1.5"])
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(Recipe, tmp_path / "missing.yaml")


def test_checkpoint_round_trip(tmp_path: Path):
    state = {"w": torch.randn(3, 4), "b": torch.arange(5)}
    save_checkpoint(tmp_path / "ck", state, kind="clap", recipe={"dim": 4}, extras={"vocab": ["a", "b"]})
    loaded, recipe = load_checkpoint(tmp_path / "ck", kind="clap")
    assert recipe == {"kind": "clap", "dim": 4}
    assert torch.equal(loaded["w"], state["w"]) and torch.equal(loaded["b"], state["b"])
    with pytest.raises(CheckpointError, match="expected 'captioner'"):
        load_checkpoint(tmp_path / "ck", kind="captioner")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope")
