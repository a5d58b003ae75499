"""``audiocap eval captions``: score predicted captions against reference CSVs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from audiocap.cli.apps import eval_app, fail


@eval_app.command("captions")
def captions(
    pred: List[Path] = typer.Option(..., "--pred", help="Predictions CSV: file_name (or id) and caption, one "
                                    "row per clip. Repeat --pred to compare systems in one table (SPICE "
                                    "then runs once for all of them)."),
    refs: Path = typer.Option(..., "--refs", help="References CSV: Clotho (file_name, caption_1..5), "
                              "AudioCaps (audiocap_id, youtube_id, start_time, caption) or id,caption rows."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated subset of: bleu_1, bleu_2, "
                                          "bleu_3, bleu_4, meteor, rouge_l, cider_d, spice, spider, spider_fl, "
                                          "sbert_sim, vocab, fluency_error_rate, spider_audiocap_fluency "
                                          "(default: all)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write corpus and per-item scores to this JSON file."),
    spice_dir: Optional[Path] = typer.Option(None, "--spice-dir", envvar="AUDIOCAP_SPICE_DIR",
                                             help="SPICE folder made by `audiocap metrics setup-spice` "
                                             "(default: the user cache)."),
    spice_workers: int = typer.Option(1, "--spice-workers", help="SPICE JVMs parsing item shards at the same "
                                      "time (same values as one run; each needs ~2 GB and a core)."),
) -> None:
    """Score predicted captions with coco-caption's metrics (BLEU, METEOR, ROUGE-L, CIDEr-D,
    SPICE, SPIDEr) plus sbert_sim and vocabulary size; print a table, optionally write JSON.

    SPICE and SPIDEr need a SPICE folder (`audiocap metrics setup-spice`); without one they are
    reported unavailable with the reason. SPIDEr-FL is always unavailable (FENSE's fluency detector
    cannot be obtained); fluency_error_rate (share of captions audiocap's own detector flags: repeated
    words or events, missing verbs, cut-off endings) and spider_audiocap_fluency (SPIDEr x 0.1 on
    flagged captions) use audiocap's detector instead.
    With several --pred files the table has one row per file and --out holds every system.
    """
    from rich.console import Console

    from audiocap.metrics.base import MetricInputError
    from audiocap.metrics.caption_csv import CaptionCSVError, align
    from audiocap.metrics.evaluator import Evaluator
    from audiocap.progress import ProgressView

    if spice_workers < 1:
        raise fail(f"--spice-workers must be at least 1, got {spice_workers}")
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    systems: dict[str, list[str]] = {}
    try:
        ids: list[str] | None = None
        for path in pred:
            key = str(path)
            if key in systems:
                raise CaptionCSVError(f"{path}: given twice as --pred")
            ids_p, cands, references = align(path, refs)
            ids = ids_p if ids is None else ids
            systems[key] = cands
        with ProgressView() as view:  # a bar per phase in a terminal, count lines in a log
            evaluator = Evaluator(names, spice_dir=spice_dir, spice_workers=spice_workers, progress=view)
            results = evaluator.evaluate_many(systems, references)
    except (CaptionCSVError, MetricInputError, ValueError) as exc:
        raise fail(str(exc)) from None
    if len(pred) == 1:
        single = results[str(pred[0])]
        Console().print(Evaluator.table(single, title=f"{pred[0].name} vs {refs.name} ({len(ids)} clips)"))
        if out is not None:
            Evaluator.write_json(single, out, ids=ids, meta={"pred": str(pred[0]), "refs": str(refs)})
            typer.echo(f"wrote {out}")
        return
    short = {str(p): p.name for p in pred} if len({p.name for p in pred}) == len(pred) else None
    Console().print(Evaluator.systems_table(
        results, title=f"{len(pred)} systems vs {refs.name} ({len(ids)} clips)", labels=short))
    if out is not None:
        from audiocap.fileio import atomic_write_json

        atomic_write_json(out, {"meta": {"refs": str(refs)}, "ids": ids, "systems": {
            name: Evaluator.to_json(res, meta={"pred": name}) for name, res in results.items()}})
        typer.echo(f"wrote {out}")
