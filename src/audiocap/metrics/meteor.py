"""METEOR 1.5 through the official jar, kept in one long-lived Java process.

The jar ships inside the pycocoevalcap wheel (``pycocoevalcap/meteor/meteor-1.5.jar`` with its
English paraphrase table). It is driven with coco-caption's ``-stdio`` protocol: one
``SCORE ||| ref ||| ... ||| hyp`` line per item returns sufficient statistics, and one
``EVAL ||| stats ||| ...`` line returns the per-item scores followed by the corpus score.
"""

from __future__ import annotations

import atexit
import subprocess
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from audiocap.javatools import JavaToolError, java_executable, pycocoevalcap_dir
from audiocap.metrics.base import MetricResult, prepare
from audiocap.progress import Phase, ProgressFn


class MeteorProcess:
    """One ``java -jar meteor-1.5.jar - - -stdio -l en -norm`` process (thread-safe)."""

    def __init__(self, jar: Path | None = None, *, memory: str = "2G"):
        jar = Path(jar) if jar else pycocoevalcap_dir() / "meteor" / "meteor-1.5.jar"
        if not jar.is_file():
            raise JavaToolError(f"{jar}: METEOR jar not found; reinstall pycocoevalcap==1.2")
        cmd = [java_executable(), "-jar", f"-Xmx{memory}", jar.name, "-", "-", "-stdio",
               "-l", "en", "-norm"]
        self.proc = subprocess.Popen(cmd, cwd=jar.parent, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.lock = threading.Lock()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _readline(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            raise JavaToolError("the METEOR process exited unexpectedly (out of memory?)")
        return line.decode().strip()

    def score(self, candidates: list[str], references: list[list[str]], *,
              progress: Callable[[int], None] | None = None):
        """Per-item scores (N,) and the corpus score for already tokenized inputs; ``progress(k)``
        is called with the number of items whose statistics came back, as they come back."""
        lines = []
        for cand, refs in zip(candidates, references):
            hyp = cand.replace("|||", "").replace("  ", " ")
            lines.append(" ||| ".join(("SCORE", " ||| ".join(refs), hyp)) + "\n")
        with self.lock:
            # write from a thread so that a full stdout pipe can never deadlock us
            writer = threading.Thread(target=self._write, args=("".join(lines),))
            writer.start()
            stats = []
            for _ in lines:
                stats.append(self._readline())
                if progress is not None:
                    progress(len(stats))
            writer.join()
            self._write("EVAL ||| " + " ||| ".join(stats) + "\n")
            per_item = np.array([float(self._readline()) for _ in lines])
            corpus = float(self._readline())
        return per_item, corpus

    def _write(self, text: str) -> None:
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.alive():
            self.proc.stdin.close()
            self.proc.kill()
            self.proc.wait()


_PROCESS: MeteorProcess | None = None
_PROCESS_LOCK = threading.Lock()


def _shared_process() -> MeteorProcess:
    global _PROCESS
    with _PROCESS_LOCK:
        if _PROCESS is None or not _PROCESS.alive():
            _PROCESS = MeteorProcess()
        return _PROCESS


@atexit.register
def _close_shared() -> None:
    if _PROCESS is not None:
        _PROCESS.close()


def meteor(candidates: list[str], references: list[list[str]], *,
           tokenized: bool = False, progress: ProgressFn | None = None, system: str = "") -> MetricResult:
    """METEOR 1.5 (Denkowski & Lavie, 2014) with coco-caption's settings (``-l en -norm``).

    Runs the official jar from the pycocoevalcap wheel in one long-lived Java process shared by
    all calls. Inputs are PTB-tokenized first, as coco-caption does. Returns per-item and corpus
    scores; when Java or the jar is missing the result is unavailable with the reason.
    ``progress`` gets a "meteor" :class:`~audiocap.progress.Progress` per item scored (throttled).
    """
    cands, refs = prepare(candidates, references, tokenized=tokenized)
    cold = _PROCESS is None or not _PROCESS.alive()  # the first items wait for the JVM and its tables
    phase = Phase(progress, "meteor", len(cands), system=system, detail="starting Java" if cold else "")
    try:
        per_item, corpus = _shared_process().score(cands, refs, progress=lambda k: phase.update(k, detail=""))
    except (JavaToolError, OSError) as exc:
        phase.finish(detail="unavailable")
        return MetricResult.unavailable("meteor", str(exc))
    phase.finish()
    return MetricResult("meteor", corpus, per_item)
