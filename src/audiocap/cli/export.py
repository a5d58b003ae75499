"""``audiocap export onnx``: write a checkpoint as ONNX graphs with a model card (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from audiocap.cli.apps import fail, group

export_app = group("export", "Export trained models for other runtimes (ONNX).")


@export_app.command("onnx")
def export_onnx_cmd(
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="CLAP or captioner checkpoint folder "
                                         "(default: the shipped captioner)."),
    out: Path = typer.Option(..., "--out", help="Folder to write the .onnx files and model_card.json to."),
) -> None:
    """Export a CLAP model (audio and text paths) or a captioner (encoder and one decoder step
    with its key/value cache) to ONNX, opset 17, with dynamic batch and time axes.

    The folder gets one .onnx file per graph, model_card.json (inputs, outputs, sample rate,
    window policy, opset, the source checkpoint's SHA-256 and each graph's difference from torch
    measured at export) and what runs beside the graphs (tokenizer, vocabulary, calibration).
    Use it with `--backend onnx` or pass the folder as --model to search, index build and caption.
    """
    from audiocap.checkpoint import CheckpointError
    from audiocap.onnx_export import CARD, ExportError, export_onnx
    from audiocap.pretrained import DefaultModelMissing, resolve_model

    try:
        folder = export_onnx(resolve_model(model, "captioner"), out)
    except (CheckpointError, ExportError, DefaultModelMissing) as exc:
        raise fail(str(exc)) from None
    card = json.loads((folder / CARD).read_text(encoding="utf-8"))
    worst = max(card["export_check"]["max_abs_diff_vs_torch"].values())
    typer.echo(f"exported {card['kind']} {len(card['graphs'])} graph(s) to {folder} "
               f"(opset {card['opset']}; max abs difference from torch {worst:.2g})")
