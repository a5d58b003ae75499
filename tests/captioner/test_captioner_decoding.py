"""Greedy / beam search on a toy scorer with a known next-token table, and ensembles."""

from __future__ import annotations

import itertools
import math

import torch

from audiocap.decoding import CaptionerScorer, EnsembleScorer, beam_search, greedy_search
from audiocap.models.captioner import Captioner, CaptionerConfig

PAD, BOS, EOS = 0, 1, 2


class TableScorer:
    """Next-token log-probabilities depend only on the previous token (a fixed table)."""

    bos_id, eos_id, pad_id = BOS, EOS, PAD

    def __init__(self, table: torch.Tensor) -> None:
        self.table = table.log()  # (V, V): row = previous token

    def step(self, tokens, state):
        return self.table[tokens], state

    def select(self, state, index):
        return state


def enumerate_best(table: torch.Tensor, max_len: int, alpha: float):
    """Exhaustive optimum over every sequence of <= max_len generated tokens."""
    logt = table.log()
    v = table.shape[0]
    words = [w for w in range(v) if w not in (PAD, BOS, EOS)]
    best = (-math.inf, None)
    for n in range(0, max_len):  # n words then <eos>
        for seq in itertools.product(words, repeat=n):
            prev, lp = BOS, 0.0
            for w in (*seq, EOS):
                lp += float(logt[prev, w])
                prev = w
            score = lp / (n + 1) ** alpha
            if score > best[0]:
                best = (score, list(seq))
    return best


def toy_table(seed: int, v: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(v, v, generator=g) ** 3 + 1e-3
    t[:, PAD] = 1e-9
    t[:, BOS] = 1e-9
    return t / t.sum(1, keepdim=True)


def test_beam_finds_greedy_trap():
    # from <bos>: word 3 (0.6) then anything flat; word 4 (0.4) then <eos> surely.
    v = 6
    t = torch.full((v, v), 1e-9)
    t[BOS, 3], t[BOS, 4] = 0.6, 0.4
    t[3, 3:6] = 1 / 3
    t[3, EOS] = 1e-9
    t[4, EOS] = 1.0
    t[5, EOS] = 1.0
    t = t / t.sum(1, keepdim=True)
    sc = TableScorer(t)
    greedy = greedy_search(sc, None, 1, max_len=4)[0]
    best = beam_search(sc, None, 1, beam=3, max_len=4)[0][0]
    assert greedy.tokens[0] == 3
    assert best.tokens == [4] and best.finished
    assert abs(best.logprob - math.log(0.4)) < 1e-6
    assert best.tokens == enumerate_best(t, 4, 0.0)[1]


def test_beam_equals_exhaustive_optimum_on_random_tables():
    for seed in range(6):
        t = toy_table(seed)
        for alpha in (0.0, 1.0):
            score, seq = enumerate_best(t, 4, alpha)
            hyps = beam_search(TableScorer(t), None, 1, beam=27, alpha=alpha, max_len=4)
            assert hyps[0][0].tokens == seq, (seed, alpha)
            assert abs(hyps[0][0].score - score) < 1e-9


def test_beam_batched_items_are_independent():
    t = toy_table(3)
    single = beam_search(TableScorer(t), None, 1, beam=3, max_len=5)[0][0]
    batch = beam_search(TableScorer(t), None, 4, beam=3, max_len=5)
    assert all(b[0].tokens == single.tokens for b in batch)


def test_unfinished_hypothesis_is_kept_not_dropped():
    v = 5
    t = torch.full((v, v), 1e-9)
    t[:, 3] = 1.0  # never ends
    t = t / t.sum(1, keepdim=True)
    hyp = beam_search(TableScorer(t), None, 1, beam=2, max_len=3)[0][0]
    assert hyp.tokens == [3, 3, 3] and not hyp.finished
    g = greedy_search(TableScorer(t), None, 1, max_len=3)[0]
    assert g.tokens == [3, 3, 3] and not g.finished


def _model(seed: int) -> Captioner:
    torch.manual_seed(seed)
    return Captioner(CaptionerConfig(vocab_size=25, frame_dim=8, d_model=32, heads=4, ff_dim=64,
                                     max_len=10, proj_dim=8)).eval()


def test_ensemble_with_itself_equals_the_model_and_beam_runs_on_captioner():
    frames, mask = torch.randn(3, 7, 8), torch.ones(3, 7, dtype=torch.bool)
    one = CaptionerScorer(_model(0))
    ens = EnsembleScorer([one, CaptionerScorer(_model(0))])
    a = beam_search(one, one.start(frames, mask), 3, beam=3, max_len=9)
    b = beam_search(ens, ens.start(frames, mask), 3, beam=3, max_len=9)
    for x, y in zip(a, b):
        assert x[0].tokens == y[0].tokens
        assert abs(x[0].logprob - y[0].logprob) < 1e-4
    ga = greedy_search(one, one.start(frames, mask), 3, max_len=9)
    gb = greedy_search(ens, ens.start(frames, mask), 3, max_len=9)
    assert [h.tokens for h in ga] == [h.tokens for h in gb]


def test_ensemble_averages_log_probs():
    frames, mask = torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool)
    m0, m1 = CaptionerScorer(_model(0)), CaptionerScorer(_model(1))
    ens = EnsembleScorer([m0, m1])
    tok = torch.full((2,), BOS)
    l0, _ = m0.step(tok, m0.start(frames, mask))
    l1, _ = m1.step(tok, m1.start(frames, mask))
    le, _ = ens.step(tok, ens.start(frames, mask))
    torch.testing.assert_close(le, (l0 + l1) / 2)


def test_banned_repeats_are_the_tokens_that_would_repeat_an_ngram():
    from audiocap.decoding.beam import banned_repeats

    assert banned_repeats([7, 8, 9, 7, 8], 3) == {9}  # "7 8 9 ... 7 8" may not go on with 9
    assert banned_repeats([7, 8, 9, 7, 8, 5, 7, 8], 3) == {9, 5}
    assert banned_repeats([7, 8, 9], 1) == {7, 8, 9}
    assert banned_repeats([7, 8], 3) == set() and banned_repeats([7, 8, 7, 8], 0) == set()


def test_no_repeat_ngram_stops_a_caption_from_looping():
    # The table loves the loop 3 -> 4 -> 3 -> 4 ...; <eos> only after 5. Plain search repeats
    # "3 4 3"; with no_repeat_ngram=3 no trigram occurs twice in any result.
    v = 6
    t = torch.full((v, v), 1e-9)
    t[BOS, 3] = 1.0
    t[3, 4], t[3, 5] = 0.9, 0.1
    t[4, 3], t[4, 5] = 0.8, 0.2
    t[5, EOS] = 1.0
    t = t / t.sum(1, keepdim=True)
    sc = TableScorer(t)
    plain = greedy_search(sc, None, 1, max_len=8)[0]
    assert plain.tokens == [3, 4] * 4 and not plain.finished  # loops until max_len
    fixed = greedy_search(sc, None, 1, max_len=8, no_repeat_ngram=3)[0]
    assert fixed.tokens == [3, 4, 3, 4, 5] and fixed.finished  # "3 4 3" may not come back
    assert abs(fixed.logprob - math.log(0.9 * 0.8 * 0.9 * 0.2)) < 1e-6
    for hyp in beam_search(sc, None, 1, beam=3, max_len=8, n_best=3, no_repeat_ngram=3)[0]:
        grams = [tuple(hyp.tokens[i:i + 3]) for i in range(len(hyp.tokens) - 2)]
        assert len(grams) == len(set(grams)) and hyp.finished, hyp.tokens


def test_search_builds_no_autograd_graph():
    # Decoding runs under torch.no_grad whoever calls it: no graph (memory) grows over the steps.
    seen = []

    class Recording(TableScorer):
        def step(self, tokens, state):
            seen.append(torch.is_grad_enabled())
            return super().step(tokens, state)

    sc = Recording(toy_table(0))
    beam_search(sc, None, 2, beam=3, max_len=4, no_repeat_ngram=2)
    greedy_search(sc, None, 2, max_len=4, no_repeat_ngram=2)
    assert seen and not any(seen)
