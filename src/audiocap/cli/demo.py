"""``audiocap demo``: the main job on the built-in default data (what ``make demo`` runs).

The demo is a list of steps run in order; each step is a function ``step(ctx)`` that prints what
it does and may add entries to the shared context dict (paths it produced). Later features add
their steps to :data:`STEPS` (build the real-sound dataset, train, caption, search).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import typer

from audiocap.cli.apps import app, fail

Context = dict[str, Any]


def import_clotho_captions(ctx: Context) -> None:
    """Import the shared Clotho v2.1 caption CSVs captions-only (no audio is shipped)."""
    from audiocap.data.clotho import import_clotho
    from audiocap.data.importing import relativize
    from audiocap.data.manifest import write_manifest

    out = ctx["out"] / "clotho.jsonl"
    clips, report = import_clotho(ctx["shared"] / "data" / "clotho", keep_missing=True, progress=True)
    write_manifest(out, relativize(clips, out))
    typer.echo(f"{report.source}: {report.clips} clips, {report.captions} captions -> {out}")
    ctx["clotho"] = out


def show_clotho_info(ctx: Context) -> None:
    """Print the statistics of the Clotho manifest (as `audiocap data info` does)."""
    from audiocap.data.manifest import read_manifest
    from audiocap.data.stats import format_stats, manifest_stats

    typer.echo(format_stats(manifest_stats(read_manifest(ctx["clotho"]))))


def print_serve_command(ctx: Context) -> None:
    """Say how to search, listen to and caption sounds in a browser with this run's models.

    Uses the folders earlier steps put in ``ctx["clap"]`` (CLAP checkpoint), ``ctx["index"]``
    (search index) and, if present, ``ctx["captioner"]``; keep this step last.
    """
    from audiocap.cli.serve import serve_command

    model, index = ctx.get("clap"), ctx.get("index")
    if model is None or index is None:
        typer.echo("no CLAP model and index were built in this run, so there is nothing to serve yet")
        return
    typer.echo("search, listen and caption in your browser (http://127.0.0.1:8000/):")
    typer.echo("  " + serve_command(model, index, ctx.get("captioner")))


STEPS: list[Callable[[Context], None]] = [import_clotho_captions, show_clotho_info,
                                          print_serve_command]  # serving stays last


def default_shared() -> Path:
    """AUDIOCAP_SHARED if set, else ../shared relative to the working directory."""
    return Path(os.environ.get("AUDIOCAP_SHARED", "../shared"))


@app.command("demo")
def demo(
    shared: Path = typer.Option(None, "--shared", help="The read-only shared/ folder with data/ "
                                "(default: $AUDIOCAP_SHARED or ../shared)."),
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Folder for everything the demo writes."),
) -> None:
    """Run the quick-start job on the built-in data: import the Clotho captions and summarise them."""
    shared = shared or default_shared()
    if not (shared / "data" / "clotho").is_dir():
        raise fail(f"{shared}: no data/clotho folder; pass --shared PATH or set AUDIOCAP_SHARED")
    ctx: Context = {"shared": shared, "out": out}
    out.mkdir(parents=True, exist_ok=True)
    for i, step in enumerate(STEPS, start=1):
        typer.secho(f"[{i}/{len(STEPS)}] {(step.__doc__ or step.__name__).splitlines()[0]}", bold=True)
        step(ctx)
