"""``audiocap demo``: the main job on the built-in default data (what ``make demo`` runs).

The demo is a list of steps run in order; each step is a function ``step(ctx)`` that prints what
it does and may add entries to the shared context dict (paths it produced). Later features add
their steps to :data:`STEPS` (build the real-sound dataset, train, caption, search).
"""

from __future__ import annotations

import os
from importlib import resources
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


def build_foley_data(ctx: Context) -> None:
    """Build the real-sound foley dataset (default preset; cached: reruns reuse it)."""
    from audiocap.data.foley import build_foley
    from audiocap.data.manifest import read_manifest
    from audiocap.data.stats import format_stats, manifest_stats

    manifest = build_foley(ctx["data"] / "foley-default", preset="default")
    typer.echo(format_stats(manifest_stats(read_manifest(manifest))))
    ctx["foley"] = manifest


def _recipe_run(config: str, out: Path, overrides: list[str], load, train, ckpt: Path | None = None) -> Path:
    """Train ``config`` into ``out`` unless the finished checkpoint ``ckpt`` (default ``out``) exists."""
    from audiocap.config import load_recipe

    ckpt = ckpt or out
    if (ckpt / "recipe.yaml").exists():
        typer.echo(f"reusing {ckpt}")
        return ckpt
    recipe = load_recipe(load, REPO_CONFIGS / config, overrides)
    return Path(train(recipe))


def train_clap_model(ctx: Context) -> None:
    """Train CLAP on the foley training split (frozen aisfx + MiniLM towers, cached features)."""
    from audiocap.train.clap import ClapRecipe, train_clap

    out = ctx["out"] / "clap"
    ctx["clap"] = _recipe_run("clap/foley.yaml", out, [f"out={out}", f"data.manifest={ctx['foley']}"],
                              ClapRecipe, train_clap)


def build_search_index(ctx: Context) -> None:
    """Index the foley test-split clips with the CLAP model and run a text query."""
    from audiocap.data.manifest import read_manifest, write_manifest
    from audiocap.data.importing import relativize
    from audiocap.search import build_index, search

    test_manifest = ctx["out"] / "foley-test.jsonl"
    clips = [c for c in read_manifest(ctx["foley"]) if c.split == "test"]
    for c in clips:  # make audio paths absolute before re-basing them on the new manifest
        c.audio = str((Path(ctx["foley"]).resolve().parent / c.audio).resolve())
    write_manifest(test_manifest, relativize(clips, test_manifest))
    index = ctx["out"] / "index"
    if not (index / "index.json").exists():
        build_index(test_manifest, ctx["clap"], index)
    ctx["index"] = index
    query = "a dog barks while rain falls"
    typer.echo(f"search: {query!r}")
    for hit in search(index, text=query, k=5):
        typer.echo(f"  {hit['score']:.3f}  {hit['id']}  {(hit.get('captions') or [''])[0]}")


def train_captioner_model(ctx: Context) -> None:
    """Train the captioner (CE) on foley and caption three test clips with beam search."""
    from audiocap.captioning import caption_files
    from audiocap.train.captioner import CaptionerRecipe, train_captioner

    out = ctx["out"] / "captioner"
    ctx["captioner"] = _recipe_run("captioner/demo.yaml", out,
                                   [f"train.out={out}", f"data.manifest={ctx['foley']}"],
                                   CaptionerRecipe, train_captioner, ckpt=out / "checkpoint")
    from audiocap.data.manifest import audio_path, read_manifest

    clips = [c for c in read_manifest(ctx["foley"]) if c.split == "test"][:3]
    for clip, cap in zip(clips, caption_files([audio_path(ctx["foley"], c) for c in clips], [ctx["captioner"]])):
        typer.echo(f"  {clip.id}: {cap.text}\n    reference: {clip.captions[0]}")


DEMO_QUERIES = ["a dog barks", "rain", "door", "a bell rings"]


def use_shipped_models(ctx: Context) -> None:
    """Use the CLAP model and captioner shipped with audiocap (no training)."""
    from audiocap.pretrained import default_model, has_default

    ctx["clap"] = default_model("clap")
    typer.echo(f"CLAP: {ctx['clap']}")
    if has_default("captioner"):
        ctx["captioner"] = default_model("captioner")
        typer.echo(f"captioner: {ctx['captioner']}")


def _index_is_current(index: Path, clap: Path) -> bool:
    """Whether ``index`` was built by the very weights of ``clap`` (path and sha256)."""
    import json

    from audiocap.index import META_FILE
    from audiocap.search import model_fingerprint

    try:
        built = json.loads((index / META_FILE).read_text(encoding="utf-8")).get("model") or {}
    except (OSError, ValueError):
        return False
    now = model_fingerprint(clap)
    return built.get("path") == now["path"] and built.get("sha256") == now["sha256"]


def index_demo_sounds(ctx: Context) -> None:
    """Index the foley test clips with the shipped CLAP model and search them with text."""
    from audiocap.cli.search import format_hits
    from audiocap.data.importing import relativize
    from audiocap.data.manifest import read_manifest, write_manifest
    from audiocap.search import build_index, search

    test_manifest = ctx["out"] / "foley-test.jsonl"
    clips = [c for c in read_manifest(ctx["foley"]) if c.split == "test"]
    for c in clips:
        c.audio = str((Path(ctx["foley"]).resolve().parent / c.audio).resolve())
    write_manifest(test_manifest, relativize(clips, test_manifest))
    index = ctx["out"] / "index-shipped"
    if not _index_is_current(index, ctx["clap"]):  # e.g. a new audiocap release ships a new model
        build_index(test_manifest, ctx["clap"], index)
    ctx["index"] = index
    for query in DEMO_QUERIES:
        typer.secho(f"search: {query!r}", bold=True)
        for line in format_hits(search(index, text=query, k=5)):
            typer.echo("  " + line)


def caption_demo_sounds(ctx: Context) -> None:
    """Caption three test clips with the shipped captioner (the dataset's reference beside)."""
    from audiocap.captioning import caption_files
    from audiocap.data.manifest import audio_path, read_manifest

    if ctx.get("captioner") is None:
        typer.echo("this installation ships no captioner; skipped (train one: audiocap demo --train)")
        return
    clips = [c for c in read_manifest(ctx["foley"]) if c.split == "test"][:3]
    for clip, cap in zip(clips, caption_files([audio_path(ctx["foley"], c) for c in clips], [ctx["captioner"]])):
        typer.echo(f"  {clip.id}: {cap.text}\n    reference caption: {clip.captions[0]}")


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
    captioner = ctx.get("captioner")
    # absolute paths: the printed command works from any folder, not only the repository
    typer.echo("  " + serve_command(Path(model).absolute(), Path(index).absolute(),
                                    Path(captioner).absolute() if captioner is not None else None))


CLOTHO_STEPS: list[Callable[[Context], None]] = [import_clotho_captions, show_clotho_info]
STEPS: list[Callable[[Context], None]] = [*CLOTHO_STEPS, build_foley_data, train_clap_model,
                                          build_search_index, train_captioner_model,
                                          print_serve_command]  # serving stays last
TRAIN_STEPS = STEPS
SHIPPED_STEPS: list[Callable[[Context], None]] = [*CLOTHO_STEPS, build_foley_data, use_shipped_models,
                                                  index_demo_sounds, caption_demo_sounds, print_serve_command]
REPO_CONFIGS = Path(str(resources.files("audiocap") / "configs"))  # package data (a symlink in the repo)


def default_shared() -> Path:
    """AUDIOCAP_SHARED if set, else ../shared relative to the working directory."""
    return Path(os.environ.get("AUDIOCAP_SHARED", "../shared"))


@app.command("demo")
def demo(
    shared: Path = typer.Option(None, "--shared", help="The read-only shared/ folder with data/ "
                                "(default: $AUDIOCAP_SHARED or ../shared)."),
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Folder for the models and index the demo writes."),
    data: Path = typer.Option(Path("data"), "--data", help="Folder for datasets (the foley build goes to DATA/foley-default)."),
    captions_only: bool = typer.Option(False, "--captions-only", help="Only import and summarise the Clotho captions (seconds)."),
    train: bool = typer.Option(False, "--train", help="Train the demo's CLAP model and captioner from scratch "
                               "instead of using the shipped ones (minutes)."),
) -> None:
    """Run the quick-start job on the built-in data, every step cached so a rerun is quick.

    Imports the shared Clotho captions, builds the real-sound foley dataset, indexes its test
    clips with the CLAP model shipped with audiocap and searches them with text, captions test
    clips with the shipped captioner, and ends by printing the command that serves search and
    captioning in a browser. --train trains both models from scratch first (as does an
    installation without shipped models).
    """
    shared = shared or default_shared()
    if not (shared / "data" / "clotho").is_dir():
        raise fail(f"{shared}: no data/clotho folder; pass --shared PATH or set AUDIOCAP_SHARED")
    ctx: Context = {"shared": shared, "out": out, "data": data}
    out.mkdir(parents=True, exist_ok=True)
    from audiocap.pretrained import has_default

    if captions_only:
        steps = CLOTHO_STEPS
    elif train:
        steps = TRAIN_STEPS
    elif has_default("clap"):
        steps = SHIPPED_STEPS
    else:
        typer.secho("this installation ships no default CLAP model, so the demo trains its own "
                    "(as `audiocap demo --train`)", fg=typer.colors.YELLOW)
        steps = TRAIN_STEPS
    for i, step in enumerate(steps, start=1):
        typer.secho(f"[{i}/{len(steps)}] {(step.__doc__ or step.__name__).splitlines()[0]}", bold=True)
        step(ctx)
