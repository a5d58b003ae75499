"""The ``audiocap`` command line: one Typer app, one module per command group.

Each module under ``audiocap.cli`` defines its commands on the shared apps of
:mod:`audiocap.cli.apps`; importing it here registers them. Heavy imports (torch models,
faiss, Java bridges) happen inside the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

from audiocap.cli import audio as _audio  # noqa: F401  (registers commands)
from audiocap.cli import captioner as _captioner  # noqa: F401  (registers commands)
from audiocap.cli import classify as _classify  # noqa: F401
from audiocap.cli import data as _data  # noqa: F401
from audiocap.cli import demo as _demo  # noqa: F401
from audiocap.cli import foley as _foley  # noqa: F401  (registers `data build-foley`)
from audiocap.cli import serve as _serve  # noqa: F401
from audiocap.cli import wsac as _wsac  # noqa: F401
from audiocap.cli import search as _search  # noqa: F401
from audiocap.cli import eval as _eval  # noqa: F401
from audiocap.cli import metrics as _metrics  # noqa: F401
from audiocap.cli import train_clap as _train_clap  # noqa: F401
from audiocap.cli import eval_clap as _eval_clap  # noqa: F401
from audiocap.cli import export as _export  # noqa: F401
from audiocap.cli.apps import app


def main() -> None:
    """Console-script entry point: quiet model loading and log-friendly progress, then the app."""
    from audiocap.cli.progress import configure_output

    configure_output()
    app()


__all__ = ["app", "main"]
