"""WSAC inference: turn an audio embedding into a decoder input, then decode words.

Kouzelis & Katsouros, "Weakly-supervised Automated Audio Captioning via text only training"
(DCASE 2023). The decoder was trained on text embeddings only; at inference an audio
embedding of the same contrastive space is fed to it in one of three ways:

- ``direct``: the audio embedding itself (optionally after the training-time shift);
- ``nnd`` (nearest-neighbour decoding): the training-caption text embedding closest to the
  audio embedding in a memory;
- ``projection``: softmax(sim/τ)-weighted mean of the memory embeddings, re-normalized;
  as τ → 0 it reduces to NND.

The memory is searched by inner product over L2-normalized vectors (cosine similarity).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from audiocap.models.prefix_decoder import PrefixDecoder

Strategy = Literal["direct", "nnd", "projection"]
STRATEGIES = ("direct", "nnd", "projection")


class CaptionMemory:
    """Normalized training-caption embeddings (N, D) searched by cosine similarity."""

    def __init__(self, embeddings: torch.Tensor, captions: list[str] | None = None) -> None:
        if embeddings.ndim != 2 or embeddings.shape[0] == 0:
            raise ValueError(f"memory must be a non-empty (N, D) tensor, got {tuple(embeddings.shape)}")
        if captions is not None and len(captions) != embeddings.shape[0]:
            raise ValueError(f"{len(captions)} captions for {embeddings.shape[0]} memory embeddings")
        self.embeddings = F.normalize(embeddings.float(), dim=-1)  # (N, D)
        self.captions = captions

    def __len__(self) -> int:
        return self.embeddings.shape[0]

    def search(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-``k`` cosine similarities and memory ids for queries (B, D): ((B, k), (B, k))."""
        sims = F.normalize(queries.float(), dim=-1) @ self.embeddings.T  # (B, N)
        return sims.topk(min(k, len(self)), dim=-1)


def nearest_neighbour(queries: torch.Tensor, memory: CaptionMemory) -> torch.Tensor:
    """NND (Kouzelis & Katsouros, 2023): replace each query (B, D) by its nearest memory embedding."""
    _, ids = memory.search(queries, 1)
    return memory.embeddings[ids[:, 0]]  # (B, D)


def projection_weights(sims: torch.Tensor, tau: float) -> torch.Tensor:
    """softmax(sims / τ) over the last axis: the weights of WSAC's projection decoding."""
    if tau <= 0:
        raise ValueError(f"projection temperature must be > 0, got {tau}")
    return torch.softmax(sims / tau, dim=-1)


def project_on_memory(
    queries: torch.Tensor, memory: CaptionMemory, *, tau: float, k: int | None = None
) -> torch.Tensor:
    """Projection decoding (Kouzelis & Katsouros, 2023): Σ softmax(sim/τ)·m over the memory.

    Queries (B, D) -> normalized (B, D). ``k`` limits the sum to the ``k`` most similar items
    (None = the whole memory); items outside the top k have negligible weight for small τ.
    """
    sims, ids = memory.search(queries, k or len(memory))  # (B, k)
    w = projection_weights(sims, tau)  # (B, k)
    mixed = torch.einsum("bk,bkd->bd", w, memory.embeddings[ids])
    return F.normalize(mixed, dim=-1)


def decoder_input(
    audio_emb: torch.Tensor,
    strategy: Strategy,
    *,
    memory: CaptionMemory | None = None,
    tau: float = 0.01,
    k: int | None = None,
    shift: torch.Tensor | None = None,
) -> torch.Tensor:
    """Map audio embeddings (B, D) to the decoder's input (B, D) with a WSAC strategy.

    ``direct`` passes the embedding, minus ``shift`` when given (an inference-time Δgap
    for a model trained on unshifted text; a model trained with the shift takes None);
    ``nnd`` and ``projection`` need the training-caption ``memory``.
    """
    if strategy == "direct":
        return audio_emb if shift is None else audio_emb - shift.to(audio_emb)
    if memory is None:
        raise ValueError(f"strategy '{strategy}' needs a caption memory")
    if strategy == "nnd":
        return nearest_neighbour(audio_emb, memory)
    if strategy == "projection":
        return project_on_memory(audio_emb, memory, tau=tau, k=k)
    raise ValueError(f"unknown strategy '{strategy}'; use one of {', '.join(STRATEGIES)}")


class PrefixScorer:
    """Step-wise next-word log-probabilities of a :class:`PrefixDecoder` for a search routine.

    State = (embeddings (N, E), tokens so far (N, t)); each step re-runs the short causal
    Transformer over the whole prefix (captions are < 32 tokens, so no key/value cache).
    """

    def __init__(self, model: PrefixDecoder, *, bos_id: int = 1, eos_id: int = 2, pad_id: int = 0) -> None:
        self.model = model.eval()
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def start(self, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Initial state for embeddings (B, E): no tokens yet."""
        return emb.to(self.device), torch.zeros(emb.shape[0], 0, dtype=torch.long, device=self.device)

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, state):
        """Append one token per row (N,) -> log-probabilities (N, V) of the next one, new state."""
        emb, seq = state
        seq = torch.cat([seq, tokens.to(seq.device)[:, None]], dim=1)  # (N, t+1)
        return self.model(emb, seq)[:, -1].float().log_softmax(-1), (emb, seq)

    def select(self, state, index: torch.Tensor):
        """Keep/reorder/duplicate rows of the state."""
        emb, seq = state
        return emb[index], seq[index]


class WSAC:
    """A loaded WSAC checkpoint: decoder, vocabulary, caption memory and gap statistics."""

    def __init__(self, model: PrefixDecoder, vocab, memory: CaptionMemory, *, space: str,
                 gap: dict, recipe: dict) -> None:
        self.model, self.vocab, self.memory = model.eval(), vocab, memory
        self.space, self.gap, self.recipe = space, gap, recipe

    @torch.no_grad()
    def caption_embeddings(self, emb: torch.Tensor, *, strategy: Strategy = "direct", tau: float = 0.01,
                           k: int | None = None, beam: int = 3, batch_size: int = 64) -> list[str]:
        """Captions for joint-space embeddings (B, D) (audio or text) with a WSAC strategy.

        Kouzelis & Katsouros (2023): direct, nearest-neighbour (NND) or projection decoding.
        """
        from audiocap.decoding.beam import beam_search, greedy_search

        v = self.vocab
        scorer = PrefixScorer(self.model, bos_id=v.bos_id, eos_id=v.eos_id, pad_id=v.pad_id)
        max_len = self.model.cfg.max_len - 1  # generated tokens incl. <eos>; <bos> takes one position
        out: list[str] = []
        for i in range(0, emb.shape[0], batch_size):
            x = decoder_input(emb[i : i + batch_size].float().to(self.memory.embeddings.device), strategy,
                              memory=self.memory, tau=tau, k=k)
            state = scorer.start(x)
            if beam <= 1:
                hyps = greedy_search(scorer, state, x.shape[0], max_len=max_len)
            else:
                hyps = [h[0] for h in beam_search(scorer, state, x.shape[0], beam=beam, max_len=max_len)]
            # WSAC captions never show <unk> (the decoder may predict it for rare training words)
            out.extend(v.decode(t for t in h.tokens if t != v.unk_id) for h in hyps)
        return out


def load_wsac(folder, *, device: str | torch.device = "cpu") -> WSAC:
    """Load a ``wsac`` checkpoint folder written by :func:`audiocap.train.wsac.train_wsac`."""
    from audiocap.checkpoint import RECOPY, CheckpointError, load_checkpoint, load_weights, read_extra
    from audiocap.models.prefix_decoder import PrefixDecoderConfig
    from audiocap.text.vocab import Vocab

    state, recipe = load_checkpoint(folder, kind="wsac", device=device)
    model = read_extra(folder, "decoder", lambda cfg: PrefixDecoder(PrefixDecoderConfig(**cfg))).to(device)
    load_weights(model, {k[6:]: v for k, v in state.items() if k.startswith("model.")}, folder)
    if "memory.embeddings" not in state:
        raise CheckpointError(f"{folder}/model.safetensors: no memory.embeddings tensor; {RECOPY}")
    memory = read_extra(folder, "memory_captions",
                        lambda captions: CaptionMemory(state["memory.embeddings"], list(captions)))
    gap = read_extra(folder, "gap", dict)
    if "gap.shift" in state:
        gap["shift"] = state["gap.shift"]
    # checkpoints of the first WSAC release stored {"itos": [...]} with the same four specials first
    vocab = read_extra(folder, "vocab", lambda w: Vocab(list(w["itos"])) if "itos" in w else Vocab.from_json(w))
    data = recipe.get("data")
    space = data.get("space") if isinstance(data, dict) else None
    if not isinstance(space, str) or not (space == "minilm" or space.startswith("clap:")):
        raise CheckpointError(f"{folder}/recipe.yaml: data.space must name the embedding space the decoder reads "
                              f"(minilm or clap:FOLDER), got {space!r}; {RECOPY}")
    return WSAC(model, vocab, memory, space=space, gap=gap, recipe=recipe)


def caption_files(files, checkpoints, *, beam: int = 3, per_window: bool = False, progress: bool = False,
                  strategy: Strategy = "direct", tau: float = 0.01, k: int | None = None, device: str = "cpu",
                  **_: object):
    """Caption audio ``files`` with one WSAC checkpoint (the ``audiocap caption`` entry for kind ``wsac``).

    Each file is embedded by the CLAP model of the checkpoint's space through that model's
    long-audio policy (windows, normalized mean: :func:`audiocap.inference.clap.embed_clip`, as
    search and serving embed it), mapped to a decoder input by ``strategy`` (direct / nnd /
    projection, Kouzelis & Katsouros 2023) and decoded with beam search on ``device``. Returns
    :class:`audiocap.decoding.result.Caption` records.
    """
    from tqdm import tqdm

    from audiocap.audio.io import audio_info, load_audio
    from audiocap.audio.nonevent import ANALYSIS_SR, SILENCE_CAPTION, judge
    from audiocap.decoding.result import Caption
    from audiocap.checkpoint import CheckpointError
    from audiocap.inference.shared_space import audio_embedder

    if len(checkpoints) != 1:
        raise CheckpointError(f"{checkpoints[1]}: WSAC checkpoints are not ensembled; pass one --model")
    if per_window:
        raise CheckpointError(f"{checkpoints[0]}: WSAC captions whole files (CLAP pools the file); drop --per-window")
    wsac = load_wsac(checkpoints[0], device=device)
    embed = audio_embedder(wsac.space, device=device)
    out = []
    for f in tqdm(list(files), desc="captioning", unit="file", disable=not progress):
        j = judge(load_audio(f, sr=ANALYSIS_SR), ANALYSIS_SR)  # silence / non-event (audiocap.audio.nonevent)
        text = SILENCE_CAPTION if j.flag == "silence" else wsac.caption_embeddings(
            embed([f]), strategy=strategy, tau=tau, k=k, beam=beam)[0]
        out.append(Caption(str(f), 0.0, round(audio_info(f).duration, 3), text, None, True, j.flag, j.confidence))
    return out
