"""Export CLAP and captioner checkpoints to ONNX (issue 18): ``audiocap export onnx``.

A checkpoint becomes a folder of ONNX graphs plus ``model_card.json``; :mod:`audiocap.onnx_backend`
runs it with ONNX Runtime. The frozen aisfx tower is split where its shapes stop being tensor
arithmetic: ``frontend.onnx`` (waveform (B, N) -> log-mel (B, T, 96), ONNX's STFT operator, any
length) and ``audio_tower.onnx`` (mel windows (W, 100, 96) -> window embeddings (W, 512)); cutting the log-mel
frames into windows (:func:`audiocap.encoders.aisfx.frame_windows`) is a few slices done in Python.

- CLAP: ``clap_audio_head.onnx`` (window embeddings (B, W, 512) + mask -> unit embedding (B, E):
  adapter, pooling, head) and ``clap_text.onnx`` (token ids + mask -> unit embedding; MiniLM +
  head; the tokenizer is saved beside it and stays in Python).
- Captioner: ``captioner_encoder.onnx`` (frames (B, T, 512), all valid -> memory and every decoder
  layer's cross-attention keys/values) and ``captioner_step.onnx`` (one token per row with the
  self-attention key/value cache -> log-probabilities and the extended cache), which
  :func:`audiocap.decoding.beam_search` drives like the torch scorer.

Graphs are traced with the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``): the
dynamo exporter needs the ``onnxscript`` package, which audiocap does not install. Each graph is
checked against torch at export time on inputs of other sizes than the trace, so an axis frozen
by tracing fails the export instead of giving wrong numbers later; the differences are in the card.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiocap.fileio import atomic_path, atomic_write_json, file_hash

OPSET = 17
CARD = "model_card.json"
FORMAT = "audiocap-onnx/1"
EXPORT_TOLERANCE = 1e-3  # a traced graph further than this from torch is broken, not imprecise


class ExportError(ValueError):
    """The checkpoint cannot be exported (unsupported tower, a graph that does not match torch)."""


def session(path: str | os.PathLike, *, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session for ``path`` with ``threads`` intra-op threads (default: torch's)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError("the onnxruntime package is not installed; run: pip install -e '.[onnx]' "
                          "(make setup installs it)") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class FrontEndGraph(nn.Module):
    """:class:`audiocap.encoders.frontend.AisfxFrontEnd` in a form the exporter maps onto ONNX's
    STFT operator for any length: the centring pad is explicit and the spectrum comes as real and
    imaginary parts (the TorchScript exporter has no complex tensors)."""

    def __init__(self, frontend: nn.Module) -> None:
        super().__init__()
        self.register_buffer("window", frontend.window.clone())
        self.register_buffer("melW", frontend.melW.clone())
        self.n_fft, self.hop = frontend.n_fft, frontend.hop
        self.scale, self.peak_normalize = frontend.scale, frontend.peak_normalize

    def forward(self, wave: Tensor) -> Tensor:
        if self.peak_normalize:
            peak = wave.abs().amax(dim=-1, keepdim=True)
            wave = wave / torch.where(peak > 0, peak, torch.ones_like(peak))
        x = F.pad(wave[:, None, :], (self.n_fft // 2, self.n_fft // 2))[:, 0]  # center=True, constant padding
        spec = torch.stft(x, self.n_fft, self.hop, window=self.window, center=False, onesided=True,
                          return_complex=False)  # (B, F, T, 2)
        mel = torch.matmul((spec * spec).sum(-1).transpose(1, 2), self.melW)  # (B, T, 96)
        return torch.log10(1e4 * mel + 1.0) / self.scale


class ClapAudioHead(nn.Module):
    """Window embeddings (B, W, D) + validity mask (B, W) -> unit CLAP audio embedding (B, E)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: Tensor, mask: Tensor) -> Tensor:
        return self.model.encode_audio(frame_embs=frames, mask=mask)


class ClapText(nn.Module):
    """Token ids + attention mask (B, L) -> unit CLAP text embedding (B, E)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.model.encode_text({"input_ids": input_ids, "attention_mask": attention_mask})


class CaptionerEncoder(nn.Module):
    """Frames (B, T, F), every frame valid -> memory (B, T, d) and the cross-attention keys and
    values of every decoder layer, stacked (L, B, H, T, hd). The GRU runs unpacked: with no
    padding that is what ``pack_padded_sequence`` computes, and it keeps T dynamic."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        enc = self.model.encoder
        if enc.kind == "gru":
            memory = enc.out_norm(enc.rnn(enc.inp(frames))[0])
        else:
            memory = enc(frames, torch.ones(frames.shape[:2], dtype=torch.bool, device=frames.device))
        keys, values = zip(*(layer.memory_kv(memory) for layer in self.model.layers))
        return memory, torch.stack(keys), torch.stack(values)


class CaptionerStep(nn.Module):
    """One decoding step: tokens (N,) at ``position`` (1,) after the cached prefix
    (L, N, H, P, hd) -> log-probabilities (N, V) and the cache extended to P + 1."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, position: Tensor, past_k: Tensor, past_v: Tensor, cross_k: Tensor,
                cross_v: Tensor, memory_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        m = self.model
        x = m.word_emb(tokens[:, None]) + m.pos_emb(position)[None]  # (N, 1, d)
        keys, values = [], []
        for i, layer in enumerate(m.layers):
            x, (k, v) = layer(x, (past_k[i], past_v[i]), (cross_k[i], cross_v[i]), memory_mask)
            keys.append(k)
            values.append(v)
        logits = m.classifier(m.ln_f(x))[:, -1]
        return torch.log_softmax(logits.float(), dim=-1), torch.stack(keys), torch.stack(values)


def checkpoint_sha256(folder: str | os.PathLike) -> str:
    """SHA-256 of a checkpoint folder's ``model.safetensors`` (what an index records too)."""
    return file_hash(Path(folder) / "model.safetensors")


def _export(module: nn.Module, args: tuple[Tensor, ...], path: Path, inputs: list[str], outputs: list[str],
            axes: dict[str, dict[int, str]]) -> None:
    with warnings.catch_warnings(), torch.no_grad(), atomic_path(path, suffix=".onnx") as tmp:
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(module.eval(), args, str(tmp), dynamo=False, opset_version=OPSET, input_names=inputs,
                          output_names=outputs, dynamic_axes=axes, do_constant_folding=True)


def _check(module: nn.Module, path: Path, feeds: dict[str, Tensor]) -> float:
    """Max abs difference between torch and ONNX Runtime on ``feeds`` (other sizes than the trace)."""

    with torch.no_grad():
        ref = module.eval()(*feeds.values())
    ref = ref if isinstance(ref, tuple) else (ref,)
    got = session(path, threads=1).run(None, {k: v.numpy() for k, v in feeds.items()})
    diff = max(float(np.abs(g - r.numpy()).max()) if g.size else 0.0 for g, r in zip(got, ref))
    if not diff <= EXPORT_TOLERANCE:
        raise ExportError(f"{path}: the exported graph differs from torch by {diff:.3g} (> {EXPORT_TOLERANCE}) "
                          "on inputs of another size; this model has a shape the exporter froze, report it")
    return diff


def _io(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Names, element types and shapes (numbers or axis names) of a graph's inputs and outputs."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph

    def describe(values) -> list[dict[str, Any]]:
        out = []
        for v in values:
            t = v.type.tensor_type
            shape = [d.dim_param or d.dim_value for d in t.shape.dim]
            out.append({"name": v.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name,
                        "shape": shape})
        return out

    return {"inputs": describe(graph.input), "outputs": describe(graph.output)}


def _tower_graphs(tower: nn.Module, out: Path, parity: dict[str, float]) -> dict[str, Any]:
    """frontend.onnx and audio_tower.onnx of an aisfx tower; returns the card's tower section."""
    from audiocap.encoders.aisfx import WINDOW_FRAMES, AisfxTower

    if not isinstance(tower, AisfxTower):
        raise ExportError(f"ONNX export supports the aisfx audio tower only, not {type(tower).__name__}; "
                          "use --backend torch for this model")
    gen = torch.Generator().manual_seed(0)
    fe = FrontEndGraph(tower.frontend)
    _export(fe, (torch.randn(2, 44100, generator=gen),), out / "frontend.onnx", ["wave"], ["logmel"],
            {"wave": {0: "batch", 1: "samples"}, "logmel": {0: "batch", 1: "frames"}})
    parity["frontend"] = _check(tower.frontend, out / "frontend.onnx",
                                {"wave": 0.3 * torch.randn(3, 100_000, generator=gen)})
    n_mels = tower.frontend.n_mels
    _export(tower.net, (torch.rand(3, WINDOW_FRAMES, n_mels, generator=gen),), out / "audio_tower.onnx",
            ["mel_windows"], ["window_embs"], {"mel_windows": {0: "windows"}, "window_embs": {0: "windows"}})
    parity["audio_tower"] = _check(tower.net, out / "audio_tower.onnx",
                                   {"mel_windows": torch.rand(5, WINDOW_FRAMES, n_mels, generator=gen)})
    return {"name": "aisfx", "sample_rate": int(tower.sample_rate), "window_frames": WINDOW_FRAMES,
            "hop_frames": int(tower.hop_frames), "frame_dim": int(tower.frame_dim),
            "peak_normalize": bool(tower.frontend.peak_normalize)}


def _export_clap(folder: Path, out: Path, parity: dict[str, float]) -> dict[str, Any]:
    from audiocap.inference.clap import load_clap

    model = load_clap(folder).float().eval()
    card = {"tower": _tower_graphs(model.audio_tower, out, parity)}
    gen = torch.Generator().manual_seed(1)
    d = model.audio_tower.frame_dim
    mask = torch.ones(2, 4, dtype=torch.bool)
    mask[1, 3:] = False
    _export(ClapAudioHead(model), (torch.randn(2, 4, d, generator=gen), mask), out / "clap_audio_head.onnx",
            ["frames", "mask"], ["embedding"],
            {"frames": {0: "batch", 1: "windows"}, "mask": {0: "batch", 1: "windows"}, "embedding": {0: "batch"}})
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[2, 2:] = False
    parity["clap_audio_head"] = _check(ClapAudioHead(model), out / "clap_audio_head.onnx",
                                       {"frames": torch.randn(3, 6, d, generator=gen), "mask": mask})
    tower = model.text_tower
    tok = tower.tokenize(["a dog barks", "rain falls on a tin roof"])
    _export(ClapText(model), (tok["input_ids"], tok["attention_mask"]), out / "clap_text.onnx",
            ["input_ids", "attention_mask"], ["embedding"],
            {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
             "embedding": {0: "batch"}})
    tok = tower.tokenize(["footsteps on gravel", "a car engine starts, idles and stops", "wind"])
    parity["clap_text"] = _check(ClapText(model), out / "clap_text.onnx", dict(tok))
    tower._tokenizer.save_pretrained(str(out / "tokenizer"))
    calibration = folder / "calibration.json"
    if calibration.is_file():
        shutil.copyfile(calibration, out / "calibration.json")
    card |= {"audio_policy": model.audio_policy.to_dict(), "embed_dim": int(model.cfg.embed_dim),
             "logit_scale": float(model.scale().detach()),
             "text": {"tokenizer": "tokenizer", "max_tokens": tower.max_tokens},
             "calibration": "calibration.json" if calibration.is_file() else None}
    return card


def _export_captioner(folder: Path, out: Path, parity: dict[str, float]) -> dict[str, Any]:
    from audiocap.captioning import load_captioner
    from audiocap.features.towers import load_frame_tower

    loaded = load_captioner(folder)
    model = loaded.model.float().eval()
    tower_cfg = loaded.recipe["tower"]
    card = {"tower": _tower_graphs(load_frame_tower(tower_cfg["name"], tower_cfg.get("options")), out, parity)}
    cfg = model.cfg
    gen = torch.Generator().manual_seed(2)
    _export(CaptionerEncoder(model), (torch.randn(1, 9, cfg.frame_dim, generator=gen),),
            out / "captioner_encoder.onnx", ["frames"], ["memory", "cross_k", "cross_v"],
            {"frames": {0: "batch", 1: "time"}, "memory": {0: "batch", 1: "time"},
             "cross_k": {1: "batch", 3: "time"}, "cross_v": {1: "batch", 3: "time"}})
    parity["captioner_encoder"] = _check(CaptionerEncoder(model), out / "captioner_encoder.onnx",
                                         {"frames": torch.randn(2, 23, cfg.frame_dim, generator=gen)})
    n_layers, heads, hd = len(model.layers), cfg.heads, cfg.d_model // cfg.heads

    def step_inputs(rows: int, past: int, time: int) -> dict[str, Tensor]:
        mask = torch.ones(rows, time, dtype=torch.bool)
        mask[-1, time // 2 :] = False
        kv = lambda n: torch.randn(n_layers, rows, heads, n, hd, generator=gen)  # noqa: E731
        return {"tokens": torch.randint(3, cfg.vocab_size, (rows,), generator=gen),
                "position": torch.tensor([past]), "past_k": kv(past), "past_v": kv(past),
                "cross_k": kv(time), "cross_v": kv(time), "memory_mask": mask}

    axes = {"tokens": {0: "rows"}, "past_k": {1: "rows", 3: "past"}, "past_v": {1: "rows", 3: "past"},
            "cross_k": {1: "rows", 3: "time"}, "cross_v": {1: "rows", 3: "time"},
            "memory_mask": {0: "rows", 1: "time"}, "log_probs": {0: "rows"},
            "new_k": {1: "rows", 3: "past_plus_1"}, "new_v": {1: "rows", 3: "past_plus_1"}}
    feeds = step_inputs(3, 2, 7)
    _export(CaptionerStep(model), tuple(feeds.values()), out / "captioner_step.onnx", list(feeds),
            ["log_probs", "new_k", "new_v"], axes)
    parity["captioner_step"] = max(_check(CaptionerStep(model), out / "captioner_step.onnx", step_inputs(*shape))
                                   for shape in ((6, 0, 11), (2, 5, 4)))
    shutil.copyfile(folder / "vocab.json", out / "vocab.json")
    card |= {"audio_policy": loaded.audio_policy.to_dict(), "vocab": "vocab.json",
             "tokens": {"bos": loaded.vocab.bos_id, "eos": loaded.vocab.eos_id, "pad": loaded.vocab.pad_id},
             "decoder": {"layers": n_layers, "heads": heads, "head_dim": hd, "max_len": cfg.max_len},
             "decode": decode_card(loaded.recipe)}
    return card


def decode_card(recipe: dict) -> dict:
    """The decoding settings of a captioner recipe as an export's card records them."""
    dec = recipe.get("decode", {}) or {}
    return {"beam": int(dec.get("beam", 3)), "alpha": float(dec.get("alpha", 0.0)),
            "max_len": int(dec.get("max_len", 25)), "no_repeat_ngram": int(dec.get("no_repeat_ngram", 0))}


PIPELINE = {  # how the graphs fit together, for runtimes outside audiocap
    "audio": ["resample to sample_rate, mono float32; cut the file into windows by audio_policy "
              "(clip_seconds every hop_seconds; a file no longer than one window is one window; the last "
              "partial window ends at the file's end (last 'overlap') or is kept shorter (last 'shorter'))",
              "frontend: wave (B, N) -> logmel (B, T, 96)",
              "cut logmel into tower.window_frames-frame windows every tower.hop_frames frames, plus one "
              "ending at the last frame if frames remain; pad shorter inputs with zeros to one window",
              "audio_tower: mel_windows (W, 100, 96) -> window_embs (W, 512), regrouped per input (B, W, 512)"],
    "clap": ["clap_audio_head: frames (B, W, 512), mask (B, W) -> embedding (B, E), unit norm; a file of "
             "several policy windows is the re-normalised mean of their embeddings",
             "clap_text: tokenizer/ (padding, truncation at text.max_tokens) -> input_ids, attention_mask "
             "(int64) -> embedding (B, E), unit norm; cosine = dot product"],
    "captioner": ["concatenate the frames of all policy windows of a file along time (audio_policy.combine "
                  "'concat') -> captioner_encoder: frames (1, T, 512) -> memory, cross_k, cross_v",
                  "beam search (decode.beam, decode.alpha, decode.max_len): start from tokens.bos with an "
                  "empty cache (past_k/past_v of length 0), position = cache length; captioner_step returns "
                  "log_probs and the cache extended by one; reorder cache rows when beams are reordered; stop "
                  "at tokens.eos; words from vocab.json"],
}

EXPORTERS: dict[str, Callable[[Path, Path, dict[str, float]], dict[str, Any]]] = {
    "clap": _export_clap, "captioner": _export_captioner}


def export_onnx(model: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Export the checkpoint folder ``model`` (kind clap or captioner) to ONNX graphs in ``out``
    and write ``out/model_card.json`` last, so a folder with a card is a complete export."""
    from audiocap.checkpoint import checkpoint_kind

    for package in ("onnx", "onnxruntime"):
        try:
            __import__(package)
        except ImportError:
            raise ExportError(f"the {package} package is not installed; run: pip install -e '.[onnx]' "
                              "(make setup installs it)") from None
    folder, out = Path(model), Path(out)
    kind = checkpoint_kind(folder, expect=tuple(EXPORTERS))
    if (out / CARD).exists():
        (out / CARD).unlink()  # an interrupted re-export must not look complete
    out.mkdir(parents=True, exist_ok=True)
    parity: dict[str, float] = {}
    card = EXPORTERS[kind](folder, out, parity)
    graphs = {p.stem: {"file": p.name, "sha256": file_hash(p), **_io(p)} for p in sorted(out.glob("*.onnx"))
              if p.stem in parity}
    import onnx
    import onnxruntime

    card = {"format": FORMAT, "kind": kind,
            "source": {"path": str(folder.resolve()), "sha256": checkpoint_sha256(folder)},
            "exporter": "torch.onnx.export (TorchScript tracer, dynamo=False)", "opset": OPSET,
            "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
            "sample_rate": card["tower"]["sample_rate"], **card, "graphs": graphs,
            "pipeline": PIPELINE["audio"] + PIPELINE[kind],
            "export_check": {"max_abs_diff_vs_torch": parity, "inputs": "random, other sizes than the trace"}}
    atomic_write_json(out / CARD, card)
    return out


def read_card(folder: str | os.PathLike) -> dict[str, Any]:
    """The model card of an ONNX export folder; one-line errors name the file and the fix."""
    path = Path(folder) / CARD
    fix = "re-export it with: audiocap export onnx --model CHECKPOINT --out FOLDER"
    if not path.is_file():
        raise ExportError(f"{path}: missing; {fix}")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}: unreadable ({exc}); {fix}") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise ExportError(f"{path}: not an {FORMAT} model card; {fix}")
    for name, graph in card.get("graphs", {}).items():
        if not (Path(folder) / graph["file"]).is_file():
            raise ExportError(f"{Path(folder) / graph['file']}: missing ({name} graph); {fix}")
    return card
