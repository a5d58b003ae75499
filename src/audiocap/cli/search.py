"""``audiocap index build`` and ``audiocap search``: index a sound collection, query it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from audiocap.cli.apps import app, fail, group

index_app = group("index", "Build a searchable index of a sound collection with a CLAP model.")


@index_app.command("build")
def build(
    source: Path = typer.Argument(..., help="A folder of audio files (searched recursively) or a "
                                  "manifest.jsonl."),
    model: Optional[Path] = typer.Option(None, "--model", help="CLAP checkpoint folder used to embed "
                                         "the audio (default: the CLAP model shipped with audiocap)."),
    out: Path = typer.Option(..., "--out", help="Index folder to write (index.json + .faiss file(s) "
                             "+ report.json)."),
    exact_below: int = typer.Option(50_000, help="Use exact search (faiss IndexFlatIP) below this "
                                    "many files, an approximate index above it."),
    kind: str = typer.Option("pqfs", help="Approximate index: 'pqfs' (4-bit PQ fast scan + exact "
                             "re-rank), 'ivf' (IVF-Flat) or 'hnsw'."),
    nlist: Optional[int] = typer.Option(None, help="IVF cells (default: sqrt of the file count)."),
    nprobe: int = typer.Option(32, help="IVF cells scanned per query (speed/recall knob)."),
    hnsw_m: int = typer.Option(32, help="HNSW links per node."),
    ef_search: int = typer.Option(256, help="HNSW candidates per query (speed/recall knob)."),
    refine: int = typer.Option(400, help="pqfs: k*refine candidates per shard re-ranked exactly "
                               "(speed/recall knob)."),
    shards: Optional[int] = typer.Option(None, min=1, help="pqfs: split the scan into this many parts "
                                         "searched by parallel threads (default: min(4, CPU cores))."),
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
    backend: str = typer.Option("torch", "--backend", help="torch, or onnx: ONNX Runtime on an export of the "
                                "model (made once into the cache from a checkpoint; a folder written by "
                                "`audiocap export onnx` always runs on onnx)."),
) -> None:
    """Embed every audio file of SOURCE with the model and save a searchable index to --out.

    Files longer than the model's clip length are embedded window by window and the windows are
    averaged, so each file is one entry. Unreadable or corrupt files are skipped and listed
    (on screen and in OUT/report.json); the build fails only if no file is readable.
    """
    from audiocap.index import IndexParams
    from audiocap.search import build_index

    if kind not in ("ivf", "hnsw", "pqfs"):
        raise fail(f"--kind must be 'ivf', 'hnsw' or 'pqfs', got {kind!r}")
    params = IndexParams(exact_below=exact_below, kind=kind, ivf_nlist=nlist, ivf_nprobe=nprobe,
                         hnsw_m=hnsw_m, hnsw_ef_search=ef_search, pq_refine=refine,
                         pq_shards=shards)
    try:
        from audiocap.pretrained import DefaultModelMissing, resolve_model

        model = resolve_model(model, "clap")
        index, report = build_index(source, model, out, params=params, backend=backend)
    except DefaultModelMissing as exc:
        raise fail(str(exc)) from None
    except ValueError as exc:  # VectorIndexError, ManifestError, CheckpointError
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(f"indexed {report['indexed']} of {report['found']} file(s) ({report['windows']} "
               f"window(s), {index.kind} index, dim {index.dim}) -> {out}")
    if report["skipped"]:
        typer.secho(f"skipped {len(report['skipped'])} unreadable file(s) (listed in "
                    f"{out / 'report.json'}):", fg=typer.colors.YELLOW, err=True)
        for row in report["skipped"]:
            typer.echo(f"  {row['reason']}", err=True)


@app.command("search")
def search_cmd(
    query: Optional[str] = typer.Argument(None, help="Text query, e.g. \"a dog barks in the rain\"."),
    index: Path = typer.Option(..., "--index", help="Index folder written by `audiocap index build`."),
    audio: Optional[Path] = typer.Option(None, "--audio", help="Search with an audio file instead "
                                         "of text."),
    k: int = typer.Option(10, "-k", "--top-k", min=1, help="Number of results."),
    model: Optional[Path] = typer.Option(None, "--model", help="Checkpoint to embed the query "
                                         "(default: the model that built the index)."),
    nprobe: Optional[int] = typer.Option(None, help="Override IVF cells scanned per query."),
    ef_search: Optional[int] = typer.Option(None, help="Override HNSW candidates per query."),
    refine: Optional[int] = typer.Option(None, help="Override the pqfs re-rank factor."),
    as_json: bool = typer.Option(False, "--json", help="Print results as one JSON list."),
    backend: str = typer.Option("torch", "--backend", help="torch, or onnx: ONNX Runtime on an export of the "
                                "model (made once into the cache from a checkpoint; a folder written by "
                                "`audiocap export onnx` always runs on onnx)."),
) -> None:
    """Print the indexed files that best match a text QUERY or an --audio file.

    Each hit shows its rank, the confidence that it matches (calibrated models; else the cosine
    similarity of the embeddings), its length and id, and the dataset's reference caption, tags
    and license when the index has them. The query is embedded with the model recorded in the index unless --model is given.
    """
    from audiocap.index import VectorIndex
    from audiocap.search import search

    if (query is None) == (audio is None):
        raise fail("give either a text QUERY or --audio FILE (exactly one)")
    try:
        idx = VectorIndex.load(index)
        idx.set_search_params(nprobe=nprobe, ef_search=ef_search, refine=refine)
        hits = search(idx, text=query, audio=audio, k=k, model=model, backend=backend)
    except ValueError as exc:  # VectorIndexError, AudioError, CheckpointError
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(hits, ensure_ascii=False, indent=2))
        return
    for line in format_hits(hits):
        typer.echo(line)


def format_hits(hits: list[dict]) -> list[str]:
    """Readable result lines: per hit its rank, id, confidence (calibrated models) or
    cosine score and duration, and below it the clip's reference caption, tags and license
    when the index has them (else its file path). With a calibrated model (hits carry
    ``confidence``/``match``) and no hit matching, the list is headed "no close match"."""
    calibrated = any("confidence" in h for h in hits)
    lines = []
    if calibrated and not any(h.get("match") for h in hits):
        lines.append("no close match in this library; the closest sounds:")
    indent = " " * 6
    for hit in hits:
        value = (f"{100 * float(hit['confidence']):.1f}% match" if "confidence" in hit
                 else f"cosine {hit['score']:.4f}" if hit["score"] > 0 else "no similarity")
        length = _clock(hit.get("duration"))
        lines.append(f"{hit['rank']:>3}  {hit['id']}  ({value}{', ' + length if length else ''})")
        caption = (hit.get("captions") or [None])[0]
        if caption or hit.get("path"):
            lines.append(f"{indent}reference caption: {caption}" if caption else f"{indent}{hit['path']}")
        extra = []
        if hit.get("tags"):
            extra.append("tags: " + ", ".join(str(t) for t in hit["tags"][:8]))
        if hit.get("license"):
            extra.append(f"license: {hit['license']}")
        if extra:
            lines.append(indent + " · ".join(extra))
    return lines


def _clock(seconds) -> str:
    """``m:ss`` for a duration in seconds ('' when unknown)."""
    if not isinstance(seconds, (int, float)):
        return ""
    s = max(0, round(float(seconds)))
    return f"{s // 60}:{s % 60:02d}"
