"""SPICE and SPIDEr from the official SPICE 1.0 jar (never estimated).

SPICE (Anderson et al., "SPICE: Semantic Propositional Image Caption Evaluation", ECCV 2016)
parses candidates and references into scene graphs with Stanford CoreNLP 3.6.0 and scores the
F-measure of matched tuples. It runs here only from a SPICE folder made by
``audiocap metrics setup-spice`` (or one the user points at with ``folder=`` /
``$AUDIOCAP_SPICE_DIR``); otherwise SPICE and SPIDEr are reported unavailable with the reason.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from audiocap.metrics.base import MetricResult, prepare
from audiocap.progress import Phase, ProgressFn
from audiocap.metrics.spice_setup import (
    CORENLP, NASHORN, SpiceSetupError, default_spice_dir, java_major,
)

# SPICE's parse cache serializes with FST 2.47, which reflects into JDK internals (Java >= 9)
ADD_OPENS = [f"--add-opens=java.base/{p}=ALL-UNNAMED" for p in (
    "java.lang", "java.util", "java.math", "java.net", "java.text", "java.io",
    "java.lang.reflect", "java.util.concurrent", "java.util.concurrent.atomic", "java.nio",
    "sun.nio.ch")]
SETUP_HINT = "run `audiocap metrics setup-spice` (needs java and mvn with Maven Central)"


def spice_status(folder: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """``(folder, "")`` when SPICE can run from ``folder`` (default: the cache), else
    ``(None, reason)``. Checks java, the official jar, CoreNLP 3.6.0 and, on Java >= 15, Nashorn."""
    path = Path(folder).expanduser() if folder else default_spice_dir()
    java = shutil.which("java")
    if java is None:
        return None, "java not found on PATH (Debian: apt-get install default-jre-headless)"
    if not (path / "spice-1.0.jar").is_file():
        return None, f"no SPICE folder at {path} (spice-1.0.jar missing); {SETUP_HINT}"
    try:
        need = CORENLP + (NASHORN if java_major(java) >= 15 else [])
    except SpiceSetupError as exc:
        return None, str(exc)
    missing = [name for _, name in need if not (path / "lib" / name).is_file()]
    if missing:
        return None, f"SPICE folder {path} lacks {', '.join(missing)}; {SETUP_HINT}"
    return path, ""


def _num(x) -> float:
    return math.nan if x is None else float(x)


def java_command(folder: Path, *, memory: str = "8G") -> list[str]:
    """``java ... -cp spice-1.0.jar:lib/* edu.anu.spice.SpiceScorer`` for a SPICE folder: the
    official jar's own class path plus Nashorn, and the module opens its cache needs."""
    opens = ADD_OPENS if java_major(shutil.which("java") or "java") >= 9 else []
    return ["java", f"-Xmx{memory}", *opens, "-cp",
            os.pathsep.join(["spice-1.0.jar", "lib/*"]), "edu.anu.spice.SpiceScorer"]


def spice_stage(log: str) -> str:
    """What a SPICE JVM is doing, read from the lines the jar and CoreNLP print on stderr (the jar
    prints no per-caption progress): "starting Java", then for the references and then the
    candidates "reading the cache", "loading CoreNLP", "parsing" (CoreNLP's "Threads(...)" line ends
    a parse) and finally "scoring"."""
    stage, lines = "starting Java", log.splitlines()
    for line in lines:
        if line.startswith("Parsing reference captions"):
            stage = "references: reading the cache"
        elif line.startswith("Parsing test captions"):
            stage = "candidates: reading the cache"
        elif line.startswith("Initiating Stanford parsing pipeline"):
            stage = stage.split(":")[0] + ": loading CoreNLP"
        elif line.startswith("Loading classifier") and "english.conll.4class" in line and "done" in line:
            stage = stage.split(":")[0] + ": parsing"  # the last of CoreNLP's models is loaded
        elif line.startswith("Threads( StanfordCoreNLP )"):
            stage = "references: parsed" if stage.startswith("references") else "scoring"
        elif line.startswith("SPICE evaluation took"):
            stage = "done"
    if stage.startswith("candidates: reading") and any(ln.startswith("SPICE evaluation took") for ln in lines):
        stage = "done"
    return stage


def spice_cache_use(log: str) -> tuple[bool, bool]:
    """``(references parsed, candidates parsed)`` from a finished JVM's log: False means every
    caption of that set came from the parse cache (the jar starts CoreNLP only for what it lacks)."""
    parsed, part = [False, False], None
    for line in log.splitlines():
        if line.startswith("Parsing reference captions"):
            part = 0
        elif line.startswith("Parsing test captions"):
            part = 1
        elif part is not None and line.startswith("Threads( StanfordCoreNLP )"):
            parsed[part] = True
    return parsed[0], parsed[1]


def _stages_detail(stages: list[str]) -> str:
    if len(stages) == 1:
        return stages[0]
    counts: dict[str, int] = {}
    for st in stages:
        counts[st] = counts.get(st, 0) + 1
    return f"{len(stages)} JVMs: " + ", ".join(f"{n} {st}" for st, n in counts.items())


def _cache_detail(logs: list[str]) -> str:
    use = [spice_cache_use(log) for log in logs]
    parts = []
    for i, what in enumerate(("references", "candidates")):
        cached = sum(not u[i] for u in use)
        parts.append(f"{what} {'from the cache' if cached == len(use) else 'parsed'}"
                     + (f" ({cached} of {len(use)} shards from the cache)" if 0 < cached < len(use) else ""))
    return ", ".join(parts)


def run_spice(items: list[dict], folder: Path, *, cache: bool = True, memory: str = "8G",
              timeout: float | None = None, workers: int = 1, progress: ProgressFn | None = None,
              phase: str = "spice", unit: str = "items") -> list[dict]:
    """Run the official SPICE scorer on ``items`` (``image_id``, ``test``, ``refs``).

    Equivalent to coco-caption's ``java -jar spice-1.0.jar IN.json -cache DIR -out OUT.json
    -subset -silent``, with the jar's own ``lib/`` plus Nashorn on the class path (needed since
    Java 15). Returns SPICE's JSON output (one dict per item, ``scores`` per category).
    ``workers`` > 1 splits the items into that many contiguous shards, each scored by its own
    JVM at the same time (CoreNLP parsing is the cost, and SPICE scores every item on its own,
    so the merged output equals one run's); the shards share the parse cache.
    ``progress`` gets ``phase`` events: items of finished shards, and as detail each JVM's stage
    (:func:`spice_stage`; the jar reports no per-caption progress) and at the end whether the
    references and candidates were parsed or came from the cache.
    """
    workers = max(1, min(int(workers), len(items)))
    bounds = [round(i * len(items) / workers) for i in range(workers + 1)]
    report = Phase(progress, phase, len(items), unit=unit, detail="starting Java")
    with tempfile.TemporaryDirectory(prefix="audiocap-spice-") as tmp:
        runs = []
        for k in range(workers):
            in_file, out_file = Path(tmp) / f"in{k}.json", Path(tmp) / f"out{k}.json"
            in_file.write_text(json.dumps(items[bounds[k] : bounds[k + 1]]))
            cmd = [*java_command(folder, memory=memory), str(in_file)]
            if cache:
                (folder / "cache").mkdir(exist_ok=True)
                cmd += ["-cache", str(folder / "cache")]
            cmd += ["-out", str(out_file), "-subset", "-silent"]
            log = Path(tmp) / f"log{k}.txt"  # a file, not a pipe: no shard can block on a full pipe
            with open(log, "w") as fh:
                runs.append((subprocess.Popen(cmd, cwd=folder, stdout=fh, stderr=subprocess.STDOUT), out_file, log))
        start, finished = time.monotonic(), [False] * workers
        try:
            while not all(finished):
                for k, (proc, out_file, log) in enumerate(runs):
                    if finished[k] or proc.poll() is None:
                        continue
                    if proc.returncode != 0 or not out_file.exists():
                        tail = " | ".join(_read(log).strip().splitlines()[-3:])
                        raise SpiceSetupError(f"SPICE exited with code {proc.returncode}: {tail[:400]}")
                    finished[k] = True
                if timeout is not None and time.monotonic() - start > timeout and not all(finished):
                    raise subprocess.TimeoutExpired(runs[finished.index(False)][0].args, timeout)
                if progress is not None:
                    done = sum(bounds[k + 1] - bounds[k] for k in range(workers) if finished[k])
                    report.update(done, detail=_stages_detail(
                        ["done" if finished[k] else spice_stage(_read(log)) for k, (_, _, log) in enumerate(runs)]))
                if not all(finished):
                    time.sleep(0.2)
            out: list[dict] = []
            for _, out_file, _ in runs:
                out += json.loads(out_file.read_text())
            report.finish(detail=_cache_detail([_read(log) for _, _, log in runs]) if progress else None)
        finally:
            for proc, _, _ in runs:  # a failed or timed-out shard stops the others
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return out


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _result(out: dict, keys: list[str]) -> MetricResult:
    f = np.array([_num(out[k]["f"]) for k in keys])
    pr = np.array([_num(out[k]["pr"]) for k in keys])
    re_ = np.array([_num(out[k]["re"]) for k in keys])
    return MetricResult("spice", float(np.mean(f)), f, extra={"precision": pr, "recall": re_})


def spice_many(systems: dict[str, list[str]], references: list[list[str]], *,
               folder: str | os.PathLike | None = None, tokenized: bool = False,
               cache: bool = True, memory: str = "8G", workers: int = 1,
               progress: ProgressFn | None = None) -> dict[str, MetricResult]:
    """SPICE (Anderson et al., 2016) of several systems' candidates against the same references,
    from ONE run of the official jar: ``{system: MetricResult}``.

    SPICE scores each item independently (its F-score depends only on that item's candidate and
    references) and coco-caption's corpus score is the mean of the item F-scores, so scoring all
    systems' items in one JVM gives exactly the per-system results of separate runs while
    starting Java and CoreNLP once and parsing each reference once. Unavailable (with the
    reason) for every system when the SPICE folder is missing or the run fails. ``workers``:
    JVMs parsing item shards at the same time (:func:`run_spice`, which also says what
    ``progress`` receives).
    """
    if not systems:
        return {}
    prepared = {name: prepare(cands, references, tokenized=tokenized) for name, cands in systems.items()}
    n_items = sum(len(p[0]) for p in prepared.values())
    path, reason = spice_status(folder)
    if path is None:
        Phase(progress, "spice", n_items).finish(detail="unavailable (SPICE is not set up)")
        return {name: MetricResult.unavailable("spice", reason) for name in systems}
    names = list(systems)
    items = [{"image_id": f"{s}:{i}", "test": c, "refs": r}
             for s, name in enumerate(names) for i, (c, r) in enumerate(zip(*prepared[name]))]
    try:
        out = run_spice(items, path, cache=cache, memory=memory, workers=workers, progress=progress)
    except (SpiceSetupError, OSError, subprocess.SubprocessError) as exc:
        why = f"SPICE failed to run from {path}: {exc}"
        return {name: MetricResult.unavailable("spice", why) for name in systems}
    by_id = {str(o["image_id"]): o["scores"]["All"] for o in out}
    if len(by_id) != len(items):
        why = f"SPICE returned {len(by_id)} of {len(items)} items"
        return {name: MetricResult.unavailable("spice", why) for name in systems}
    return {name: _result(by_id, [f"{s}:{i}" for i in range(len(prepared[name][0]))])
            for s, name in enumerate(names)}


STANDARD_REFERENCES = {  # reference sets whose parses `setup-spice --warm` can cache, by CSV under <shared>/data
    "clotho-eval": "clotho/clotho_captions_evaluation.csv",
    "clotho-val": "clotho/clotho_captions_validation.csv",
    "audiocaps-val": "audiocaps/val.csv",
    "audiocaps-test": "audiocaps/test.csv",
}


def warm_spice_cache(names: list[str], shared: str | os.PathLike, *, folder: str | os.PathLike | None = None,
                     workers: int = 1, memory: str = "8G", progress: ProgressFn | None = None) -> dict[str, int]:
    """Parse every reference caption of the named standard sets once into SPICE's parse cache, so
    that later scoring against them parses only the candidates. Every reference is tokenized as the
    Evaluator tokenizes that whole reference file (one PTB batch), which is the cache key; the
    parses are the official jar's own (it runs on items whose candidate is the first reference).
    Returns the number of reference captions per set; raises :class:`SpiceSetupError` naming the
    set or file and the fix. ``progress`` gets a "warm <set>" phase per set, counted in clips
    (:func:`run_spice`)."""
    from audiocap.metrics.caption_csv import read_references

    unknown = [n for n in names if n not in STANDARD_REFERENCES]
    if unknown:
        raise SpiceSetupError(f"unknown reference set(s) {', '.join(unknown)}; choose from "
                              f"{', '.join(STANDARD_REFERENCES)}")
    path, reason = spice_status(folder)
    if path is None:
        raise SpiceSetupError(reason)
    counts = {}
    for name in names:
        csv_path = Path(shared) / "data" / STANDARD_REFERENCES[name]
        if not csv_path.is_file():
            raise SpiceSetupError(f"{csv_path}: reference CSV of {name} not found; pass --shared (or set "
                                  "AUDIOCAP_SHARED) to the folder holding data/clotho and data/audiocaps")
        _, refs, _ = read_references(csv_path)
        _, refs_tok = prepare(["x"] * len(refs), refs, tokenized=False)
        items = [{"image_id": str(i), "test": r[0], "refs": r} for i, r in enumerate(refs_tok)]
        run_spice(items, path, cache=True, memory=memory, workers=workers, progress=progress,
                  phase=f"warm {name}", unit="clips")
        counts[name] = sum(len(r) for r in refs_tok)
    return counts


def spice(candidates: list[str], references: list[list[str]], *,
          folder: str | os.PathLike | None = None, tokenized: bool = False, cache: bool = True,
          memory: str = "8G", workers: int = 1, progress: ProgressFn | None = None) -> MetricResult:
    """SPICE F-score (Anderson et al., 2016) from the official jar, per item and corpus.

    Inputs are PTB-tokenized and lower-cased as coco-caption does, then scored in one JVM run
    with SPICE's parse cache (``<folder>/cache``). The corpus score is the mean of the per-item
    F-scores, as in coco-caption; ``extra`` holds per-item ``precision`` and ``recall``. If the
    SPICE folder is missing or unusable the result is unavailable with the reason.
    """
    return spice_many({"_": candidates}, references, folder=folder, tokenized=tokenized,
                      cache=cache, memory=memory, workers=workers, progress=progress)["_"]


def spider(cider: MetricResult, spice_result: MetricResult) -> MetricResult:
    """SPIDEr = (CIDEr-D + SPICE) / 2 (Liu et al., "Improved Image Captioning via Policy Gradient
    Optimization of SPIDEr", ICCV 2017), per item and corpus; unavailable unless both exist."""
    for part in (cider, spice_result):
        if not part.available:
            return MetricResult.unavailable("spider", f"{part.name} unavailable: {part.reason}")
    return MetricResult("spider", (cider.score + spice_result.score) / 2,
                        (cider.per_item + spice_result.per_item) / 2)


def spider_fl(*_args, **_kwargs) -> MetricResult:
    """SPIDEr-FL (DCASE 2023) multiplies SPIDEr by a fluency-error penalty from a trained
    detector that cannot be obtained here; always reported unavailable, never estimated."""
    return MetricResult.unavailable(
        "spider_fl", "its fluency-error detector (FENSE's) is not available offline; "
        "SPIDEr-FL is never estimated (audiocap's own detector gives spider_audiocap_fluency)")
