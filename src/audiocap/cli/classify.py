"""``audiocap classify``: zero-shot classification of sounds with CLAP (:mod:`audiocap.zeroshot`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from audiocap.cli.apps import app, fail
from audiocap.zeroshot import DEFAULT_PROMPT


@app.command("classify")
def classify_cmd(
    files: list[Path] = typer.Argument(..., help="Audio files (wav, flac, ogg, mp3...)."),
    labels: Optional[str] = typer.Option(None, "--labels", "-l", help="Candidate labels, comma-separated, e.g. "
                                         "\"dog barking, rain, siren\". Default: the 101 sound classes of the "
                                         "foley lexicon (the classes the shipped CLAP was trained on)."),
    labels_file: Optional[Path] = typer.Option(None, "--labels-file", help="A text file with one candidate "
                                               "label per line (instead of --labels)."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="CLAP checkpoint folder (default: the "
                                         "CLAP model shipped with audiocap)."),
    prompt: str = typer.Option(DEFAULT_PROMPT, "--prompt", help="How each label is put into words "
                               "for the text tower; {} is the label."),
    top: int = typer.Option(5, "--top", min=1, help="Labels shown per file in the table (--json lists all)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line per file with every label."),
) -> None:
    """Say which of the candidate labels each sound is (zero-shot, CLAP).

    Each label becomes a sentence (--prompt), and the probabilities are the softmax of the
    sound's CLAP cosine similarity to each sentence times the model's logit scale: they sum to
    100 % over the labels given, so they compare the candidates with each other; a sound that is
    none of them still gets a most probable label (check the cosine: near 0 means unrelated).
    Unreadable files are skipped and listed at the end; the exit code is then 1 (some files
    classified) or 2 (none).
    """
    from audiocap.audio.io import AudioError
    from audiocap.checkpoint import CheckpointError
    from audiocap.cli.captioner import readable_files, report_unreadable
    from audiocap.pretrained import DefaultModelMissing, resolve_model
    from audiocap.zeroshot import LabelError, default_labels, label_prompts, parse_labels

    if labels is not None and labels_file is not None:
        raise fail("give --labels or --labels-file, not both")
    try:
        if labels_file is not None:
            candidates = parse_labels(_read_labels(labels_file))
        else:
            candidates = default_labels() if labels is None else parse_labels(labels)
        label_prompts(candidates[:1], prompt)  # a bad --prompt fails before any model loads
        model = resolve_model(model, "clap")
    except (LabelError, DefaultModelMissing) as exc:
        raise fail(str(exc)) from None
    good, bad = readable_files(files)
    if not good:
        report_unreadable(bad, len(files))
        raise typer.Exit(2)
    try:
        from audiocap.checkpoint import load_model
        from audiocap.zeroshot import classify_clips

        clap = load_model(model, expect=("clap",))
        results = classify_clips(clap, [str(f) for f in good], candidates, prompt=prompt)
    except (AudioError, CheckpointError, LabelError) as exc:
        raise fail(str(exc)) from None
    for f, ranked in zip(good, results):
        if as_json:
            typer.echo(json.dumps({"file": str(f), "labels": [
                {**r, "probability": round(r["probability"], 6), "cosine": round(r["cosine"], 4)} for r in ranked]},
                ensure_ascii=False))
        else:
            for line in format_labels(str(f), ranked[:top], len(ranked)):
                typer.echo(line)
    if bad:
        report_unreadable(bad, len(files))
        raise typer.Exit(1)


def _read_labels(path: Path) -> str:
    """The text of a labels file, or a one-line error naming it."""
    from audiocap.zeroshot import LabelError

    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabelError(f"{path}: labels file not found; give a text file with one label per line") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"{path}: cannot read the labels file ({exc}); save it as UTF-8 text, one label "
                         "per line") from None


def format_labels(file: str, ranked: list[dict], n_labels: int) -> list[str]:
    """A file's heading line and one line per shown label: probability, a bar, the label, cosine."""
    lines = [f"{file}  ({len(ranked)} of {n_labels} labels)" if len(ranked) < n_labels else file]
    width = max(len(r["label"]) for r in ranked)
    for r in ranked:
        p = r["probability"]
        bar = "#" * int(round(20 * p))
        lines.append(f"  {100 * p:5.1f}%  {bar:<20}  {r['label']:<{width}}  cosine {r['cosine']:+.3f}")
    return lines
