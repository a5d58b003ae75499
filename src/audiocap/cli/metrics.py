"""``audiocap metrics ...``: set up the Java-based metrics (official SPICE)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from audiocap.cli.apps import fail, group

metrics_app = group("metrics", "Set up and check the Java-based caption metrics (SPICE).")


@metrics_app.command("setup-spice")
def setup_spice_cmd(
    folder: Optional[Path] = typer.Option(None, "--dir", envvar="AUDIOCAP_SPICE_DIR",
                                          help="Where to build the SPICE folder (default: ~/.cache/audiocap/spice)."),
    mvn_settings: Optional[Path] = typer.Option(None, "--mvn-settings",
                                                help="Maven settings.xml to use (mirrors, proxies)."),
    warm: Optional[str] = typer.Option(None, "--warm", help="Comma-separated reference sets whose captions to "
                                       "parse into SPICE's cache now: clotho-eval, clotho-val, audiocaps-val, "
                                       "audiocaps-test (read from <shared>/data)."),
    shared: Path = typer.Option(Path("../shared"), "--shared", envvar="AUDIOCAP_SHARED",
                                help="Folder holding data/clotho and data/audiocaps (for --warm)."),
    workers: int = typer.Option(1, "--workers", help="SPICE JVMs parsing at the same time (for --warm)."),
) -> None:
    """Assemble the official SPICE 1.0 so that `audiocap eval` reports SPICE and SPIDEr.

    Copies spice-1.0.jar and lib/ from the pycocoevalcap wheel and fetches Stanford CoreNLP 3.6.0
    (+ models) and, on Java >= 15, Nashorn 15.4 + ASM from Maven Central with `mvn
    dependency:copy`, checking each jar against Maven's SHA-1. Cached and idempotent. Extra mvn
    arguments can be given in $AUDIOCAP_MVN_ARGS. --warm clotho-eval,... then parses those reference
    sets once into SPICE's parse cache (the official jar's parses), so scoring against them later
    parses only the candidates.
    """
    import os
    import shlex

    from audiocap.metrics.spice import STANDARD_REFERENCES, spice_status, warm_spice_cache
    from audiocap.metrics.spice_setup import ENV_MVN_ARGS, SpiceSetupError, default_spice_dir, setup_spice
    from audiocap.progress import ProgressView

    sets = [s.strip() for s in warm.split(",") if s.strip()] if warm else []
    unknown = [s for s in sets if s not in STANDARD_REFERENCES]
    if unknown:
        raise fail(f"--warm: unknown reference set(s) {', '.join(unknown)}; choose from {', '.join(STANDARD_REFERENCES)}")
    if workers < 1:
        raise fail(f"--workers must be at least 1, got {workers}")

    target = folder or default_spice_dir()
    extra = shlex.split(os.environ.get(ENV_MVN_ARGS, ""))
    if mvn_settings is not None:
        extra += ["-s", str(mvn_settings)]
    try:
        path = setup_spice(target, mvn_args=extra, progress=lambda msg: typer.echo(f"  {msg}"))
    except SpiceSetupError as exc:
        raise fail(f"SPICE setup failed: {exc}", code=1) from None
    ok, reason = spice_status(path)
    if ok is None:
        raise fail(f"SPICE folder {path} is still unusable: {reason}", code=1)
    typer.echo(f"SPICE ready in {path}")
    for name in sets:
        typer.echo(f"  parsing the references of {name} into {path / 'cache'} ...")
        try:
            with ProgressView() as view:  # clips of finished shards and what each JVM is doing
                n = warm_spice_cache([name], shared, folder=path, workers=workers, progress=view)[name]
        except SpiceSetupError as exc:
            raise fail(str(exc)) from None
        typer.echo(f"  {name}: {n} reference captions cached")


@metrics_app.command("status")
def status(
    folder: Optional[Path] = typer.Option(None, "--dir", envvar="AUDIOCAP_SPICE_DIR",
                                          help="SPICE folder to check (default: ~/.cache/audiocap/spice)."),
) -> None:
    """Say whether METEOR (java + pycocoevalcap) and SPICE can run here, and why not."""
    from audiocap.javatools import JavaToolError, java_executable, pycocoevalcap_dir
    from audiocap.metrics.spice import spice_status

    try:
        java_executable()
        jar = pycocoevalcap_dir() / "meteor" / "meteor-1.5.jar"
        typer.echo(f"meteor: ready ({jar})")
    except JavaToolError as exc:
        typer.echo(f"meteor: unavailable: {exc}")
    path, reason = spice_status(folder)
    typer.echo(f"spice:  ready ({path})" if path else f"spice:  unavailable: {reason}")
