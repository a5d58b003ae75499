"""``audiocap eval clap``: retrieval (R@1/5/10, mAP@10 both ways) and zero-shot accuracy."""

from __future__ import annotations

from pathlib import Path

import typer

from audiocap.cli.apps import eval_app, fail
from audiocap.zeroshot import DEFAULT_PROMPT


@eval_app.command("clap")
def eval_clap_cmd(
    model: list[str] = typer.Option(..., "--model", "-m", help="CLAP checkpoint folder; repeat for several "
                                    "(their mean similarity is also scored as an ensemble). "
                                    "'init:FOLDER' scores that run's untrained starting point."),
    manifest: Path = typer.Option(..., "--manifest", help="Manifest JSONL with captions, tags and splits."),
    split: str = typer.Option("test", help="Split to evaluate."),
    prompt: str = typer.Option(DEFAULT_PROMPT, help="Zero-shot prompt template; {} is the tag."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the results JSON here."),
    no_ensemble: bool = typer.Option(False, "--no-ensemble", help="Do not score the ensemble row."),
    cache_dir: str = typer.Option(None, help="Feature cache folder (default ~/.cache/audiocap/features)."),
    device: str = typer.Option("cpu", "--device", help="Torch device for the towers and heads (cpu, cuda...)."),
) -> None:
    """Score CLAP checkpoints on a manifest split: text->audio and audio->text R@1/5/10 and mAP@10,
    zero-shot classification accuracy over the dataset's tag vocabulary, an ensemble row and
    the chance level. Each clip is embedded as search embeds its file (the checkpoint's long-audio
    policy: windows, normalized mean). Prints a table and optionally writes JSON."""
    from rich.console import Console
    from rich.table import Table

    from audiocap.checkpoint import CheckpointError
    from audiocap.data.manifest import ManifestError, read_manifest
    from audiocap.evaluation.clap import evaluate_clap, load_for_eval
    from audiocap.fileio import atomic_write_json

    if "{}" not in prompt:
        raise fail(f"--prompt must contain '{{}}' where the tag goes, got {prompt!r}")
    if not manifest.exists():
        raise fail(f"{manifest}: manifest not found")
    try:
        vocab = sorted({t for c in read_manifest(manifest) for t in c.tags})
        models = {}
        for spec in model:
            name = spec if spec.startswith("init:") else Path(spec).name
            models[name] = load_for_eval(spec, device)
        res = evaluate_clap(models, manifest, split=split, prompt=prompt, vocab=vocab or None,
                            ensemble=not no_ensemble, cache_dir=cache_dir)
    except (FileNotFoundError, CheckpointError, ManifestError, ValueError) as exc:
        raise fail(str(exc)) from None
    cols = ["t2a_R@1", "t2a_R@5", "t2a_R@10", "t2a_mAP@10", "a2t_R@1", "a2t_R@5", "a2t_R@10", "a2t_mAP@10", "zero_shot_acc"]
    table = Table(title=f"{manifest} [{split}] {res['n_audio']} clips, {res['n_text']} captions, {res['n_tags']} tags")
    table.add_column("model")
    for c in cols:
        table.add_column(c, justify="right")
    for name, row in res["rows"].items():
        table.add_row(name, *[f"{row[c]:.3f}" for c in cols])
    Console().print(table)
    if out:
        atomic_write_json(out, res)
        typer.echo(f"wrote {out}")
