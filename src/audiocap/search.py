"""Search a sound collection with text or audio: build a :class:`VectorIndex`, then query it.

Text-to-audio retrieval with a CLAP dual encoder (Elizalde et al., "CLAP: Learning Audio Concepts
from Natural Language Supervision", ICASSP 2023; Wu et al., "Large-scale Contrastive
Language-Audio Pretraining", ICASSP 2023): every file of a collection is embedded once by the audio tower; a query (a sentence
through the text tower, or a sound through the audio tower) is embedded at search time and
the files are ranked by cosine similarity.

Long files follow the model's long-audio policy (:mod:`audiocap.audio.policy`, stored in the
checkpoint; old checkpoints: 10 s windows every 10 s, the last one shifted back to end at the
file's end): the window embeddings are averaged and re-normalized into one vector per file
(:func:`audiocap.inference.clap.embed_clip`), so a file appears once in the results. Files no
longer than a window are embedded whole.

An embedder is any object with ``sample_rate`` (int), ``embed_audio(waves)`` (a list of mono
float32 arrays -> (N, D) L2-normalized), ``embed_text(texts)`` (-> (N, D)) and optionally
``audio_policy`` (else windows of its ``clip_seconds``, else
:data:`audiocap.audio.policy.DEFAULT_POLICY`); a path is loaded with :func:`load_embedder`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np

from audiocap.fileio import atomic_write_json, file_hash
from audiocap.index import IndexParams, VectorIndex, VectorIndexError

if TYPE_CHECKING:
    from audiocap.audio.policy import AudioPolicy

REPORT_FILE = "report.json"


class Embedder(Protocol):
    """What search needs from a model: audio and text into one L2-normalized space."""

    sample_rate: int

    def embed_audio(self, waves: Sequence[np.ndarray]) -> np.ndarray: ...  # (N, D)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray: ...  # (N, D)


def load_embedder(model: str | os.PathLike, backend: str = "torch") -> Embedder:
    """Load a trained CLAP checkpoint folder as an :class:`Embedder` run by torch or, with
    ``backend="onnx"``, by ONNX Runtime (:mod:`audiocap.onnx_backend`; the checkpoint is exported
    once). An ONNX export folder always runs on the onnx backend."""
    from audiocap.checkpoint import load_model
    from audiocap.onnx_backend import BACKENDS, OnnxClapEmbedder, is_export, onnx_folder

    path = Path(model)
    if backend not in BACKENDS:
        raise VectorIndexError(f"unknown backend {backend!r}; use {' or '.join(BACKENDS)}")
    if not path.exists():
        raise VectorIndexError(f"{path}: model not found; pass a CLAP checkpoint folder with --model")
    if backend == "onnx" or is_export(path):
        return OnnxClapEmbedder(onnx_folder(path, "clap"))
    return ClapEmbedder(load_model(path, expect=("clap",)))


class ClapEmbedder:
    """Adapts a loaded CLAP model (:func:`audiocap.models.clap.load_clap`) to :class:`Embedder`."""

    def __init__(self, model: Any) -> None:
        from audiocap.audio.policy import audio_policy_of

        self.model = model
        self.sample_rate = int(model.sample_rate)
        self.audio_policy = audio_policy_of(model)  # attached by the loader; default for bare models
        self.calibration = getattr(model, "calibration", None)  # text-query confidence (audiocap.calibration)

    def embed_audio(self, waves: Sequence[np.ndarray]) -> np.ndarray:  # (N, D)
        from audiocap.embed import embed_audio

        return embed_audio(self.model, list(waves))

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:  # (N, D)
        from audiocap.embed import embed_text

        return embed_text(self.model, list(texts))


def as_embedder(model: Any) -> Embedder:
    """``model`` itself when it is an :class:`Embedder` already (:class:`ClapEmbedder`, the ONNX
    one), else a loaded CLAP model wrapped in :class:`ClapEmbedder`: what the service holds may be
    either, and both embed through the same calls."""
    return model if hasattr(model, "embed_audio") and hasattr(model, "embed_text") else ClapEmbedder(model)


def model_fingerprint(model: str | os.PathLike) -> dict[str, Any]:
    """``{"path", "sha256"}`` of a checkpoint: hash of ``model.safetensors`` (folder) or the file;
    for an ONNX export folder, the hash of the checkpoint it was exported from."""
    from audiocap.onnx_backend import is_export
    from audiocap.onnx_export import read_card

    path = Path(model).resolve()
    if is_export(path):
        return {"path": str(path), "sha256": read_card(path)["source"]["sha256"]}
    target = path / "model.safetensors" if path.is_dir() else path
    if not target.is_file():
        raise VectorIndexError(f"{target}: missing; pass a CLAP checkpoint folder with --model")
    return {"path": str(path), "sha256": file_hash(target)}


def collect_sources(source: str | os.PathLike) -> list[dict[str, Any]]:
    """Item records (``id``, ``path`` [, ``duration``, ``captions``]) of a folder or a manifest.

    A folder is walked recursively for the suffixes in
    :data:`audiocap.audio.io.SUPPORTED_SUFFIXES` (ids are paths relative to it); a ``.jsonl``
    file is read as an audiocap manifest (ids, captions, tags, license, source, attribution).
    Entries with an audio suffix that are not regular files (a broken or looping symbolic link,
    a folder named ``x.wav``, a pipe) are kept, so that indexing reports them as skipped.
    """
    from audiocap.audio.io import SUPPORTED_SUFFIXES
    from audiocap.data.manifest import audio_path, read_manifest

    src = Path(source)
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES)
        return [{"id": p.relative_to(src).as_posix(),  # resolve() fails on a symbolic link loop
                 "path": str(p.resolve()) if p.is_file() else os.path.abspath(p)} for p in files]
    if src.is_file() and src.suffix == ".jsonl":
        return [_manifest_item(src, c, audio_path) for c in read_manifest(src)]
    if not src.exists():
        raise VectorIndexError(f"{src}: not found; give a folder of audio files or a manifest.jsonl")
    raise VectorIndexError(f"{src}: not a folder or a .jsonl manifest")


def _manifest_item(manifest: Path, clip: Any, audio_path: Any) -> dict[str, Any]:
    """An index item record of a manifest clip: id, path, duration, captions, and the tags,
    license, source and attribution/author the page and the CLI show when present."""
    item = {"id": clip.id, "path": str(audio_path(manifest, clip).resolve()), "duration": clip.duration,
            "captions": list(clip.captions)}
    item |= {k: v for k, v in (("tags", list(clip.tags)), ("license", clip.license), ("source", clip.source))
             if v}
    item |= {k: clip.meta[k] for k in ("attribution", "author") if clip.meta.get(k)}
    return item


def embed_wave(embedder: Embedder, wave: np.ndarray) -> tuple[np.ndarray, int]:
    """Embed a mono waveform (N,) at the embedder's rate through its long-audio policy: whole if
    no longer than a window, else the normalized mean of its window embeddings (module docstring).

    Returns ``(vector (D,), n_windows)``. Indexing and audio queries (CLI, API, service) all
    embed through here, so a file queried against itself scores 1.
    """
    from audiocap.inference.clap import embed_clip

    try:
        return embed_clip(embedder.embed_audio, wave, sr=int(embedder.sample_rate), policy=_policy(embedder))
    except ValueError as exc:
        if type(exc) is not ValueError:  # AudioError and PolicyError keep their type
            raise
        raise VectorIndexError(str(exc)) from None


def _policy(embedder: Embedder) -> AudioPolicy:
    """The embedder's long-audio policy (module docstring)."""
    from audiocap.audio.policy import DEFAULT_POLICY, AudioPolicy

    policy = getattr(embedder, "audio_policy", None)
    if policy is None:  # a custom embedder may name only its clip length
        clip = getattr(embedder, "clip_seconds", None)
        policy = AudioPolicy(clip_seconds=float(clip)) if clip else DEFAULT_POLICY
    return policy


def embed_file(embedder: Embedder, path: str | os.PathLike | bytes, *, name: str | None = None
               ) -> tuple[np.ndarray, float, int]:
    """Decode one audio file as a stream and embed it as :func:`embed_wave` embeds the whole wave
    (the same vector up to float rounding): ``(vector (D,), seconds, n_windows)``. Windows are cut and embedded as the
    samples arrive (:func:`audiocap.inference.clap.embed_stream`), so a 10-hour file costs no more
    memory than a short one. Raises ``AudioError`` for an unusable file.
    """
    from audiocap.audio.io import stream_audio
    from audiocap.inference.clap import embed_stream

    sr = int(embedder.sample_rate)
    try:
        vec, n_windows, n = embed_stream(embedder.embed_audio, stream_audio(path, sr=sr, name=name), sr=sr,
                                         policy=_policy(embedder))
    except ValueError as exc:
        if type(exc) is not ValueError:  # AudioError and PolicyError keep their type
            raise
        raise VectorIndexError(str(exc)) from None
    return vec, n / sr, n_windows


def build_index(
    source: str | os.PathLike,
    model: Embedder | str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    params: IndexParams | None = None,
    progress: bool = True,
    backend: str = "torch",
) -> tuple[VectorIndex, dict[str, Any]]:
    """Embed every file of ``source`` (folder or manifest) and index it; save to ``out`` if given.

    Unreadable files (missing, corrupt, empty, non-finite...) and files the model rejects are
    skipped and listed in the returned report, which is also written to ``out/report.json``.
    ``model`` is an :class:`Embedder` or a checkpoint path (run on ``backend``, torch or onnx); a
    path is recorded in the index (with its sha256) so that :func:`search` can load the same
    model later.
    """
    from tqdm import tqdm

    from audiocap.audio.io import AudioError

    if isinstance(model, (str, os.PathLike)):
        embedder, info = load_embedder(model, backend), model_fingerprint(model)
    else:
        info, embedder = dict(getattr(model, "describe", lambda: {})()), model
    info["sample_rate"] = int(embedder.sample_rate)
    records = collect_sources(source)
    start, vectors, items, skipped, n_windows = time.perf_counter(), [], [], [], 0
    for rec in tqdm(records, desc="embedding", unit="file", disable=not progress):
        try:
            vec, duration, w = embed_file(embedder, rec["path"], name=rec["path"])
        except (AudioError, VectorIndexError) as exc:
            skipped.append({"id": rec["id"], "path": rec["path"], "reason": str(exc)})
            continue
        except Exception as exc:  # a model failure on one file must not lose the others
            skipped.append({"id": rec["id"], "path": rec["path"], "reason": f"model error: {exc!r}"})
            continue
        vectors.append(vec)
        items.append({**rec, "duration": round(duration, 3), "windows": w})
        n_windows += w
    report = {
        "source": str(Path(source).resolve()), "found": len(records), "indexed": len(items),
        "skipped": skipped, "windows": n_windows, "embed_seconds": round(time.perf_counter() - start, 3),
    }
    if not items:
        first = f" (first: {skipped[0]['reason']})" if skipped else ""
        raise VectorIndexError(f"{source}: no readable audio to index{first}")
    folder = Path(source).resolve() if Path(source).is_dir() else None  # the library the service streams from
    index = VectorIndex.build(np.stack(vectors), items, params=params, model=info, source=folder)
    report |= {"kind": index.kind, "dim": index.dim}
    if out is not None:
        index.save(out)
        atomic_write_json(Path(out) / REPORT_FILE, report)
    return index, report


def _embedder_for(index: VectorIndex, model: Embedder | str | os.PathLike | None,
                  backend: str = "torch") -> Embedder:
    """The model to embed queries with: ``model`` if given, else the one that built the index."""
    if model is not None and not isinstance(model, (str, os.PathLike)):
        return model
    if model is not None:
        return load_embedder(model, backend)
    built = (index.model or {}).get("path")
    if not built:
        raise VectorIndexError("the index does not record a model path; pass one with --model")
    if not Path(built).exists():
        raise VectorIndexError(f"{built}: the model that built this index is gone; pass --model")
    if model_fingerprint(built)["sha256"] != index.model.get("sha256"):
        raise VectorIndexError(f"{built}: the model changed since the index was built (sha256 "
                               "differs); rebuild the index or pass --model to use it anyway")
    return load_embedder(built, backend)


def search(
    index: VectorIndex | str | os.PathLike,
    text: str | None = None,
    audio: str | os.PathLike | bytes | None = None,
    k: int = 10,
    *,
    model: Embedder | str | os.PathLike | None = None,
    backend: str = "torch",
) -> list[dict[str, Any]]:
    """Rank the indexed files against one text or one audio query (exactly one of the two).

    ``index`` is a :class:`VectorIndex` or its folder. The query is embedded by ``model``, by
    default the model recorded in the index, run on ``backend`` (torch or onnx). Returns up to ``k`` item records with ``score``
    (cosine similarity) and ``rank``, best first; for a text query and a calibrated model also
    ``confidence`` (0-1) and ``match`` (:mod:`audiocap.calibration`).
    """
    if (text is None) == (audio is None):
        raise VectorIndexError("give exactly one query: text or audio")
    if text is not None and not text.strip():
        raise VectorIndexError("the text query is empty")
    index = index if isinstance(index, VectorIndex) else VectorIndex.load(index)
    embedder = _embedder_for(index, model, backend)
    if text is not None:
        query = np.asarray(embedder.embed_text([text]), dtype=np.float32)  # (1, D)
    else:
        query = embed_file(embedder, audio)[0][None, :]  # (1, D)
    hits = index.hits(query, k)[0]
    calibration = getattr(embedder, "calibration", None)
    if text is not None and calibration is not None:  # confidence/match for text queries only
        calibration.apply(hits, n_items=len(index))
    return hits


__all__ = ["ClapEmbedder", "Embedder", "build_index", "collect_sources", "embed_file", "embed_wave",
           "load_embedder",
           "model_fingerprint", "search"]
