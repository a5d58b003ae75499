"""A non-editable install works: the wheel carries the recipes, the page, the foley registry
and the shipped models, and the installed package finds them without the repository.

`audiocap demo` reads configs/ through package data (a symlink in the repository), the page
is served from serve/static, the dataset builder reads data/foley/*.yaml, and search and
caption default to pretrained/*-default; an editable install hides a missing entry in
pyproject's package-data, so this test builds the wheel, installs it into a folder and runs
the installed package from outside the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

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


def test_the_built_wheel_runs_without_the_repository(tmp_path):
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
    run = subprocess.run([sys.executable, "-c", CHECK, str(target)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-3000:]
    version = subprocess.run([sys.executable, "-c", "from audiocap.cli import main; main()", "--version"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert version.returncode == 0 and version.stdout.startswith("audiocap "), version.stderr[-2000:]
