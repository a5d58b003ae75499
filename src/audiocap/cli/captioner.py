"""``audiocap train captioner``, ``audiocap caption`` and ``audiocap eval captioner``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from audiocap.cli.apps import RESUME_HELP, SET_HELP, app, eval_app, fail, train_app


@train_app.command("captioner")
def train_captioner_cmd(
    config: Path = typer.Option(..., "--config", "-c", help="YAML recipe, e.g. configs/captioner/foley_ce.yaml."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP.format(example="train.epochs=3")),
    resume: bool = typer.Option(True, "--resume/--force", help=RESUME_HELP),
) -> None:
    """Train an audio captioner (frozen tower -> audio encoder -> Transformer decoder).

    The loss is caption cross-entropy, optionally plus CL4AC or NT-Xent (loss.aux). Frozen-tower
    frame embeddings come from the feature cache shared with CLAP (data.cache_dir, default
    ~/.cache/audiocap/features); the model is written to
    <train.out>/checkpoint: the epoch with the lowest validation CE, or with train.monitor=val/cider_d
    (val/spider, val/sbert_sim...) and train.val_metrics_every=N the epoch with the highest caption metric,
    computed by captioning the validation split every N epochs (values per epoch in <train.out>/val_metrics.json).
    """
    from audiocap.config import RecipeError, load_recipe
    from audiocap.train.captioner import CaptionerRecipe, train_captioner

    try:
        recipe = load_recipe(CaptionerRecipe, config, set_)
        folder = train_captioner(recipe, resume=resume)
    except (RecipeError, ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"checkpoint: {folder}")


@app.command("caption")
def caption_cmd(
    files: list[Path] = typer.Argument(..., help="Audio files (wav, flac, ogg, mp3...)."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Checkpoint folder (captioner, or any "
                                         "registered kind; default: the captioner shipped with audiocap)."),
    beam: int = typer.Option(3, "--beam", help="Beam size; 1 = greedy decoding."),
    ensemble: list[Path] = typer.Option([], "--ensemble", help="More checkpoints (same vocabulary) to average "
                                        "per-step log-probabilities with --model (repeatable)."),
    per_window: Optional[bool] = typer.Option(None, "--per-window/--whole", help="--per-window: one caption per "
                                              "window (the model's clip length, 10 s for the shipped captioner) with "
                                              "start/end seconds for every file; --whole: one caption per file "
                                              "however long (a summary). Default: one caption for a file of at most "
                                              "60 s, one per window for a longer one. Files are decoded as a stream, "
                                              "so memory does not grow with their length."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="WSAC checkpoints only: how the audio "
                                           "embedding becomes the decoder input: direct, nnd (nearest training "
                                           "caption embedding) or projection (softmax-weighted memory mean). "
                                           "Default: direct."),
    tau: Optional[float] = typer.Option(None, "--tau", help="WSAC projection temperature (default 0.01)."),
    precision: str = typer.Option("auto", "--precision", help="Captioner checkpoints: arithmetic of the frozen "
                                  "audio tower: fp32, bf16 (about 2x faster on CPUs with AVX512-BF16/AMX and "
                                  "recent GPUs; frames within ~1e-3 cosine of fp32) or auto (bf16 where the "
                                  "hardware runs it natively, else fp32)."),
    backend: str = typer.Option("torch", "--backend", help="torch, or onnx: ONNX Runtime on an export of the "
                                "captioner (made once into the cache from a checkpoint, or a folder written by "
                                "`audiocap export onnx` given with --model); one model, fp32."),
) -> None:
    """Caption audio files with a trained model (dispatches on the checkpoint's kind).

    Captioner checkpoints decode audio frames with beam search; WSAC checkpoints (text-only
    training) caption the CLAP audio embedding with --strategy direct|nnd|projection.
    A file longer than 60 s gets one caption per window with its start and end (--whole: one
    caption for the whole file). Silent audio is captioned "silence"; a steady tone, hum or
    noise, or a clip under 0.3 s, keeps its caption marked "low confidence" (--json: "flag" and
    "confidence" on every line).
    Unreadable files are skipped and listed at the end; the exit code is then 1 (some files
    captioned) or 2 (none).
    """
    from audiocap.audio.io import AudioError
    from audiocap.captioning import captioner_for
    from audiocap.checkpoint import CheckpointError
    from audiocap.onnx_export import ExportError

    if beam < 1:
        raise fail("--beam must be at least 1")
    if strategy is not None and strategy not in ("direct", "nnd", "projection"):
        raise fail(f"unknown --strategy '{strategy}'; use direct, nnd or projection")
    if tau is not None and tau <= 0:
        raise fail("--tau must be positive")
    if precision not in ("auto", "fp32", "bf16"):
        raise fail(f"unknown --precision '{precision}'; use auto, fp32 or bf16")
    if backend not in ("torch", "onnx"):
        raise fail(f"unknown --backend '{backend}'; use torch or onnx")
    wsac_kw = {k: v for k, v in (("strategy", strategy), ("tau", tau)) if v is not None}
    from audiocap.pretrained import DefaultModelMissing, resolve_model

    try:
        model = resolve_model(model, "captioner")
    except DefaultModelMissing as exc:
        raise fail(str(exc)) from None
    try:
        from audiocap.captioning import CAPTIONERS
        from audiocap.checkpoint import checkpoint_kind
        from audiocap.onnx_backend import is_export

        if backend == "onnx" or is_export(model):
            if ensemble or wsac_kw or precision != "auto":
                raise fail("the onnx backend captions with one captioner in fp32: drop --ensemble, "
                           "--strategy/--tau and --precision, or use --backend torch")
            from audiocap.onnx_backend import caption_files as run
            extra = {}
        else:
            kind = checkpoint_kind(model, expect=tuple(CAPTIONERS))
            if wsac_kw and kind != "wsac":
                raise fail(f"--strategy/--tau apply to WSAC checkpoints only; {model} is a '{kind}' checkpoint")
            if precision != "auto" and kind != "captioner":
                raise fail(f"--precision applies to captioner checkpoints only; {model} is a '{kind}' checkpoint")
            extra = {"precision": precision} if kind == "captioner" else wsac_kw
            run = captioner_for(model)
        good, bad = readable_files(files)
        if not good:
            report_unreadable(bad, len(files))
            raise typer.Exit(2)
        caps = run(good, [model, *ensemble], beam=beam, per_window=per_window, progress=len(good) > 1, **extra)
    except (AudioError, CheckpointError, ExportError) as exc:
        raise fail(str(exc)) from None
    for c in caps:
        if as_json:
            typer.echo(json.dumps(c.to_dict()))
        else:
            notes = ([] if c.finished else ["cut at max length"]) + (
                [f"low confidence {c.confidence:.2f}: not a recognisable sound event"]
                if c.flag == "low_confidence" else [])
            typer.echo("\t".join([c.file, f"{c.start:.2f}-{c.end:.2f}s", c.text] + [f"({n})" for n in notes]))
    if bad:
        report_unreadable(bad, len(files))
        raise typer.Exit(1)


def readable_files(files: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Split ``files`` into those that decode and ``(file, reason)`` for those that do not.

    Each file is decoded once at its own rate (as ``audiocap audio info`` does), as a stream that
    keeps no samples (a long recording is not held in memory), so a corrupt file is found before
    any model runs and the others are still captioned.
    """
    from audiocap.audio.io import AudioError, audio_info, stream_audio

    good, bad = [], []
    for f in files:
        try:
            for _ in stream_audio(f, sr=audio_info(f).sample_rate):
                pass
        except AudioError as exc:
            bad.append((f, str(exc)))
            continue
        good.append(f)
    return good, bad


def report_unreadable(bad: list[tuple[Path, str]], total: int) -> None:
    """List the skipped files on stderr, after the captions."""
    typer.secho(f"error: {len(bad)} of {total} file(s) could not be read and were skipped:",
                fg=typer.colors.RED, err=True)
    for _, reason in bad:
        typer.echo(f"  {reason}", err=True)


@eval_app.command("captioner")
def eval_captioner_cmd(
    model: Path = typer.Option(..., "--model", "-m", help="Captioner checkpoint folder."),
    manifest: Path = typer.Option(..., "--manifest", help="Manifest (JSONL) with reference captions."),
    split: str = typer.Option("test", "--split", help="Manifest split to evaluate."),
    beam: int = typer.Option(3, "--beam", help="Beam size; 1 = greedy decoding."),
    ensemble: list[Path] = typer.Option([], "--ensemble", help="More checkpoints to ensemble with --model."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for metrics.json and predictions.csv "
                                       "(default: `<model>/eval-<split>-beam<k>`)."),
    cache_dir: Optional[str] = typer.Option(None, "--cache-dir", help="Frame cache (default: the recipe's)."),
    skip_spice: bool = typer.Option(False, "--skip-spice", help="Leave out SPICE and the SPIDEr scores (slow Java parser)."),
    precision: str = typer.Option("auto", "--precision", help="Frozen tower arithmetic, as for `audiocap caption` "
                                  "(auto|fp32|bf16); the scored captions are the ones caption prints with it."),
    device: str = typer.Option("cpu", "--device", help="Torch device for the tower and the models (cpu, cuda...)."),
    backend: str = typer.Option("torch", "--backend", help="torch, or onnx: the frame cache and the captions "
                                "from ONNX Runtime on an export of --model (one model, fp32), as `caption "
                                "--backend onnx`."),
) -> None:
    """Caption a manifest split and score it with the DCASE metrics; prints the table.

    Each clip is captioned as `audiocap caption` captions its file (every window of the
    checkpoint's long-audio policy, one caption per clip), so the scores describe what users get.
    """
    from audiocap.audio.io import AudioError
    from audiocap.checkpoint import CheckpointError
    from audiocap.data.manifest import ManifestError
    from audiocap.cli.progress import step
    from audiocap.evaluation.captioner import caption_split, candidates, score_captions, write_report
    from audiocap.metrics.evaluator import Evaluator
    from audiocap.progress import ProgressView

    if backend not in ("torch", "onnx"):
        raise fail(f"unknown --backend '{backend}'; use torch or onnx")
    try:
        from audiocap.metrics.evaluator import ALL_METRICS

        chosen = [m for m in ALL_METRICS if m not in ("spice", "spider", "spider_audiocap_fluency")] if skip_spice \
            else list(ALL_METRICS)
        with step(f"captioning split '{split}' of {manifest} with beam {beam}"), ProgressView() as view:
            report = caption_split([model, *ensemble], manifest, split=split, beam=beam, cache_dir=cache_dir,
                                   precision=precision, device=device, backend=backend, progress=view)
        typer.echo(f"  {len(report['predictions'])} clip(s) captioned", err=True)
        slow = " (SPICE runs in Java: the slowest part)" if "spice" in chosen else ""
        with step(f"scoring {len(report['predictions'])} caption(s) with {len(chosen)} metrics{slow}"), \
                ProgressView() as view:
            report["metrics"] = score_captions(candidates(report), report["references"], metrics=chosen,
                                               progress=view)
    except (AudioError, CheckpointError, ManifestError, ValueError) as exc:
        raise fail(str(exc)) from None
    folder = out or model / f"eval-{split}-beam{beam}"
    js, cs = write_report(report, folder)
    from rich.console import Console

    Console().print(Evaluator.table(report["metrics"], title=f"{model} on {manifest} [{split}], beam {beam}"))
    typer.echo(f"wrote {js} and {cs}")
