"""``audiocap train clap``: train CLAP / CLAP-TAG from a YAML recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from audiocap.cli.apps import RESUME_HELP, SET_HELP, fail, train_app

POSITIONAL_HELP = "The same overrides without --set (key=value ...), as older commands wrote them."


@train_app.command("clap")
def train_clap_cmd(
    config: Path = typer.Option(..., "--config", "-c", help="YAML recipe, e.g. configs/clap/foley.yaml."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP.format(example="trainer.max_epochs=5")),
    resume: Optional[bool] = typer.Option(None, "--resume/--force", help=RESUME_HELP + " Default: the "
                                          "recipe's resume key (true)."),
    overrides: list[str] = typer.Argument(None, help=POSITIONAL_HELP),
) -> None:
    """Train a CLAP model (audio tower + text tower + projection heads, symmetric InfoNCE; with
    tag.enabled=true the CLAP-TAG regularizer) and write a checkpoint folder at `out`.

    Frozen towers are cached on disk on the first run; an interrupted run resumes from
    OUT/lightning/last.ckpt (--force starts over). trainer.strategy=ddp with
    trainer.devices=N trains on N processes.
    """
    from audiocap.config import RecipeError, load_recipe
    from audiocap.train.clap import ClapRecipe, train_clap

    sets = [*(overrides or []), *set_, *([] if resume is None else [f"resume={str(resume).lower()}"])]
    try:
        recipe = load_recipe(ClapRecipe, config, sets)
    except RecipeError as exc:
        raise fail(str(exc)) from None
    try:
        out = train_clap(recipe)
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"checkpoint: {out}")


@train_app.command("tagger")
def train_tagger_cmd(
    config: Path = typer.Option(..., "--config", "-c", help="A CLAP-TAG recipe (tag.tagger names the output folder)."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP.format(example="tag.min_count=3")),
    overrides: list[str] = typer.Argument(None, help=POSITIONAL_HELP),
) -> None:
    """Fit the frozen tagger of CLAP-TAG: a linear tagging head on the pretrained audio tower's
    pooled features, trained on the train split's tags, saved as a 'tagger' checkpoint folder.
    (`audiocap train clap` does this itself when the folder does not exist yet.)"""
    from audiocap.config import RecipeError, load_recipe
    from audiocap.models.clap import build_clap
    from audiocap.train.clap import ClapRecipe, prepare_tagger
    from audiocap.train.clap_data import ClapDataModule

    try:
        recipe = load_recipe(ClapRecipe, config, [*(overrides or []), *set_])
        model = build_clap(recipe.model)
        dm = ClapDataModule(recipe.data, model, batch_size=recipe.trainer.batch_size, seed=recipe.trainer.seed)
        prepare_tagger(recipe, model, dm)
    except (RecipeError, FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"tagger: {recipe.tag.tagger or Path(recipe.out) / 'tagger'}")
