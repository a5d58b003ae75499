"""Terminal output of the command line: quiet model loading, log-friendly progress, timed steps.

- Model loading is quiet: the Hugging Face libraries draw a "Loading weights" bar for every
  checkpoint they read (the text tower is loaded on every ``search`` call); those bars are off.
- When stderr is not a terminal (a log file, CI, ``nohup``), tqdm's carriage-return bars would
  become one line of thousands of characters; :func:`configure_output` makes every tqdm bar
  print whole lines instead, at most every ``AUDIOCAP_PROGRESS_SECONDS`` (default 10 s), plus
  the first and the last state. Evaluation phases report through :mod:`audiocap.progress`,
  whose view prints the same kind of lines (and at least that often while a phase runs).
- :func:`step` prints a line when a long step starts and how long it took when it ends.
- An audio file that decodes but not as its header said (truncated, a lying length, decoder
  complaints) is one ``warning: <file>: <what>`` line, once per command
  (:func:`audio_warnings_as_lines`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections.abc import Iterator

from audiocap.progress import line_seconds

_LINE_MODE = {"on": False}


def quiet_model_loading() -> None:
    """Turn off the Hugging Face progress bars ("Loading weights", downloads) for this process."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:  # already imported: the env var was read; switch it off
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
        except Exception:  # an unusual transformers build: keep its default output
            pass
    if "huggingface_hub" in sys.modules:
        try:
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()
        except Exception:
            pass


def audio_warnings_as_lines() -> None:
    """Print each distinct :class:`audiocap.audio.io.AudioWarning` once as ``warning: <message>``
    on stderr (Python's format adds the source line of the call); other warnings are unchanged."""
    if getattr(warnings.showwarning, "audiocap_lines", False):
        return
    original, seen = warnings.showwarning, set()

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        audio_io = sys.modules.get("audiocap.audio.io")
        if audio_io is None or not issubclass(category, audio_io.AudioWarning):
            return original(message, category, filename, lineno, file, line)
        if str(message) not in seen:  # a file decoded twice (check, then use) warns once
            seen.add(str(message))
            import typer

            typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)

    show.audiocap_lines = True  # type: ignore[attr-defined]
    warnings.showwarning = show


def line_tqdm_class():
    """A tqdm subclass that writes whole lines (for log files) instead of redrawing one line."""
    from tqdm.std import tqdm as std_tqdm

    class LineTqdm(std_tqdm):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("mininterval", line_seconds())
            kwargs.setdefault("ascii", True)
            super().__init__(*args, **kwargs)

        def display(self, msg=None, pos=None):
            if msg == "" or getattr(self, "disable", False):  # a bar cleared with leave=False
                return True
            text = (msg if msg is not None else self.__str__()).strip()
            if text:
                self.fp.write(text + "\n")
                self.fp.flush()
            return True

        def close(self):
            # tqdm's close() marks the bar disabled before its last display() and then writes a
            # bare newline: in line mode that lost the final state (a fast loop logged only
            # "0 rows") and left an empty line. Print the final state as one line instead.
            if getattr(self, "disable", True):
                return super().close()
            leave = abs(getattr(self, "pos", 0)) == 0 if self.leave is None else self.leave
            shown = hasattr(self, "last_print_t") and self.last_print_t >= self.start_t + self.delay
            final = self.__str__().strip() if (leave and shown) else ""
            fp, self.fp = self.fp, _Discard()
            try:
                super().close()
            finally:
                self.fp = fp
            if final:
                fp.write(final + "\n")
                fp.flush()

    LineTqdm.__name__ = LineTqdm.__qualname__ = "LineTqdm"
    return LineTqdm


class _Discard:
    """A file that drops what tqdm writes while a line-mode bar closes."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def use_line_progress() -> None:
    """Make ``tqdm.tqdm`` (and ``tqdm.auto.tqdm``) write lines; used when stderr is not a TTY."""
    import tqdm
    import tqdm.auto
    import tqdm.std

    cls = line_tqdm_class()
    tqdm.tqdm = tqdm.std.tqdm = tqdm.auto.tqdm = cls
    _LINE_MODE["on"] = True


def configure_output() -> None:
    """What the ``audiocap`` console command sets up before running a command (module docstring)."""
    quiet_model_loading()
    if not _stderr_is_tty():
        use_line_progress()


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def step(message: str) -> Iterator[None]:
    """Print ``message...`` to stderr, run the block, then ``message: done in X s``."""
    import typer

    start = time.perf_counter()
    typer.echo(f"{message}...", err=True)
    yield
    typer.echo(f"{message}: done in {_seconds(time.perf_counter() - start)}", err=True)


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{int(s // 60)} min {int(s % 60)} s"
