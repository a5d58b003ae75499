"""Greedy and batched beam search over any step-wise scorer (apart from the models).

A *scorer* gives next-token log-probabilities one step at a time and carries its own state
(the captioner's per-layer key/value cache, an ensemble's list of caches, a toy table):

- ``scorer.step(tokens (N,), state) -> (log_probs (N, V), state)``
- ``scorer.select(state, index (N',)) -> state`` keeps/reorders/duplicates rows.
- attributes ``bos_id``, ``eos_id``, ``pad_id``.

Beam search (the DCASE captioning systems use k = 3) keeps the k best live prefixes of every
item in one batch of B·k rows, so one model call scores every hypothesis of every item, and
the cached decoder states are reordered with ``select`` instead of recomputed. Finished
hypotheses are ranked by ``logprob / length**alpha`` (length counts the generated tokens
including ``<eos>``; alpha = 0 is plain log-probability, Wu et al. 2016 use a similar
length penalty). Search for an item stops when its k finished hypotheses cannot be beaten
by any continuation of its live beams; hypotheses that reach ``max_len`` without ``<eos>``
are returned with ``finished=False`` rather than dropped, ranked after every finished one.

``no_repeat_ngram = n`` (> 0) forbids a token that would repeat an n-gram already in the
prefix (the "no_repeat_ngram_size" of fairseq and Hugging Face generation): with n = 3 a
caption cannot say "a drum beats as a drum beats".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor


class Scorer(Protocol):
    """What greedy and beam search need from a model (see the module docstring)."""

    bos_id: int
    eos_id: int
    pad_id: int

    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]: ...

    def select(self, state: Any, index: Tensor) -> Any: ...


@dataclass
class Hypothesis:
    """A decoded token sequence (without ``<bos>``/``<eos>``) and its scores."""

    tokens: list[int]
    logprob: float  # sum of token log-probabilities, <eos> included when finished
    score: float  # logprob / length**alpha
    finished: bool  # ended with <eos> (False: cut at max_len)


@torch.no_grad()
def greedy_search(scorer: Scorer, state: Any, batch_size: int, *, max_len: int,
                  no_repeat_ngram: int = 0) -> list[Hypothesis]:
    """Pick the most probable next token at every step for a batch of ``batch_size`` items.

    Greedy decoding of an autoregressive captioner (the DCASE 2024 Task 6 baseline's default);
    stops when every item emitted ``<eos>`` or after ``max_len`` generated tokens.
    """
    device = _device(scorer, state)
    tokens = torch.full((batch_size,), scorer.bos_id, dtype=torch.long, device=device)
    out = torch.full((batch_size, max_len), scorer.pad_id, dtype=torch.long)
    logprob = torch.zeros(batch_size, dtype=torch.float64)
    done = torch.zeros(batch_size, dtype=torch.bool)
    for t in range(max_len):
        logp, state = scorer.step(tokens, state)  # (B, V)
        if no_repeat_ngram > 0:
            logp = _ban(logp.double().cpu(), [out[b, :t].tolist() for b in range(batch_size)], no_repeat_ngram)
        best, tokens = logp.max(dim=-1)  # (B,)
        tokens = tokens.to(device)
        live = ~done
        out[live, t] = tokens.cpu()[live]
        logprob[live] += best.double().cpu()[live]
        done |= tokens.cpu() == scorer.eos_id
        if bool(done.all()):
            break
    hyps = []
    for b in range(batch_size):
        seq = out[b].tolist()
        finished = scorer.eos_id in seq
        seq = seq[: seq.index(scorer.eos_id)] if finished else [t for t in seq if t != scorer.pad_id]
        hyps.append(Hypothesis(seq, float(logprob[b]), float(logprob[b]), finished))
    return hyps


def banned_repeats(seq: list[int], n: int) -> set[int]:
    """Tokens that would end an n-gram already present in ``seq`` (none when ``n`` < 1)."""
    if n < 1 or len(seq) < n - 1:
        return set()
    prefix = tuple(seq[len(seq) - n + 1:]) if n > 1 else ()
    return {seq[i + n - 1] for i in range(len(seq) - n + 1) if tuple(seq[i:i + n - 1]) == prefix}


def _ban(logp: Tensor, seqs: list[list[int]], n: int) -> Tensor:
    """``logp`` (N, V) on the CPU with the tokens :func:`banned_repeats` forbids set to -inf."""
    if n < 1:
        return logp
    for r, seq in enumerate(seqs):
        banned = banned_repeats(seq, n)
        if banned:
            logp[r, list(banned)] = float("-inf")
    return logp


@torch.no_grad()
def beam_search(scorer: Scorer, state: Any, batch_size: int, *, beam: int = 3, alpha: float = 0.0,
                max_len: int = 30, n_best: int = 1, no_repeat_ngram: int = 0) -> list[list[Hypothesis]]:
    """Batched beam search; returns the ``n_best`` best hypotheses of each item, best first.

    ``state`` is the scorer's start state for ``batch_size`` items (one row each); it is
    expanded to ``batch_size * beam`` rows. See the module docstring for scoring and stopping.
    """
    k, eos, pad = beam, scorer.eos_id, scorer.pad_id
    device = _device(scorer, state)
    rows = torch.arange(batch_size, device=device).repeat_interleave(k)  # (B*k,)
    state = scorer.select(state, rows)
    tokens = torch.full((batch_size * k,), scorer.bos_id, dtype=torch.long, device=device)
    seqs: list[list[int]] = [[] for _ in range(batch_size * k)]
    scores = torch.full((batch_size, k), float("-inf"), dtype=torch.float64)
    scores[:, 0] = 0.0  # all beams start identical: only the first one is live
    finished: list[list[Hypothesis]] = [[] for _ in range(batch_size)]
    done = [False] * batch_size
    norm_max = max_len ** alpha
    for t in range(1, max_len + 1):
        logp, state = scorer.step(tokens, state)  # (B*k, V)
        vocab = logp.shape[-1]
        logp = _ban(logp.double().cpu(), seqs, no_repeat_ngram)
        cand = (scores.view(-1, 1) + logp).view(batch_size, k * vocab)  # (B, k*V)
        top_s, top_i = cand.topk(min(2 * k, k * vocab), dim=-1)
        top_s, top_i = top_s.tolist(), top_i.tolist()
        pick_row, pick_tok, new_scores = [], [], []
        for b in range(batch_size):
            live: list[tuple[float, int, int]] = []
            if not done[b]:
                for s, i in zip(top_s[b], top_i[b]):
                    if s == float("-inf"):
                        break
                    j, tok = divmod(i, vocab)
                    if tok == eos:
                        _keep(finished[b], Hypothesis(list(seqs[b * k + j]), s, s / t ** alpha, True), k)
                    else:
                        live.append((s, j, tok))
                        if len(live) == k:
                            break
                bound = live[0][0] / norm_max if live else float("-inf")
                if len(finished[b]) >= k and finished[b][-1].score >= bound:
                    done[b], live = True, []
                elif not live:
                    done[b] = True
            live += [(float("-inf"), 0, pad)] * (k - len(live))
            for s, j, tok in live:
                pick_row.append(b * k + j)
                pick_tok.append(tok)
                new_scores.append(s)
        if all(done):
            break
        index = torch.tensor(pick_row, device=device)
        state = scorer.select(state, index)
        seqs = [seqs[r] + [tok] for r, tok in zip(pick_row, pick_tok)]
        tokens = torch.tensor(pick_tok, dtype=torch.long, device=device)
        scores = torch.tensor(new_scores, dtype=torch.float64).view(batch_size, k)
    for b in range(batch_size):  # beams that hit max_len without <eos>: kept, marked unfinished
        if not done[b]:
            for j in range(k):
                s = float(scores[b, j])
                if s > float("-inf"):
                    finished[b].append(Hypothesis(list(seqs[b * k + j]), s, s / norm_max, False))
    # hypotheses that ended with <eos> rank before any cut at max_len
    return [sorted(f, key=lambda h: (not h.finished, -h.score))[:n_best] for f in finished]


def _keep(pool: list[Hypothesis], hyp: Hypothesis, k: int) -> None:
    """Insert ``hyp`` into ``pool`` sorted best first, keeping at most ``k``."""
    pool.append(hyp)
    pool.sort(key=lambda h: -h.score)
    del pool[k:]


def _device(scorer: Scorer, state: Any) -> torch.device:
    return getattr(scorer, "device", torch.device("cpu"))
