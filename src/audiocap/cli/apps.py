"""The Typer apps that command modules attach to (kept apart to avoid import cycles)."""

from __future__ import annotations

import typer

# Docstrings are wrapped at 100 columns; in Markdown mode rich re-flows their paragraphs to the
# terminal's width (typer's default "rich" mode keeps every line break after the first
# paragraph, so an 80-column terminal showed ragged half-lines), and `code` and lists render.
HELP_MARKUP = "markdown"

app = typer.Typer(
    name="audiocap",
    help="Contrastive audio-language learning: search sounds with text, caption sounds, "
    "train captioners from text alone, and score them with the DCASE metrics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=HELP_MARKUP,
)


def _print_version(value: bool) -> None:
    if value:
        from audiocap import __version__

        typer.echo(f"audiocap {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the audiocap version and exit."),
) -> None:
    """Contrastive audio-language learning: search sounds with text, caption sounds, train
    captioners from text alone, and score them with the DCASE metrics."""
    from audiocap.cli.progress import audio_warnings_as_lines, quiet_model_loading

    quiet_model_loading()
    audio_warnings_as_lines()


def group(name: str, help: str) -> typer.Typer:
    """Create a command group ``audiocap NAME ...`` and attach it to the main app."""
    sub = typer.Typer(name=name, help=help, no_args_is_help=True, rich_markup_mode=HELP_MARKUP)
    app.add_typer(sub, name=name)
    return sub


eval_app = group("eval", "Score captions, retrieval models and captioners with the DCASE metrics.")
train_app = group("train", "Train models from YAML recipes.")

# One override syntax and one resume rule for every `train` command (issue 15).
SET_HELP = ("Override a recipe key, e.g. --set {example} or, in the spelling common to all trainers, "
            "--set run.epochs=5 (docs/recipes.md); repeatable.")
RESUME_HELP = ("--resume (default): continue an interrupted run from OUT/lightning/last.ckpt; a finished "
               "run is left as it is and says so. --force: train from scratch, replacing the run in OUT.")


def fail(message: str, code: int = 2) -> "typer.Exit":
    """Print ``error: message`` to stderr and return an Exit to raise (no traceback)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)
