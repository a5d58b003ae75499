"""Assemble a folder that runs the official SPICE 1.0 on the machine's Java.

SPICE 1.0 (Anderson et al., 2016) is ``spice-1.0.jar`` plus the ``lib/`` folder that the
pycocoevalcap wheel ships, minus Stanford CoreNLP 3.6.0 (code + ``models`` jars), which
coco-caption downloads from Stanford's web site at run time. Here CoreNLP comes from Maven
Central through ``mvn dependency:copy`` and is checked against Maven's SHA-1 files. SPICE
writes its output through the Nashorn JavaScript engine, which Java 15 removed, so for
Java >= 15 ``org.openjdk.nashorn:nashorn-core:15.4`` and its ASM 7.3.1 dependencies are added
from Maven Central too. The folder layout::

    <spice dir>/spice-1.0.jar
    <spice dir>/lib/*.jar
    <spice dir>/audiocap-spice.json   (what was installed, with SHA-1s)
    <spice dir>/cache/                (SPICE's parse cache, LMDB)
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Callable

from audiocap.fileio import atomic_write_json, file_hash

ENV_DIR = "AUDIOCAP_SPICE_DIR"
ENV_MVN_ARGS = "AUDIOCAP_MVN_ARGS"  # extra mvn arguments, e.g. "-s settings.xml"
MANIFEST = "audiocap-spice.json"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# (Maven coordinates, file name in lib/); CoreNLP is what SPICE 1.0 was built against
CORENLP = [
    ("edu.stanford.nlp:stanford-corenlp:3.6.0", "stanford-corenlp-3.6.0.jar"),
    ("edu.stanford.nlp:stanford-corenlp:3.6.0:jar:models", "stanford-corenlp-3.6.0-models.jar"),
]
NASHORN = [("org.openjdk.nashorn:nashorn-core:15.4", "nashorn-core-15.4.jar")] + [
    (f"org.ow2.asm:{a}:7.3.1", f"{a}-7.3.1.jar")
    for a in ("asm", "asm-commons", "asm-tree", "asm-util", "asm-analysis")
]


class SpiceSetupError(RuntimeError):
    """Setting SPICE up failed; the message says what is missing and what to do."""


def default_spice_dir() -> Path:
    """``$AUDIOCAP_SPICE_DIR``, else ``$XDG_CACHE_HOME/audiocap/spice`` (``~/.cache/...``)."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "audiocap" / "spice"


@lru_cache(maxsize=4)
def java_major(java: str = "java") -> int:
    """Major version of ``java`` (8 for 1.8.x), or raise SpiceSetupError if it does not run."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpiceSetupError(f"cannot run {java!r} ({exc}); install a Java runtime "
                              "(Debian: apt-get install default-jre-headless)") from None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        raise SpiceSetupError(f"cannot read the Java version from: {out.stderr.strip()[:200]}")
    major = int(m.group(1))
    return int(m.group(2)) if major == 1 else major


def required_maven(java: str = "java") -> list[tuple[str, str]]:
    """Maven artifacts the SPICE folder needs for this Java (Nashorn only for Java >= 15)."""
    return CORENLP + (NASHORN if java_major(java) >= 15 else [])


def _mvn_copy(mvn: str, coords: str, out_dir: Path, extra: list[str]) -> None:
    """``mvn dependency:copy`` one artifact into ``out_dir`` (strict checksums)."""
    cmd = [mvn, "-B", "-q", "-C", *extra, "dependency:copy", f"-Dartifact={coords}",
           f"-DoutputDirectory={out_dir}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        log = (proc.stdout + proc.stderr).strip().splitlines()
        detail = next((ln for ln in log if "ERROR" in ln), log[-1] if log else "")
        detail = _ANSI.sub("", detail)[:300]
        raise SpiceSetupError(f"mvn could not fetch {coords} (is Maven Central reachable?): "
                              f"{detail}")


def _sha1_coords(coords: str) -> str:
    """Coordinates of an artifact's ``.sha1`` file (packaging ``jar.sha1``)."""
    parts = coords.split(":")
    g, a, v = parts[:3]
    classifier = parts[4] if len(parts) > 4 else None
    return f"{g}:{a}:{v}:jar.sha1" + (f":{classifier}" if classifier else "")


def setup_spice(target: Path | None = None, *, mvn: str | None = None, java: str | None = None,
                mvn_args: list[str] | None = None,
                progress: Callable[[str], None] | None = None) -> Path:
    """Create (or complete) a SPICE folder; idempotent: verified files are not fetched again.

    Copies ``spice-1.0.jar`` and ``lib/`` from the pycocoevalcap wheel, fetches the CoreNLP 3.6.0
    jars (and Nashorn + ASM on Java >= 15) with ``mvn dependency:copy``, checks each against the
    SHA-1 file Maven Central publishes for it, and records everything in ``audiocap-spice.json``.
    ``progress`` is called with a short message per step. Raises SpiceSetupError with the
    reason (no java, no mvn, Maven Central unreachable, checksum mismatch).
    """
    from audiocap.javatools import JavaToolError, pycocoevalcap_dir

    say = progress or (lambda msg: None)
    target = Path(target) if target else default_spice_dir()
    java = java or shutil.which("java")
    if not java:
        raise SpiceSetupError("java not found on PATH; install a Java runtime "
                              "(Debian: apt-get install default-jre-headless)")
    mvn = mvn or shutil.which("mvn")
    if not mvn:
        raise SpiceSetupError("mvn not found on PATH; install Maven (Debian: apt-get install "
                              "maven) or point AUDIOCAP_SPICE_DIR at a ready SPICE folder")
    if mvn_args is None:
        mvn_args = shlex.split(os.environ.get(ENV_MVN_ARGS, ""))
    try:
        wheel = pycocoevalcap_dir() / "spice"
    except JavaToolError as exc:
        raise SpiceSetupError(str(exc)) from None
    lib = target / "lib"
    lib.mkdir(parents=True, exist_ok=True)
    manifest_path = target / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    files: dict[str, str] = manifest.get("files", {})

    # 1. the official jar and its lib/ from the pycocoevalcap wheel
    for src in [wheel / "spice-1.0.jar", *sorted((wheel / "lib").glob("*.jar"))]:
        rel = src.name if src.parent == wheel else f"lib/{src.name}"
        dst = target / rel
        if not (dst.exists() and dst.stat().st_size == src.stat().st_size):
            say(f"copy {rel} from pycocoevalcap")
            shutil.copyfile(src, dst.with_suffix(".part"))
            os.replace(dst.with_suffix(".part"), dst)
        files[rel] = "pycocoevalcap"

    # 2. CoreNLP (+ Nashorn) from Maven Central, each checked against Maven's .sha1
    for coords, name in required_maven(java):
        dst = lib / name
        expected = files.get(f"lib/{name}")
        if dst.exists() and expected and file_hash(dst, "sha1") == expected:
            say(f"ok   {coords} (cached)")
            continue
        say(f"mvn  {coords}")
        with tempfile.TemporaryDirectory(dir=target) as tmp:
            _mvn_copy(mvn, coords, Path(tmp), mvn_args)
            _mvn_copy(mvn, _sha1_coords(coords), Path(tmp), mvn_args)
            jar = Path(tmp) / name
            sha_file = Path(tmp) / (name + ".sha1")
            if not jar.exists() or not sha_file.exists():
                raise SpiceSetupError(f"mvn did not produce {name} and its .sha1 in {tmp}")
            want = sha_file.read_text().split()[0].strip().lower()
            got = file_hash(jar, "sha1")
            if got != want:
                raise SpiceSetupError(f"{coords}: SHA-1 {got} does not match Maven Central's "
                                      f"{want}; the download is corrupt, run setup again")
            os.replace(jar, dst)
        files[f"lib/{name}"] = want
    (target / "cache").mkdir(exist_ok=True)
    atomic_write_json(manifest_path, {"spice": "1.0", "java_major": java_major(java),
                                      "files": files})
    return target
