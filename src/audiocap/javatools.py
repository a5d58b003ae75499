"""Finding the Java tools the official metrics run: a ``java`` executable and the jars that ship
inside the pycocoevalcap wheel (METEOR 1.5, the Stanford PTB tokenizer, SPICE).

Kept apart from :mod:`audiocap.metrics` so that the tokenizer (:mod:`audiocap.text.tokenize`,
which falls back to the Java PTBTokenizer) can use it without importing the metrics that
import the tokenizer.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path


class JavaToolError(RuntimeError):
    """A Java-based metric cannot run; the message says why and what to do."""


def pycocoevalcap_dir() -> Path:
    """Folder of the installed pycocoevalcap package (holds the METEOR, PTB and SPICE jars)."""
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        raise JavaToolError("pycocoevalcap is not installed (it ships the official METEOR and "
                            "SPICE jars); run: pip install pycocoevalcap==1.2")
    return Path(next(iter(spec.submodule_search_locations)))


def java_executable() -> str:
    """Path of ``java`` on PATH, or a clear error (Debian: apt-get install default-jre-headless)."""
    java = shutil.which("java")
    if java is None:
        raise JavaToolError("java not found on PATH; install a Java runtime "
                            "(Debian: apt-get install default-jre-headless)")
    return java
