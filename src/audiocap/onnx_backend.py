"""The ``onnx`` backend: run an ONNX export (:mod:`audiocap.onnx_export`) with ONNX Runtime.

``--backend onnx`` on ``search``, ``index build`` and ``caption`` goes through here. ``--model``
may name an export folder (with ``model_card.json``) or a checkpoint folder; a checkpoint is
exported once into ``$AUDIOCAP_CACHE/onnx/<sha256 of its weights>`` and reused (nothing is
downloaded). The objects mirror the torch ones, so the rest of audiocap does not change:
:class:`OnnxAudioTower` is a frozen tower (waveforms -> window embeddings) for captioning and the
feature caches, :class:`OnnxClapEmbedder` a search :class:`audiocap.search.Embedder`, and
:class:`OnnxCaptionerScorer` the beam-search scorer with its key/value cache as numpy arrays.

Threads: the tower, head and text graphs use ``torch.get_num_threads()`` intra-op threads (the
machine's cores, or OMP_NUM_THREADS); a decoding step, a few small matrix products, uses one.
Spinning is off, since on a shared CPU waiting threads that spin only take time from others.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from audiocap.captioning import CaptionPipeline
from audiocap.embed import equal_length_batches
from audiocap.onnx_export import CARD, ExportError, checkpoint_sha256, decode_card, export_onnx, read_card, session

BACKENDS = ("torch", "onnx")


def is_export(folder: str | os.PathLike) -> bool:
    """True for an ONNX export folder (it holds ``model_card.json``)."""
    return (Path(folder) / CARD).is_file()


def cache_root() -> Path:
    return Path(os.environ.get("AUDIOCAP_CACHE", Path.home() / ".cache" / "audiocap")) / "onnx"


def onnx_folder(model: str | os.PathLike, kind: str) -> Path:
    """The export folder for ``model`` (an export folder, or a checkpoint exported on first use
    into the cache, keyed by the SHA-256 of its weights), checked to hold a ``kind`` model."""
    folder = Path(model)
    if not is_export(folder):
        from audiocap.checkpoint import checkpoint_kind, read_recipe

        checkpoint_kind(folder, expect=(kind,))  # a wrong or broken checkpoint fails here, named
        sha = checkpoint_sha256(folder)
        cached = cache_root() / f"{kind}-{sha[:16]}"
        try:
            card = read_card(cached) if is_export(cached) else None
            # same weights, and for a captioner the same decoding settings (they live in the recipe)
            fresh = card is not None and card["source"]["sha256"] == sha and (
                kind != "captioner" or card.get("decode") == decode_card(read_recipe(folder)))
        except ExportError:  # an export by an older audiocap (another card format): made again
            fresh = False
        if not fresh:
            export_onnx(folder, cached)
        folder = cached
    card = read_card(folder)
    if card["kind"] != kind:
        raise ExportError(f"{folder / CARD}: an ONNX '{card['kind']}' model; expected a '{kind}' model")
    return folder


def frame_windows(spec: np.ndarray, window: int, hop: int) -> np.ndarray:
    """Numpy :func:`audiocap.encoders.aisfx.frame_windows`: (B, T, F) -> (B, W, window, F)."""
    b, t, f = spec.shape
    if t < window:
        spec = np.pad(spec, ((0, 0), (0, window - t), (0, 0)))
        t = window
    starts = list(range(0, t - window + 1, hop))
    if starts[-1] + window < t:
        starts.append(t - window)
    return np.stack([spec[:, s : s + window] for s in starts], axis=1)


class OnnxAudioTower(nn.Module):
    """The frozen aisfx tower from ``frontend.onnx`` + ``audio_tower.onnx``: waveforms (B, N) at
    44.1 kHz -> window embeddings (B, W, 512), as :class:`audiocap.encoders.aisfx.AisfxTower`.

    A parameter-free module, so :func:`audiocap.features.towers.embed_waves` and the feature
    caches take it as they take the torch tower; ``onnx_sha256`` (the tower graph's hash) enters
    the cache key through the tower's options."""

    def __init__(self, folder: str | os.PathLike, card: dict[str, Any] | None = None) -> None:
        super().__init__()
        card = card or read_card(folder)
        tower = card["tower"]
        self.sample_rate = int(tower["sample_rate"])
        self.frame_dim = self.dim = int(tower["frame_dim"])
        self.window_frames, self.hop_frames = int(tower["window_frames"]), int(tower["hop_frames"])
        self.onnx_sha256 = card["graphs"]["audio_tower"]["sha256"]
        self._frontend = session(Path(folder) / "frontend.onnx")
        self._net = session(Path(folder) / "audio_tower.onnx")

    def forward(self, wave: Tensor) -> Tensor:
        spec = self._frontend.run(None, {"wave": wave.detach().float().cpu().numpy()})[0]  # (B, T, 96)
        win = frame_windows(spec, self.window_frames, self.hop_frames)  # (B, W, 100, 96)
        b, w = win.shape[:2]
        emb = self._net.run(None, {"mel_windows": np.ascontiguousarray(win.reshape(b * w, *win.shape[2:]))})[0]
        return torch.from_numpy(emb.reshape(b, w, -1))

    def pool(self, frame_embs: Tensor, mask: Tensor | None = None) -> Tensor:
        """Masked mean over windows, as the torch tower's."""
        if mask is None:
            return frame_embs.mean(1)
        m = mask.unsqueeze(-1).to(frame_embs.dtype)
        return (frame_embs * m).sum(1) / m.sum(1).clamp_min(1.0)


class OnnxClapEmbedder:
    """A CLAP export as a search :class:`audiocap.search.Embedder` (unit vectors, float32)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        from transformers import AutoTokenizer

        from audiocap.audio.policy import AudioPolicy
        from audiocap.calibration import load as load_calibration

        self.folder = Path(folder)
        self.card = card = read_card(folder)
        self.tower = OnnxAudioTower(folder, card)
        self.sample_rate = self.tower.sample_rate
        self.audio_policy = AudioPolicy.from_dict(card["audio_policy"], where=str(self.folder / CARD))
        self.calibration = load_calibration(folder) if card.get("calibration") else None
        self.embed_dim = int(card["embed_dim"])
        self._head = session(self.folder / "clap_audio_head.onnx")
        self._text = session(self.folder / "clap_text.onnx")
        self._tokenizer = AutoTokenizer.from_pretrained(str(self.folder / card["text"]["tokenizer"]),
                                                        local_files_only=True, trust_remote_code=False)
        self.max_tokens = int(card["text"]["max_tokens"])

    def scale(self) -> float:
        """The model's exp(logit_scale), clamped as in training (zero-shot classification)."""
        return float(self.card["logit_scale"])

    def describe(self) -> dict[str, Any]:
        """What an index records about the model: the source checkpoint's hash and this export."""
        return {"path": str(self.folder.resolve()), "sha256": self.card["source"]["sha256"], "backend": "onnx"}

    def embed_audio(self, waves: Sequence[np.ndarray], *, batch_size: int = 16) -> np.ndarray:  # (N, E)
        """Unit audio embeddings; waves of equal length go through the graphs together."""
        out = np.zeros((len(waves), self.embed_dim), dtype=np.float32)
        for idx, batch in equal_length_batches(waves, batch_size):
            frames = self.tower(torch.from_numpy(batch)).numpy()  # (b, W, D)
            mask = np.ones(frames.shape[:2], dtype=bool)
            out[idx] = self._head.run(None, {"frames": frames, "mask": mask})[0]
        return out

    def embed_text(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:  # (N, E)
        """Unit text embeddings (the tokenizer of the text tower, saved with the export)."""
        chunks = []
        for s in range(0, len(texts), batch_size):
            enc = self._tokenizer(list(texts[s : s + batch_size]), padding=True, truncation=True,
                                  max_length=self.max_tokens, return_tensors="np")
            chunks.append(self._text.run(None, {"input_ids": enc["input_ids"].astype(np.int64),
                                                "attention_mask": enc["attention_mask"].astype(np.int64)})[0])
        return np.concatenate(chunks) if chunks else np.zeros((0, self.embed_dim), dtype=np.float32)


class OnnxCaptionerScorer:
    """Beam-search scorer (:mod:`audiocap.decoding.beam`) over ``captioner_encoder.onnx`` and
    ``captioner_step.onnx``; the state is the key/value cache as numpy arrays."""

    device = torch.device("cpu")

    def __init__(self, folder: str | os.PathLike, card: dict[str, Any]) -> None:
        self._encoder = session(Path(folder) / "captioner_encoder.onnx")
        self._step = session(Path(folder) / "captioner_step.onnx", threads=1)
        tokens, dec = card["tokens"], card["decoder"]
        self.bos_id, self.eos_id, self.pad_id = int(tokens["bos"]), int(tokens["eos"]), int(tokens["pad"])
        self.layers, self.heads, self.head_dim = int(dec["layers"]), int(dec["heads"]), int(dec["head_dim"])

    def start(self, frame_embs: Tensor, frame_mask: Tensor) -> dict[str, np.ndarray]:
        """Encode each item (B, T, F) at its own length (the graph takes unpadded rows, as the
        torch GRU packs them) and pad the cross-attention keys/values to the longest."""
        x, lengths = frame_embs.float().cpu().numpy(), frame_mask.sum(1).clamp(min=1).tolist()
        b, t = x.shape[:2]
        ck = np.zeros((self.layers, b, self.heads, t, self.head_dim), dtype=np.float32)
        cv = np.zeros_like(ck)
        for i, n in enumerate(lengths):
            _, k, v = self._encoder.run(None, {"frames": np.ascontiguousarray(x[i : i + 1, :n])})
            ck[:, i, :, :n], cv[:, i, :, :n] = k[:, 0], v[:, 0]
        empty = np.zeros((self.layers, b, self.heads, 0, self.head_dim), dtype=np.float32)
        return {"k": empty, "v": empty, "cross_k": ck, "cross_v": cv,
                "mask": frame_mask.cpu().numpy().astype(bool)}

    def step(self, tokens: Tensor, state: dict[str, np.ndarray]) -> tuple[Tensor, dict[str, np.ndarray]]:
        """Feed one token per row (N,) -> log-probabilities (N, V) and the extended cache."""
        logp, k, v = self._step.run(None, {
            "tokens": tokens.cpu().numpy().astype(np.int64), "position": np.array([state["k"].shape[3]]),
            "past_k": state["k"], "past_v": state["v"], "cross_k": state["cross_k"], "cross_v": state["cross_v"],
            "memory_mask": state["mask"]})
        return torch.from_numpy(logp), {**state, "k": k, "v": v}

    def select(self, state: dict[str, np.ndarray], index: Tensor) -> dict[str, np.ndarray]:
        """Keep/reorder/duplicate rows (beams) by ``index`` (N,)."""
        idx = index.cpu().numpy()
        return {"k": state["k"][:, idx], "v": state["v"][:, idx], "cross_k": state["cross_k"][:, idx],
                "cross_v": state["cross_v"][:, idx], "mask": state["mask"][idx]}


class OnnxCaptionPipeline(CaptionPipeline):
    """:class:`audiocap.captioning.CaptionPipeline` on a captioner export: the same windowing,
    silence judgement and beam search, with :class:`OnnxAudioTower` and
    :class:`OnnxCaptionerScorer` in place of the torch tower and model (so no torch checkpoint
    is loaded, and the parent's constructor, which builds those, is not called)."""

    def __init__(self, folder: str | os.PathLike, *, beam: int = 3, alpha: float | None = None,
                 max_len: int | None = None, batch_size: int = 16) -> None:
        from audiocap.audio.policy import AudioPolicy
        from audiocap.checkpoint import read_extra
        from audiocap.text.vocab import Vocab

        card = read_card(folder)
        self.policy = AudioPolicy.from_dict(card["audio_policy"], where=str(Path(folder) / CARD))
        self.vocab = read_extra(folder, "vocab", Vocab.from_json)
        self.beam, self.batch_size = beam, batch_size
        self.alpha = card["decode"]["alpha"] if alpha is None else alpha
        self.no_repeat_ngram = int(card["decode"].get("no_repeat_ngram", 0))
        self.max_len = min(max_len or card["decode"]["max_len"], int(card["decoder"]["max_len"]))
        self.tower, self.device, self.precision = OnnxAudioTower(folder, card), torch.device("cpu"), "fp32"
        self.scorer = OnnxCaptionerScorer(folder, card)


def caption_files(files: Sequence[str | os.PathLike], checkpoints: Sequence[str | os.PathLike], *,
                  beam: int = 3, per_window: bool | None = None, progress: bool = False, **kw: Any) -> list[Any]:
    """:func:`audiocap.captioning.caption_files` on the onnx backend (one model; no ensembles): files
    decoded as a stream, ``per_window`` None = one caption up to 60 s, one per window beyond."""
    from tqdm import tqdm

    from audiocap.audio.io import stream_audio

    if len(checkpoints) != 1:
        raise ExportError("the onnx backend captions with one model; drop --ensemble or use --backend torch")
    pipe = OnnxCaptionPipeline(onnx_folder(checkpoints[0], "captioner"), beam=beam, **kw)
    out: list[Any] = []
    for f in tqdm(list(files), desc="captioning", unit="file", disable=not progress):
        out += pipe.caption_stream(stream_audio(f, sr=pipe.tower.sample_rate), name=str(f), per_window=per_window)
    return out
