"""Recipes are checked before any work (issue 20 C/E): each bad value or malformed recipe is one
``error:`` line naming the key, exit code 2, no traceback, in well under a second per case."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audiocap.cli import app
from audiocap.config import RecipeError, load_recipe, validate_recipe

REPO = Path(__file__).resolve().parents[1]
CLAP = str(REPO / "configs" / "clap" / "debug.yaml")
CAPTIONER = str(REPO / "configs" / "captioner" / "debug.yaml")


def run_cli(args: list[str]):
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output  # stdout and stderr


CLAP_CASES = [
    ("optim.lr=1e30", ["optim.lr", "at most 10"]),
    ("optim.lr=-0.001", ["optim.lr", "> 0"]),
    ("optim.lr=.nan", ["optim.lr", "finite"]),
    ("optim.lr=.inf", ["optim.lr", "finite"]),
    ("model.embed_dim=0", ["model.embed_dim", ">= 1"]),
    ("optim.warmup_steps=-5", ["optim.warmup_steps", ">= 0"]),
    ("trainer.max_epochs=-1", ["trainer.max_epochs", ">= 1"]),
    ("trainer.max_epochs=0", ["trainer.max_epochs", ">= 1"]),
    ("trainer.batch_size=0", ["trainer.batch_size", ">= 1"]),
    ("trainer.devices=0", ["trainer.devices", ">= 1"]),
    ("trainer.accelerator=gpu", ["trainer.accelerator", "no CUDA GPU"]),
    ("trainer.accelerator=tpu9", ["trainer.accelerator", "unknown accelerator"]),
    ("trainer.max_epochs=99999999999999", ["trainer.max_epochs", "too large"]),
    ("trainer.seed=" + "5" * 5000, ["trainer.seed", "unusable value"]),
    ("optim.lr=[1,2", ["optim.lr", "not valid YAML"]),
    ("optim.lr=" + "[" * 100_000, ["optim.lr"]),
    ("optim.lr=!!python/object/apply:os.system [echo pwned]", ["optim.lr", "not valid YAML"]),
    ("model.dropout=1.5", ["unknown key"]),  # ClapConfig has no dropout: named as unknown
]


@pytest.mark.parametrize("override, words", CLAP_CASES, ids=[c[0][:30] for c in CLAP_CASES])
def test_train_clap_refuses_bad_values_before_any_work(override, words, tmp_path):
    code, out = run_cli(["train", "clap", "--config", CLAP, f"out={tmp_path / 'run'}", override])
    assert code == 2, out
    assert "Traceback" not in out and out.strip().startswith("error:")
    assert len(out.strip().splitlines()) == 1, out
    for word in words:
        assert word in out, out
    assert not (tmp_path / "run").exists()  # nothing was started


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the machine has a GPU")
def test_accelerator_gpu_on_cpu_machine_in_python_api():
    from audiocap.train.clap import ClapRecipe

    with pytest.raises(RecipeError, match="trainer.accelerator=gpu: no CUDA GPU"):
        load_recipe(ClapRecipe, CLAP, ["trainer.accelerator=gpu"])


@pytest.mark.parametrize("setting, words", [
    ("train.lr=0", ["train.lr"]), ("train.epochs=0", ["train.epochs"]), ("train.batch_size=-2", ["train.batch_size"]),
    ("model.dropout=1.0", ["model.dropout", "[0, 1)"]), ("model.d_model=0", ["model.d_model"]),
])
def test_train_captioner_refuses_bad_values(setting, words, tmp_path):
    code, out = run_cli(["train", "captioner", "--config", CAPTIONER, "--set", f"train.out={tmp_path}/r",
                         "--set", setting])
    assert code == 2 and "Traceback" not in out
    assert all(w in out for w in words), out


def test_train_wsac_refuses_bad_values(tmp_path):
    caps = tmp_path / "caps.csv"
    caps.write_text("file_name,caption_1\na.wav,a dog barks\n")
    code, out = run_cli(["train", "wsac", "--captions", str(caps), "-o", str(tmp_path / "w"),
                         "--set", "optim.lr=-1", "--set", "optim.warmup_steps=-3"])
    assert code == 2 and "Traceback" not in out
    assert "optim.lr" in out and "optim.warmup_steps" in out  # every problem in one line


@pytest.mark.parametrize("kind", ["folder", "binary", "missing", "deep"])
def test_unusable_config_file(kind, tmp_path):
    path = {"folder": tmp_path, "missing": tmp_path / "nope.yaml"}.get(kind, tmp_path / "r.yaml")
    if kind == "binary":
        path.write_bytes(b"\xff\xfe\x00garbage")
    if kind == "deep":
        path.write_text("optim: " + "[" * 100_000)
    code, out = run_cli(["train", "clap", "--config", str(path)])
    assert code == 2 and "Traceback" not in out
    assert str(path) in out.replace("\n", "")


def test_recipe_validation_names_every_problem():
    from audiocap.train.clap import ClapRecipe

    recipe = load_recipe(ClapRecipe, CLAP)
    recipe.optim.lr, recipe.model.embed_dim = -1.0, 0
    with pytest.raises(RecipeError) as err:
        validate_recipe(recipe)
    assert "optim.lr=-1.0" in str(err.value) and "model.embed_dim=0" in str(err.value)


def test_json_files_stay_valid_json(tmp_path):
    from audiocap.fileio import atomic_write_json

    path = atomic_write_json(tmp_path / "train.json", {"loss": math.nan, "m": [1.0, -math.inf, {"x": math.inf}]})
    assert json.loads(path.read_text()) == {"loss": None, "m": [1.0, None, {"x": None}]}
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
