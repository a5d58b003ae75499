"""Progress of long library work as events, and one view that draws them (issue 19).

A phase of an evaluation (caching the window features of a split, captioning it, tokenizing,
METEOR, SPICE parsing, sbert_sim, the fluency detector) reports :class:`Progress` events to a
callback: the phase, how many of how many units are done, the seconds since it started, the time
left at the rate so far (:attr:`Progress.eta`) and a free-text ``detail`` (what the SPICE JVMs are
doing, whether features came from the cache). A function that takes ``progress=`` accepts any
``Callable[[Progress], None]``; :class:`Phase` is the small helper that emits the events (first,
last, and at most one every :data:`EVERY` seconds in between). ``str(event)`` is a readable line.

:class:`ProgressView` is the callback the command line and training use: a rich bar per phase when
stderr is a terminal; otherwise whole lines (log files, CI): one when a phase ends, and for a
phase that runs longer than a second one after that second, on each change of its detail and at
least every ``AUDIOCAP_PROGRESS_SECONDS`` (default 10 s), even when the work reports nothing in
between (a JVM parsing), with the elapsed time and time left brought forward.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, TextIO

LINE_SECONDS = 10.0  # default interval of line-mode progress (env AUDIOCAP_PROGRESS_SECONDS)
EVERY = 0.25  # a Phase reports at most this often (seconds), besides its first and last events
FIRST_LINE = 1.0  # line mode: a phase prints its first line after this long (a faster one prints one line)


def line_seconds() -> float:
    """Seconds between progress lines when stderr is not a terminal: ``$AUDIOCAP_PROGRESS_SECONDS``
    or :data:`LINE_SECONDS`."""
    try:
        return max(0.0, float(os.environ.get("AUDIOCAP_PROGRESS_SECONDS", LINE_SECONDS)))
    except ValueError:
        return LINE_SECONDS


@dataclass(frozen=True)
class Progress:
    """One report of a phase: ``done`` of ``total`` ``unit`` after ``elapsed`` seconds.

    ``phase`` names the work ("captioning", "meteor", "spice", ...); ``system`` the prediction set
    when several are scored together (``Evaluator.evaluate_many``), else "". ``detail`` says more
    (SPICE's stage per JVM, "from cache").
    """

    phase: str
    done: int
    total: int
    unit: str = "items"
    elapsed: float = 0.0
    detail: str = ""
    system: str = ""
    first_at: float = 0.0  # elapsed seconds when units were first counted, and how many then
    first_done: int = 0

    @property
    def label(self) -> str:
        return f"{self.phase} [{self.system}]" if self.system else self.phase

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    @property
    def eta(self) -> float | None:
        """Seconds left at the mean rate since units were first counted (so a slow start, such as a
        JVM loading its tables, does not count as work per unit); None before the first unit."""
        if self.finished:
            return 0.0
        if self.done <= 0 or self.elapsed <= 0:
            return None
        if self.done > self.first_done > 0 and self.elapsed > self.first_at:
            return (self.elapsed - self.first_at) / (self.done - self.first_done) * (self.total - self.done)
        return self.elapsed / self.done * (self.total - self.done)

    def line(self, *, later: float = 0.0) -> str:
        """``label: done/total unit (pct%), elapsed, time left[ - detail]``; ``later``: seconds
        since this event was made, to bring the elapsed time and the time left forward."""
        later = max(0.0, later)
        elapsed, eta = self.elapsed + later, self.eta
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        text = f"{self.label}: {self.done:,}/{self.total:,} {self.unit}{pct}"
        if self.finished:
            text += f", done in {seconds(elapsed)}"
        else:
            text += f", {seconds(elapsed)}"
            text += f", ~{seconds(max(0.0, eta - later))} left" if eta is not None else ", time left unknown"
        return text + (f" - {self.detail}" if self.detail else "")

    def __str__(self) -> str:
        return self.line()


ProgressFn = Callable[[Progress], None]


def seconds(s: float) -> str:
    """``4.2 s`` below two minutes, else ``3 min 5 s`` (``1 h 2 min`` from an hour)."""
    if s < 120:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


class Phase:
    """Emit :class:`Progress` events of one phase to ``report`` (None: do nothing).

    The first event (0 done) is sent on creation; :meth:`update` / :meth:`advance` send one when
    ``every`` seconds passed since the last, the detail changed, or the phase is complete;
    :meth:`finish` sends the last (``done = total``). Usable as a context manager that finishes on
    success.
    """

    def __init__(self, report: ProgressFn | None, phase: str, total: int, *, unit: str = "items",
                 system: str = "", detail: str = "", every: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.report, self.clock, self.every = report, clock, EVERY if every is None else every
        self.event = Progress(phase, 0, max(0, int(total)), unit, 0.0, detail, system)
        self.start = self.last = clock()
        self.sent_finished = False
        self._send(self.start)

    def _send(self, now: float) -> None:
        if self.report is not None:
            self.last, self.sent_finished = now, self.event.finished
            self.report(self.event)

    @property
    def done(self) -> int:
        return self.event.done

    def update(self, done: int | None = None, *, detail: str | None = None) -> None:
        """Set the count (never lowered, clipped to the total) and/or the detail; report when due."""
        if self.report is None:
            return
        ev = self.event
        new = ev if done is None else replace(ev, done=max(ev.done, min(int(done), ev.total)))
        if detail is not None:
            new = replace(new, detail=detail)
        if new == ev:
            return
        now = self.clock()
        due = new.detail != ev.detail or new.finished or now - self.last >= self.every
        self.event = replace(new, elapsed=now - self.start)
        if ev.done == 0 < new.done:
            self.event = replace(self.event, first_at=now - self.start, first_done=new.done)
        if due:
            self._send(now)

    def advance(self, n: int = 1, *, detail: str | None = None) -> None:
        """Count ``n`` more units done."""
        self.update(self.event.done + n, detail=detail)

    def finish(self, detail: str | None = None) -> None:
        """Report the phase complete (``done = total``), unless that was the last report already."""
        if self.report is None or (self.sent_finished and detail in (None, self.event.detail)):
            return
        now = self.clock()
        self.event = replace(self.event, done=self.event.total, elapsed=now - self.start,
                             detail=self.event.detail if detail is None else detail)
        self._send(now)

    def __enter__(self) -> "Phase":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()


class ProgressView:
    """A :data:`ProgressFn` that draws events on stderr (module docstring): a rich progress bar per
    phase in a terminal, whole lines otherwise (``lines=True`` forces them). ``prefix`` starts every
    line (training says which epoch). Use as a context manager; it stops its timer thread and bars
    on exit."""

    def __init__(self, *, lines: bool | None = None, interval: float | None = None, prefix: str = "",
                 file: TextIO | None = None) -> None:
        self.file = file
        self.lines = (not _isatty(self.stream)) if lines is None else lines
        self.interval = line_seconds() if interval is None else interval
        self.prefix = prefix
        self.current: tuple[Progress, float] | None = None  # the running phase's last event and when it came
        self.phase_start = self.last_print = 0.0
        self.printed = False  # whether the running phase has printed a line
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.ticker: threading.Thread | None = None
        self.bars = None
        self.tasks: dict[str, int] = {}

    @property
    def stream(self) -> TextIO:
        return self.file if self.file is not None else sys.stderr

    def __enter__(self) -> "ProgressView":
        if self.lines:
            self.ticker = threading.Thread(target=self._tick, name="audiocap-progress", daemon=True)
            self.ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.stop.set()
        if self.ticker is not None:
            self.ticker.join(timeout=2)
            self.ticker = None
        if self.bars is not None:
            self.bars.stop()
            self.bars = None

    def __call__(self, event: Progress) -> None:
        if self.lines:
            self._line_event(event)
        else:
            self._bar_event(event)

    # line mode ------------------------------------------------------------------------------
    def _line_event(self, event: Progress) -> None:
        now = time.monotonic()
        with self.lock:
            prev = self.current[0] if self.current else None
            if prev is None or prev.label != event.label:  # a new phase: its first line waits FIRST_LINE s
                self.phase_start, self.printed, prev = now, False, None
            self.current = None if event.finished else (event, now)
            if event.finished or (self.printed and (event.detail != prev.detail
                                                    or now - self.last_print >= self.interval)):
                self._write(event.line())

    def _tick(self) -> None:
        """Print the running phase once it has run FIRST_LINE seconds, then again whenever nothing
        was printed for ``interval`` seconds (the work may report nothing for minutes)."""
        while not self.stop.wait(min(0.5, max(self.interval / 4, 0.05))):
            with self.lock:
                if self.current is None:
                    continue
                now = time.monotonic()
                due = now - self.last_print >= self.interval if self.printed else \
                    now - self.phase_start >= min(FIRST_LINE, self.interval)
                if due:
                    event, at = self.current
                    self._write(event.line(later=now - at))

    def _write(self, text: str) -> None:
        self.last_print, self.printed = time.monotonic(), True
        text = self.prefix + text
        tqdm = sys.modules.get("tqdm")
        if tqdm is not None and self.file is None and getattr(tqdm.tqdm, "__name__", "") == "tqdm" \
                and getattr(tqdm.tqdm, "_instances", None):
            tqdm.tqdm.write(text, file=self.stream)  # above a live tqdm bar (Lightning's), not through it
            return
        self.stream.write(text + "\n")
        self.stream.flush()

    # terminal mode ----------------------------------------------------------------------------
    def _bar_event(self, event: Progress) -> None:
        if self.bars is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bars

            self.bars = Bars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), _eta_column(),
                             TextColumn("{task.fields[detail]}"), console=Console(file=self.stream))
            self.bars.start()
        from rich.markup import escape

        fields = {"unit": event.unit, "detail": escape(event.detail), "eta": event.eta,
                  "at": time.monotonic()}
        task = self.tasks.get(event.label)
        if task is None:
            task = self.tasks[event.label] = self.bars.add_task(escape(self.prefix + event.label),
                                                                total=event.total or None, **fields)
        self.bars.update(task, completed=event.done, **fields)
        if event.finished:
            self.bars.update(task, total=max(event.total, 1), completed=max(event.total, 1))


def _eta_column():
    """A rich column with the event's own time left, counted down between events."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class EtaColumn(ProgressColumn):
        def render(self, task):  # type: ignore[no-untyped-def]
            eta = task.fields.get("eta")
            if task.finished:
                return Text("done", style="green")
            if eta is None:
                return Text("time left ?", style="dim")
            left = max(0.0, eta - (time.monotonic() - task.fields.get("at", 0.0)))
            return Text(f"~{seconds(left)} left", style="cyan")

    return EtaColumn()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


__all__ = ["LINE_SECONDS", "Phase", "Progress", "ProgressFn", "ProgressView", "line_seconds", "seconds"]
