"""One recipe shape for the three trainers (issue 15): the common ``run.*`` keys, ``--set`` on every
``train`` command (CLAP's positional overrides kept), and one ``--resume/--force`` rule."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from tone_manifest import write_tone_manifest
from typer.testing import CliRunner

from audiocap.cli import app
from audiocap.config import RecipeError, load_recipe
from audiocap.train.captioner import CaptionerRecipe
from audiocap.train.clap import ClapRecipe
from audiocap.train.wsac import WSACRecipe

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "audiocap" / "configs"
TRAINERS = {"clap": ClapRecipe, "captioner": CaptionerRecipe, "wsac": WSACRecipe}


def shipped_recipes():
    """(file, recipe class) of every shipped recipe; papers/ files go with the class that loads them."""
    out = []
    for path in sorted(CONFIGS.glob("*/*.yaml")):
        if path.parent.name in TRAINERS:
            out.append((path, TRAINERS[path.parent.name]))
            continue
        for cls in TRAINERS.values():
            try:
                load_recipe(cls, path, validate=False)
            except RecipeError:
                continue
            out.append((path, cls))
            break
        else:
            raise AssertionError(f"{path} loads as no trainer's recipe")
    return out


def to_run_section(data: dict, run_keys: dict[str, str]) -> dict:
    """``data`` with every key that has a common name moved under ``run:`` (the new spelling)."""
    data, run = copy.deepcopy(data), {}
    for common, dotted in run_keys.items():
        *parents, leaf = dotted.split(".")
        node = data
        for k in parents:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node:
            run[common] = node.pop(leaf)
    return {**data, "run": run} if run else data


@pytest.mark.parametrize("path,cls", shipped_recipes(), ids=lambda x: getattr(x, "name", getattr(x, "__name__", "")))
def test_shipped_recipes_load_the_same_in_the_common_spelling(path, cls, tmp_path):
    old = yaml.safe_load(path.read_text())
    new = to_run_section(old, cls.RUN_KEYS)
    moved = tmp_path / path.name
    moved.write_text(yaml.safe_dump(new))
    assert load_recipe(cls, moved, validate=False) == load_recipe(cls, path, validate=False)


def test_every_trainer_has_the_common_keys_it_can_honour():
    assert set(ClapRecipe.RUN_KEYS) >= {"out", "epochs", "seed", "accelerator", "precision", "cache_dir", "resume"}
    assert set(CaptionerRecipe.RUN_KEYS) >= {"out", "epochs", "seed", "threads", "precision", "cache_dir"}
    assert set(WSACRecipe.RUN_KEYS) >= {"epochs", "seed", "threads", "cache_dir"}
    for cls in TRAINERS.values():  # every target is a real key of the recipe
        for dotted in cls.RUN_KEYS.values():
            node = cls()
            for part in dotted.split("."):
                node = getattr(node, part)


@pytest.mark.parametrize("cls,old", [
    (ClapRecipe, ["trainer.max_epochs=3", "trainer.seed=7", "out=runs/x", "data.cache_dir=c", "optim.lr=0.002"]),
    (CaptionerRecipe, ["train.epochs=3", "train.seed=7", "train.out=runs/x", "data.cache_dir=c", "train.lr=0.002"]),
    (WSACRecipe, ["optim.epochs=3", "optim.seed=7", "data.cache_dir=c", "optim.lr=0.002", "optim.threads=2"]),
])
def test_run_overrides_equal_the_trainer_spelling(cls, old):
    common = {v: k for k, v in cls.RUN_KEYS.items()}
    new = [f"run.{common[k]}={v}" for k, v in (item.split("=", 1) for item in old)]
    got = load_recipe(cls, None, new)
    assert got == load_recipe(cls, None, old) and got != cls()
    # the later override wins whichever spelling it uses
    key, _ = old[0].split("=", 1)
    assert load_recipe(cls, None, [new[0], f"{key}=5"]) == load_recipe(cls, None, [f"{key}=5"])


def test_run_section_errors_name_the_file_and_the_key(tmp_path):
    clash = tmp_path / "clash.yaml"
    clash.write_text("run: {epochs: 3}\ntrainer: {max_epochs: 4}\n")
    with pytest.raises(RecipeError, match=r"clash.yaml: run.epochs=3 and trainer.max_epochs=4 disagree"):
        load_recipe(ClapRecipe, clash)
    same = tmp_path / "same.yaml"
    same.write_text("run: {epochs: 4}\ntrainer: {max_epochs: 4}\n")
    assert load_recipe(ClapRecipe, same).trainer.max_epochs == 4
    with pytest.raises(RecipeError, match=r"override run.out: WSACRecipe has no common key 'out'.*cache_dir"):
        load_recipe(WSACRecipe, None, ["run.out=x"])
    with pytest.raises(RecipeError, match=r"recipe: train.epochs=0: must be >= 1"):
        load_recipe(CaptionerRecipe, None, ["run.epochs=0"])  # values are checked as under their own key


# --- the train commands --------------------------------------------------------------------------

@pytest.fixture
def caught(monkeypatch):
    """Replace the three train functions by recorders of (recipe, resume)."""
    import audiocap.train.captioner as cap
    import audiocap.train.clap as clap
    import audiocap.train.wsac as wsac

    calls: list[tuple[object, bool]] = []
    monkeypatch.setattr(clap, "train_clap", lambda r: calls.append((r, r.resume)) or Path(r.out))
    monkeypatch.setattr(cap, "train_captioner", lambda r, resume: calls.append((r, resume)) or Path(r.train.out))
    monkeypatch.setattr(wsac, "train_wsac", lambda r, out, resume: calls.append((r, resume)) or Path(out))
    return calls


def run(*args: str):
    return CliRunner().invoke(app, ["train", *args])


def test_set_and_resume_mean_the_same_for_the_three_trainers(caught, tmp_path):
    caps = tmp_path / "caps.csv"
    caps.write_text('file_name,caption_1\na.wav,"a dog barks"\n', encoding="utf-8")
    commands = {
        "clap": ["clap", "-c", str(CONFIGS / "clap" / "debug.yaml")],
        "captioner": ["captioner", "-c", str(CONFIGS / "captioner" / "debug.yaml")],
        "wsac": ["wsac", str(CONFIGS / "wsac" / "debug.yaml"), "--captions", str(caps), "--out", str(tmp_path / "w")],
    }
    epochs = {"clap": lambda r: r.trainer.max_epochs, "captioner": lambda r: r.train.epochs,
              "wsac": lambda r: r.optim.epochs}
    for name, cmd in commands.items():
        for flags, resume in (([], True), (["--resume"], True), (["--force"], False)):
            caught.clear()
            res = run(*cmd, "--set", "run.epochs=3", "--set", "run.seed=11", *flags)
            assert res.exit_code == 0, (name, res.output)
            (recipe, got), = caught
            assert got is resume and epochs[name](recipe) == 3, (name, flags)
        res = run(*cmd, "--set", "run.epochs=zero")
        assert res.exit_code == 2 and "epochs: expected int, got 'zero'" in res.output, (name, res.output)


def test_clap_positional_overrides_still_work_and_agree_with_set(caught):
    cfg = str(CONFIGS / "clap" / "debug.yaml")
    assert run("clap", "-c", cfg, "trainer.max_epochs=4", "out=runs/p").exit_code == 0
    assert run("clap", "-c", cfg, "--set", "trainer.max_epochs=4", "--set", "out=runs/p").exit_code == 0
    assert run("clap", "-c", cfg, "--set", "run.epochs=4", "--set", "run.out=runs/p").exit_code == 0
    (a, _), (b, _), (c, _) = caught
    assert a == b == c and a.trainer.max_epochs == 4 and a.out == "runs/p"
    caught.clear()
    cfg_off = ["clap", "-c", cfg, "resume=false"]  # the recipe key still works; the flag wins over it
    assert run(*cfg_off).exit_code == 0 and run(*cfg_off, "--resume").exit_code == 0
    assert [r for _, r in caught] == [False, True]
    bad = run("clap", "-c", cfg, "--set", "trainer.max_epochs")
    assert bad.exit_code == 2 and "must look like key.sub=value" in bad.output


def test_captioner_rerun_is_a_no_op_and_force_retrains(tmp_path, monkeypatch):
    """The captioner used to retrain from scratch unless --resume was given; now a finished run
    is left alone by default (as CLAP and WSAC do) and --force trains it again."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    write_tone_manifest(tmp_path, n=8, n_train=6)
    cmd = ["captioner", "-c", str(CONFIGS / "captioner" / "debug.yaml"), "--set", "data.manifest=manifest.jsonl",
           "--set", "run.out=run", "--set", "run.cache_dir=cache", "--set", "train.progress=false",
           "--set", "run.threads=1"]
    weights = tmp_path / "run" / "checkpoint" / "model.safetensors"
    first = run(*cmd)
    assert first.exit_code == 0, first.output
    stamp = weights.stat().st_mtime_ns
    again = run(*cmd)
    assert again.exit_code == 0 and "already trained (1 epochs); nothing to do (--force retrains)" in again.output
    assert weights.stat().st_mtime_ns == stamp
    forced = run(*cmd, "--force")
    assert forced.exit_code == 0 and "already trained" not in forced.output
    assert weights.stat().st_mtime_ns > stamp


def _clap_command(tmp_path: Path) -> tuple[list[str], Path]:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from clap_helpers import write_dataset, write_tiny_bert

    manifest, bert = write_dataset(tmp_path / "ds", per_class=3), write_tiny_bert(tmp_path / "bert")
    cmd = ["clap", "-c", str(CONFIGS / "clap" / "debug.yaml"), "--set", f"run.out={tmp_path / 'run'}",
           "--set", f"data.manifest={manifest}", "--set", "model.text=hf", "--set", f"model.text_kw={{folder: {bert}}}",
           "--set", f"run.cache_dir={tmp_path / 'cache'}", "--set", "trainer.progress_bar=false", "--set", "run.epochs=1"]
    return cmd, tmp_path / "run" / "model.safetensors"


def _wsac_command(tmp_path: Path) -> tuple[list[str], Path]:
    caps = tmp_path / "caps.csv"
    caps.write_text("file_name,caption_1,caption_2\n" + "".join(
        f'{n}.wav,"{a}","{b}"\n' for n, a, b in [("dog", "a dog barks twice", "a small dog is barking"),
                                                 ("rain", "heavy rain falls on a roof", "rain pours on metal")]),
                    encoding="utf-8")
    cmd = ["wsac", "--captions", str(caps), "--out", str(tmp_path / "run"), "--gap", "noise", "--noise-std", "0.01",
           "--set", f"run.cache_dir={tmp_path / 'cache'}", "--set", "run.epochs=1", "--set", "run.batch_size=2",
           "--set", "model.d_model=16", "--set", "model.n_layers=1", "--set", "model.mlp_hidden=16",
           "--set", "model.min_count=1", "--set", "run.threads=1"]
    return cmd, tmp_path / "run" / "model.safetensors"


@pytest.mark.parametrize("make", [_clap_command, _wsac_command], ids=["clap", "wsac"])
def test_clap_and_wsac_reruns_are_no_ops_and_force_retrains(make, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cmd, weights = make(tmp_path)
    first = run(*cmd)
    assert first.exit_code == 0, first.output
    stamp = weights.stat().st_mtime_ns
    again = run(*cmd)
    assert again.exit_code == 0 and "nothing to do (--force retrains)" in again.output, again.output
    assert weights.stat().st_mtime_ns == stamp
    forced = run(*cmd, "--force")
    assert forced.exit_code == 0 and "already trained" not in forced.output, forced.output
    assert weights.stat().st_mtime_ns > stamp
