"""A non-editable install works: the wheel carries the recipes, the page, the foley registry
and the shipped models, and the installed package finds them without the repository.

`audiocap demo` reads configs/ through package data (a symlink in the repository), the page
is served from serve/static, the dataset builder reads data/foley/*.yaml, and search and
caption default to pretrained/*-default; an editable install hides a missing entry in
pyproject's package-data, so this test builds the wheel, installs it into a folder and runs
the installed package from outside the repository.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from tone_manifest import write_tone_manifest

REPO = Path(__file__).resolve().parents[1]

CHECK = r"""
import sys
from importlib import resources
from pathlib import Path
import yaml
import audiocap
from audiocap.cli.demo import REPO_CONFIGS
from audiocap.pretrained import default_model, has_default
target = Path(sys.argv[1]).resolve()
assert Path(audiocap.__file__).resolve().is_relative_to(target), audiocap.__file__
for recipe in ("clap/foley.yaml", "captioner/demo.yaml", "clap/foley-full.yaml"):
    assert isinstance(yaml.safe_load((REPO_CONFIGS / recipe).read_text()), dict), recipe
static = resources.files("audiocap") / "serve" / "static"
assert all((static / f).is_file() for f in ("index.html", "app.js", "style.css"))
foley = resources.files("audiocap") / "data" / "foley"
assert (foley / "sources.yaml").is_file() and (foley / "lexicon.yaml").is_file()
for kind in ("clap", "captioner"):
    if has_default(kind):
        folder = default_model(kind)
        assert folder.resolve().is_relative_to(target), folder
        assert (folder / "model.safetensors").stat().st_size > 100_000
print("ok")
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The wheel built from a clean copy of the tree, installed into a folder: (folder, the
    environment that imports audiocap from it and not from the repository)."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    wheels, target, source = tmp_path / "wheels", tmp_path / "site", tmp_path / "source"
    # a clean copy: setuptools' build/ folder keeps files of earlier builds and would hide a gap
    top = {".git", ".venv", "build", "dist", "data", "runs", "cache", ".cache", ".pytest_cache", "benchmarks", "docs"}

    def skip(folder: str, names: list[str]) -> set[str]:
        here = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
        return here | (top & set(names) if Path(folder) == REPO else set())

    shutil.copytree(REPO, source, symlinks=True, ignore=skip)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(source)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("audiocap-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "audiocap/configs/clap/foley.yaml" in names and "audiocap/serve/static/app.js" in names
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AUDIOCAP_PRETRAINED_DIR")}
    env["PYTHONPATH"] = str(target)
    return target, env


def audiocap_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """The installed ``audiocap`` command, run from ``cwd`` (outside the repository)."""
    return subprocess.run([sys.executable, "-c", "from audiocap.cli import main; main()", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_built_wheel_runs_without_the_repository(installed, tmp_path):
    target, env = installed
    run = subprocess.run([sys.executable, "-c", CHECK, str(target)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-3000:]
    version = audiocap_cli(env, tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.startswith("audiocap "), version.stderr[-2000:]


def test_installed_demo_imports_the_captions(installed, shared, tmp_path):
    """The demo's caption step, as a user of the wheel runs it: Clotho's caption CSVs become a
    manifest in --out with every caption of the shared files."""
    _, env = installed
    run = audiocap_cli(env, tmp_path, "demo", "--captions-only", "--shared", str(shared),
                       "--out", str(tmp_path / "out"), "--data", str(tmp_path / "data"))
    assert run.returncode == 0, run.stderr[-3000:]
    lines = (tmp_path / "out" / "clotho.jsonl").read_text().splitlines()
    clotho = shared / "data" / "clotho"
    n_rows = sum(len(list(csv.DictReader(f.open(encoding="utf-8", newline=""))))
                 for f in clotho.glob("clotho_captions_*.csv"))
    assert len(lines) == n_rows and sum(len(json.loads(x)["captions"]) for x in lines) == 5 * n_rows
    assert f"clotho: {n_rows} clips, {5 * n_rows} captions" in run.stdout


def test_installed_package_trains_its_debug_recipe(installed, tmp_path):
    """The captioner debug recipe shipped in the wheel trains on a tiny manifest from another
    folder, and the installed ``caption`` command reads the checkpoint it wrote."""
    target, env = installed
    write_tone_manifest(tmp_path, n=12, n_train=8)
    recipe = target / "audiocap" / "configs" / "captioner" / "debug.yaml"
    run = audiocap_cli(env, tmp_path, "train", "captioner", "-c", str(recipe),
                       "--set", "data.manifest=manifest.jsonl", "--set", "train.out=run",
                       "--set", "data.cache_dir=cache", "--set", "train.progress=false")
    assert run.returncode == 0, run.stderr[-3000:]
    ckpt = tmp_path / "run" / "checkpoint"
    assert (ckpt / "model.safetensors").stat().st_size > 10_000 and "checkpoint:" in run.stdout
    assert {"low", "high", "beep"} <= set(json.loads((ckpt / "vocab.json").read_text())["words"])
    cap = audiocap_cli(env, tmp_path, "caption", "c0.wav", "--model", str(ckpt), "--json")
    assert cap.returncode == 0, cap.stderr[-3000:]
    (line,) = cap.stdout.splitlines()  # one JSON record per caption
    assert json.loads(line)["file"] == "c0.wav" and json.loads(line)["end"] == 1.0
