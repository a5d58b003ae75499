"""``audiocap eval captions``: score predicted captions against reference CSVs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from audiocap.cli.apps import eval_app, fail


@eval_app.command("captions")
def captions(
    pred: Path = typer.Option(..., "--pred", help="Predictions CSV: file_name (or id) and caption, one row per clip."),
    refs: Path = typer.Option(..., "--refs", help="References CSV: Clotho (file_name, caption_1..5), "
                              "AudioCaps (audiocap_id, youtube_id, start_time, caption) or id,caption rows."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated subset of: bleu_1, bleu_2, "
                                          "bleu_3, bleu_4, meteor, rouge_l, cider_d, spice, spider, spider_fl, "
                                          "sbert_sim, vocab (default: all)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write corpus and per-item scores to this JSON file."),
    spice_dir: Optional[Path] = typer.Option(None, "--spice-dir", envvar="AUDIOCAP_SPICE_DIR",
                                             help="SPICE folder made by `audiocap metrics setup-spice` "
                                             "(default: the user cache)."),
) -> None:
    """Score predicted captions with coco-caption's metrics (BLEU, METEOR, ROUGE-L, CIDEr-D,
    SPICE, SPIDEr) plus sbert_sim and vocabulary size; print a table, optionally write JSON.

    SPICE and SPIDEr need a SPICE folder (`audiocap metrics setup-spice`); without one they are
    reported unavailable with the reason. SPIDEr-FL is always unavailable (no fluency detector).
    """
    from rich.console import Console

    from audiocap.metrics.base import MetricInputError
    from audiocap.metrics.caption_csv import CaptionCSVError, align
    from audiocap.metrics.captioning import Evaluator

    console = Console(stderr=True)
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    try:
        ids, cands, references = align(pred, refs)
        with console.status("scoring ...") as status:
            evaluator = Evaluator(names, spice_dir=spice_dir,
                                  progress=lambda name: status.update(f"scoring {name} ..."))
            results = evaluator(cands, references)
    except (CaptionCSVError, MetricInputError, ValueError) as exc:
        raise fail(str(exc)) from None
    Console().print(Evaluator.table(results, title=f"{pred.name} vs {refs.name} ({len(ids)} clips)"))
    if out is not None:
        Evaluator.write_json(results, out, ids=ids, meta={"pred": str(pred), "refs": str(refs)})
        typer.echo(f"wrote {out}")
