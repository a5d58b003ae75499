"""``audiocap audio ...``: inspect audio files."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from audiocap.cli.apps import fail, group

audio_app = group("audio", "Inspect audio files (header, duration, level).")


@audio_app.command("info")
def info(
    files: list[Path] = typer.Argument(..., help="Audio files (wav, flac, ogg, mp3, aiff)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per file."),
) -> None:
    """Print sample rate, channels, duration, container and codec of each file, plus its RMS level.

    Decodes each file fully so that corrupt or non-finite audio is reported; exits with code 2
    if any file is unusable (the others are still printed).
    """
    import numpy as np

    from audiocap.audio import AudioError, audio_info, load_audio

    bad = 0
    for path in files:
        try:
            meta = audio_info(path)
            wave = load_audio(path, sr=meta.sample_rate)
        except AudioError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            bad += 1
            continue
        rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))
        row = {
            "path": str(path), "sample_rate": meta.sample_rate, "channels": meta.channels,
            "frames": wave.shape[0], "duration": round(wave.shape[0] / meta.sample_rate, 3),  # decoded, not
            "format": meta.format,  # the header's claim (a truncated file or a lying FLAC header)
            "subtype": meta.subtype, "rms_dbfs": round(20 * np.log10(max(rms, 1e-10)), 2),
        }
        if as_json:
            typer.echo(json.dumps(row))
        else:
            typer.echo(
                f"{path}: {row['duration']:.3f} s, {row['sample_rate']} Hz, {row['channels']} ch, "
                f"{row['format']}/{row['subtype']}, RMS {row['rms_dbfs']:.1f} dBFS"
            )
    if bad:
        raise fail(f"{bad} of {len(files)} file(s) unusable")
