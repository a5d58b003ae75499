"""The arrows point one way: library packages never import training code (DESIGN.md, issue 15).

Every ``import`` statement of every module under inference/, evaluation/, serve/, encoders/
and features/ (top level or inside functions, absolute or relative) is read with ``ast``; any
that names ``audiocap.train`` fails the test with the file and line. The walker itself is
checked on planted violations, so the test can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import audiocap

PACKAGE = Path(audiocap.__file__).parent
LIBRARY = ("inference", "evaluation", "serve", "encoders", "features")
FORBIDDEN = "audiocap.train"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    """Dotted name of a source file under the package root (``audiocap.x.y``)."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, name: str) -> list[tuple[int, str]]:
    """``(line, dotted module)`` of every import in ``path`` (module ``name``); relative imports are
    resolved against the module's package, ``from a import b`` yields both ``a`` and ``a.b``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return out


def violations(paths, root: Path = PACKAGE) -> list[str]:
    """``file:line imports audiocap.train...`` for each import statement of training code in ``paths``."""
    bad: dict[tuple[str, int], str] = {}
    for path in paths:
        for line, mod in imported_modules(path, module_name(path, root)):
            if mod == FORBIDDEN or mod.startswith(FORBIDDEN + "."):
                key = (str(path.relative_to(root.parent)), line)
                bad[key] = min(bad.get(key, mod), mod, key=len)  # one entry per statement
    return [f"{f}:{line} imports {mod}" for (f, line), mod in sorted(bad.items())]


def library_files() -> list[Path]:
    files = [p for pkg in LIBRARY for p in sorted((PACKAGE / pkg).rglob("*.py"))]
    assert len(files) > 20, f"found only {len(files)} library modules under {PACKAGE}"
    return files


def test_library_packages_never_import_training_code():
    bad = violations(library_files())
    assert not bad, "library code imports training code (move it to features/ or inference/):\n" + "\n".join(bad)


@pytest.mark.parametrize("source", [
    "import audiocap.train.features\n",
    "from audiocap.train.captioner_data import split_frames\n",
    "from audiocap import train\n",
    "def f():\n    from ..train import features\n",
    "def f():\n    from ..train.features import cache_audio_frames\n",
    "import os, audiocap.train as t\n",
])
def test_the_walker_finds_a_planted_import(tmp_path, source):
    pkg = tmp_path / "audiocap" / "evaluation"
    pkg.mkdir(parents=True)
    bad = pkg / "planted.py"
    bad.write_text(source)
    (pkg / "clean.py").write_text("from audiocap.features import embed_waves\nimport audiocap.trainer_free\n"
                                  "from ..training_notes import x\n")
    found = violations([bad, pkg / "clean.py"], root=tmp_path / "audiocap")
    assert len(found) == 1 and found[0].startswith("audiocap/evaluation/planted.py:")


def test_relative_imports_resolve_against_the_package(tmp_path):
    pkg = tmp_path / "audiocap" / "serve"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import wiring\nfrom .. import train\n")
    mods = [m for _, m in imported_modules(pkg / "__init__.py", "audiocap.serve")]
    assert "audiocap.serve.wiring" in mods and "audiocap.train" in mods
