"""``audiocap train wsac``: text-only captioning (WSAC) from caption files alone."""

from __future__ import annotations

from pathlib import Path

import typer

from audiocap.cli.apps import RESUME_HELP, SET_HELP, fail, train_app


@train_app.command("wsac")
def train_wsac_cmd(
    recipe: Path = typer.Argument(None, help="YAML recipe (e.g. configs/wsac/clotho.yaml); defaults apply without."),
    captions: str = typer.Option(None, "--captions", help="Training captions: a Clotho or AudioCaps caption "
                                 "CSV, or a JSONL manifest (only its captions are used)."),
    split: str = typer.Option(None, "--split", help="Manifest split to train on (e.g. train)."),
    val_captions: str = typer.Option(None, "--val-captions", help="Captions for a validation loss (optional)."),
    space: str = typer.Option(None, "--space", help="Joint space: 'minilm' (text only) or 'clap:CHECKPOINT'."),
    gap: str = typer.Option(None, "--gap", help="Gap bridging: none, noise, shift or noise+shift."),
    noise_std: float = typer.Option(None, "--noise-std", help="σ of the noise; default: estimated from "
                                    "same-clip caption pairs (mean L-inf of differences)."),
    paired: str = typer.Option(None, "--paired-manifest", help="Manifest with audio+captions to estimate Δgap."),
    epochs: int = typer.Option(None, "--epochs", help="Training epochs."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint folder to write (kind 'wsac')."),
    overrides: list[str] = typer.Option(None, "--set", help=SET_HELP.format(example="optim.lr=0.001")),
    resume: bool = typer.Option(True, "--resume/--force", help=RESUME_HELP),
) -> None:
    """Train a WSAC caption decoder on captions only (Kouzelis & Katsouros, DCASE 2023).

    Captions are embedded by the frozen text side of the joint space (cached under
    data.cache_dir), bridged towards audio (noise and/or Δgap shift) and decoded by a prefix
    Transformer trained with cross-entropy. The checkpoint also stores the caption memory for
    nearest-neighbour and projection decoding: caption audio with
    ``audiocap caption FILE --model OUT --strategy direct|nnd|projection``.
    """
    from audiocap.config import RecipeError, load_recipe
    from audiocap.data.caption_files import CaptionFileError
    from audiocap.train.wsac import WSACRecipe

    sets = list(overrides or [])
    for key, value in (("data.captions", captions), ("data.split", split), ("data.val_captions", val_captions),
                       ("data.space", space), ("gap.mode", gap), ("gap.noise_std", noise_std),
                       ("gap.paired_manifest", paired), ("optim.epochs", epochs)):
        if value is not None:
            sets.append(f"{key}={value}")
    try:
        rec = load_recipe(WSACRecipe, recipe, sets)
    except RecipeError as exc:
        raise fail(str(exc)) from None
    if not rec.data.captions:
        raise fail("no training captions: pass --captions FILE (Clotho/AudioCaps CSV or manifest)")
    if not Path(rec.data.captions).is_file():
        raise fail(f"{rec.data.captions}: caption file not found")
    from audiocap.train.wsac import train_wsac

    try:
        folder = train_wsac(rec, out, resume=resume)
    except (CaptionFileError, ValueError, OSError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"wrote {folder}")
