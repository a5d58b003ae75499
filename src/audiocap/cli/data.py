"""``audiocap data ...``: import datasets into JSONL manifests and summarise manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from audiocap.cli.apps import HELP_MARKUP, fail, group

data_app = group("data", "Import datasets (Clotho, AudioCaps, WavCaps) into manifests and summarise them.")
import_app = typer.Typer(
    name="import", no_args_is_help=True, rich_markup_mode=HELP_MARKUP,
    help="Turn a dataset's official caption files + audio folder into a JSONL manifest. Prints a report "
    "of missing/unreadable audio and malformed rows; exits 0 (with warnings) if at least one clip was "
    "imported, non-zero if none.",
)
data_app.add_typer(import_app, name="import")

OUT = typer.Option(..., "--out", "-o", help="Manifest to write (JSONL; audio paths relative to it).")
KEEP = typer.Option(False, "--keep-missing", help="Keep clips whose audio is missing or unreadable, "
                    "captions only (for text-only training); by default they are dropped and reported.")
AUDIO = typer.Option(None, "--audio", "-a", help="Audio root folder (default: beside the caption files).")


def _run(importer, out: Path, as_json: bool) -> None:
    """Run an importer, print its report, write the manifest; map bad input to `error:` lines."""
    from audiocap.data.importing import relativize
    from audiocap.data.manifest import ManifestError, write_manifest

    try:
        clips, report = importer()
    except (ManifestError, ValueError) as exc:  # DatasetFormatError is a ManifestError
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
    else:
        for line in report.lines():
            typer.echo(line)
    if not clips:
        raise fail("no clips imported: check the audio folder (--audio) and file naming, or pass "
                   "--keep-missing to import captions only", code=1)
    write_manifest(out, relativize(clips, out))
    problems = len(report.missing) + len(report.unreadable) + len(report.malformed)
    if problems:
        typer.secho(f"warning: {problems} problem(s) listed above", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"wrote {len(clips)} clips to {out}")


@import_app.command("clotho")
def import_clotho_cmd(
    captions: Path = typer.Argument(..., help="Folder with clotho_captions_{development,validation,evaluation}.csv."),
    out: Path = OUT,
    audio: Optional[Path] = AUDIO,
    splits: list[str] = typer.Option(["development", "validation", "evaluation"], "--split",
                                     help="Official split(s) to import (repeatable)."),
    keep_missing: bool = KEEP,
    resplit: Optional[float] = typer.Option(None, "--resplit", help="Pool development + validation and split "
                                            "them again, this share to train and the rest to val (0.9 = the "
                                            "Xiaomi DCASE 2023 report's 9:1); evaluation stays test."),
    resplit_seed: int = typer.Option(0, "--resplit-seed", help="Seed of the --resplit shuffle."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Import Clotho v2.1: audio expected at `AUDIO/<split>/<file_name>`.

    Clips are keyed by (split, file name), since four names repeat across splits; splits are stored as train/val/test (development/validation/evaluation).
    """
    from audiocap.data.clotho import import_clotho

    _run(lambda: import_clotho(captions, audio, splits=splits, keep_missing=keep_missing, progress=True,
                               resplit=resplit, resplit_seed=resplit_seed), out, as_json)


@import_app.command("audiocaps")
def import_audiocaps_cmd(
    captions: Path = typer.Argument(..., help="Folder with train.csv, val.csv, test.csv."),
    out: Path = OUT,
    audio: Optional[Path] = AUDIO,
    pattern: str = typer.Option("{youtube_id}_{start_time}.wav", "--pattern", help="Audio file name under "
                                "--audio; fields {split} {youtube_id} {start_time} {end_time} {audiocap_id}, "
                                "e.g. '{split}/Y{youtube_id}.wav'."),
    splits: list[str] = typer.Option(["train", "val", "test"], "--split", help="Split(s) to import (repeatable)."),
    keep_missing: bool = KEEP,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Import AudioCaps: one row per caption, grouped into clips by (youtube_id, start_time)."""
    from audiocap.data.audiocaps import import_audiocaps

    _run(lambda: import_audiocaps(captions, audio, pattern=pattern, splits=splits, keep_missing=keep_missing,
                                  progress=True), out, as_json)


@import_app.command("wavcaps")
def import_wavcaps_cmd(
    json_files: list[Path] = typer.Argument(..., help='WavCaps JSON file(s) {"data": [{"id", "caption", ...}]}.'),
    out: Path = OUT,
    audio: Optional[Path] = AUDIO,
    split: str = typer.Option("train", "--split", help="Split name given to every clip."),
    keep_missing: bool = KEEP,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Import WavCaps: audio found as `AUDIO/[<json folder>/]<id>[.flac|.wav]` or the entry's 'audio' path."""
    from audiocap.data.wavcaps import import_wavcaps

    _run(lambda: import_wavcaps(json_files, audio, split=split, keep_missing=keep_missing, progress=True),
         out, as_json)


@data_app.command("info")
def info(
    manifest: Path = typer.Argument(..., help="JSONL manifest."),
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON."),
) -> None:
    """Clips, hours, captions, words and vocabulary size, per split and in total.

    Words and vocabulary use a simple lowercase split on letters/digits/apostrophes: an approximation for a quick look, NOT the PTB tokenizer of the captioning metrics.
    """
    from audiocap.data.manifest import ManifestError, read_manifest
    from audiocap.data.stats import format_stats, manifest_stats

    try:
        clips = read_manifest(manifest)
    except ManifestError as exc:
        raise fail(str(exc)) from None
    stats = manifest_stats(clips)
    typer.echo(json.dumps(stats) if as_json else f"{manifest}\n{format_stats(stats)}")
