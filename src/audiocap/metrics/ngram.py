"""BLEU, ROUGE-L and CIDEr-D computed with numpy on interned n-grams (no Java, no loops per n-gram).

Each function follows the definitions of coco-caption (Chen et al., 2015), the reference of
DCASE Task 6, down to its conventions: BLEU uses the closest reference length per item (ties to
the shorter), the corpus score sums clipped counts over items, per-item scores apply a brevity
penalty each; CIDEr-D takes its document frequencies from the references of the evaluated
corpus; ROUGE-L uses the maximum LCS precision and recall over the references with beta 1.2.
Inputs are PTB-tokenized by default (:func:`audiocap.text.tokenize.ptb_tokenize`).
"""

from __future__ import annotations

import math

import numpy as np

from audiocap.metrics.base import MetricResult, prepare

_TINY, _SMALL = 1e-15, 1e-9  # coco-caption's guards against 0/0 in BLEU


def _ngram_counts(sents: list[list[str]], n_max: int):
    """Count n-grams of every sentence for orders 1..n_max.

    Returns, per order, ``(sent, gram, count, n_grams)``: parallel arrays over the distinct
    (sentence, n-gram) pairs, with n-grams interned as dense ids < ``n_grams``.
    """
    vocab: dict[str, int] = {}
    lens = np.fromiter((len(s) for s in sents), dtype=np.int64, count=len(sents))
    tok = np.fromiter((vocab.setdefault(w, len(vocab)) for s in sents for w in s), dtype=np.int64)
    n_tok = tok.shape[0]
    sid = np.repeat(np.arange(len(sents)), lens)  # (T,) sentence of each token
    starts = np.cumsum(lens) - lens
    remain = lens[sid] - (np.arange(n_tok) - starts[sid])  # (T,) tokens left incl. this one
    base = len(vocab) + 1
    dense = tok  # (T,) id of the n-gram starting at each position (valid where remain >= n)
    out = []
    for n in range(1, n_max + 1):
        pos = np.nonzero(remain >= n)[0]
        if n == 1:
            code = tok[pos]
        else:
            code = dense[pos] * base + tok[pos + n - 1]
        uniq, inv = np.unique(code, return_inverse=True)
        n_grams = max(len(uniq), 1)
        dense = np.full(n_tok, -1, dtype=np.int64)
        dense[pos] = inv
        key, cnt = np.unique(sid[pos] * n_grams + inv, return_counts=True)
        out.append((key // n_grams, key % n_grams, cnt, n_grams))
    return out


class _Corpus:
    """Token lists and n-gram counts of a tokenized corpus, shared by BLEU and CIDEr-D.

    Sentence i < N is candidate i; then come all references, item by item.
    """

    def __init__(self, candidates: list[str], references: list[list[str]], n: int):
        self.n_items = len(candidates)
        self.sents = [c.split() for c in candidates] + [r.split() for rs in references for r in rs]
        self.n_refs = np.array([len(r) for r in references], dtype=np.int64)
        self.ref_item = np.repeat(np.arange(self.n_items), self.n_refs)  # (R,) item of each ref
        self.counts = _ngram_counts(self.sents, n)


def _lookup(keys_sorted: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values[k] for each query key k present in ``keys_sorted``, else 0."""
    if keys_sorted.size == 0:
        return np.zeros(query.shape, dtype=values.dtype)
    idx = np.minimum(np.searchsorted(keys_sorted, query), keys_sorted.size - 1)
    return np.where(keys_sorted[idx] == query, values[idx], 0)


def bleu(candidates: list[str], references: list[list[str]], *, n: int = 4,
         tokenized: bool = False) -> dict[str, MetricResult]:
    """BLEU-1..n (Papineni et al., 2002) as coco-caption computes it.

    Clipped n-gram precisions against the per-n-gram maximum count over an item's references;
    brevity penalty with the reference length closest to the candidate length (ties go to the
    shorter). The corpus score sums counts and lengths over items; the per-item scores are
    sentence-level BLEU with the same smoothing constants. Returns ``{"bleu_1": ..., ...}``.
    """
    cands, refs = prepare(candidates, references, tokenized=tokenized)
    return _bleu(_Corpus(cands, refs, n), n)


def _bleu(corpus: "_Corpus", n: int) -> dict[str, MetricResult]:
    sents, n_items, n_refs, ref_item = corpus.sents, corpus.n_items, corpus.n_refs, corpus.ref_item
    lens = np.array([len(s) for s in sents], dtype=np.int64)
    test_len = lens[:n_items]
    # closest reference length: min over (|l - t|, l)
    ref_lens = lens[n_items:]
    order = np.lexsort((ref_lens, np.abs(ref_lens - test_len[ref_item]), ref_item))
    first = np.r_[0, np.cumsum(n_refs)[:-1]]
    ref_len = ref_lens[order][first]  # (N,)

    correct = np.zeros((n_items, n), dtype=np.float64)
    for k, (sent, gram, cnt, n_grams) in enumerate(corpus.counts[:n]):
        is_ref = sent >= n_items
        # max count of each n-gram over the references of an item
        rkey = ref_item[sent[is_ref] - n_items] * n_grams + gram[is_ref]
        rcnt = cnt[is_ref]
        srt = np.argsort(rkey, kind="stable")
        rkey, rcnt = rkey[srt], rcnt[srt]
        if rkey.size:
            bounds = np.r_[0, np.nonzero(np.diff(rkey))[0] + 1]
            ukey, umax = rkey[bounds], np.maximum.reduceat(rcnt, bounds)
        else:
            ukey, umax = rkey, rcnt
        csent, cgram, ccnt = sent[~is_ref], gram[~is_ref], cnt[~is_ref]
        clipped = np.minimum(ccnt, _lookup(ukey, umax, csent * n_grams + cgram))
        correct[:, k] = np.bincount(csent, weights=clipped, minlength=n_items)
    guess = np.maximum(0, test_len[:, None] - np.arange(n)[None, :]).astype(np.float64)  # (N, n)

    ratio = (test_len + _TINY) / (ref_len + _SMALL)
    bp = np.where(ratio < 1, np.exp(1 - 1 / ratio), 1.0)
    item = np.cumprod((correct + _TINY) / (guess + _SMALL), axis=1)
    item = item ** (1.0 / np.arange(1, n + 1))[None, :] * bp[:, None]  # (N, n)
    c_ratio = (float(test_len.sum()) + _TINY) / (float(ref_len.sum()) + _SMALL)
    c_bp = math.exp(1 - 1 / c_ratio) if c_ratio < 1 else 1.0
    corpus = np.cumprod((correct.sum(0) + _TINY) / (guess.sum(0) + _SMALL))
    corpus = corpus ** (1.0 / np.arange(1, n + 1)) * c_bp
    return {f"bleu_{k + 1}": MetricResult(f"bleu_{k + 1}", float(corpus[k]), item[:, k].copy())
            for k in range(n)}


def _lcs(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence (bit-parallel, Hyyroe 2004)."""
    masks: dict[str, int] = {}
    for i, w in enumerate(a):
        masks[w] = masks.get(w, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for w in b:
        m = masks.get(w)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def rouge_l(candidates: list[str], references: list[list[str]], *, beta: float = 1.2,
            tokenized: bool = False) -> MetricResult:
    """ROUGE-L (Lin, 2004) as coco-caption computes it: F-measure with ``beta`` of the maximum
    LCS precision and the maximum LCS recall over the references; corpus = mean over items."""
    cands, refs = prepare(candidates, references, tokenized=tokenized)
    return _rouge_l(cands, refs, beta)


def _rouge_l(cands: list[str], refs: list[list[str]], beta: float) -> MetricResult:
    scores = np.zeros(len(cands))
    b2 = beta * beta
    for i, (cand, rs) in enumerate(zip(cands, refs)):
        tc = cand.split(" ")
        prec = rec = 0.0
        for r in rs:
            tr = r.split(" ")
            lcs = _lcs(tc, tr)
            prec, rec = max(prec, lcs / len(tc)), max(rec, lcs / len(tr))
        if prec != 0 and rec != 0:
            scores[i] = (1 + b2) * prec * rec / (rec + b2 * prec)
    return MetricResult("rouge_l", float(scores.mean()), scores)


def cider_d(candidates: list[str], references: list[list[str]], *, n: int = 4,
            sigma: float = 6.0, tokenized: bool = False) -> MetricResult:
    """CIDEr-D (Vedantam et al., 2015) as coco-caption computes it.

    TF-IDF vectors of 1..n-grams with document frequencies counted over the references of the
    evaluated corpus; per order, the clipped cosine similarity (min of the candidate and
    reference weights) times a Gaussian length penalty (``sigma``, on coco-caption's length,
    which counts bigrams), averaged over orders and references, times 10.
    """
    cands, refs = prepare(candidates, references, tokenized=tokenized)
    return _cider_d(_Corpus(cands, refs, n), n, sigma)


def _cider_d(corpus: "_Corpus", n: int, sigma: float) -> MetricResult:
    sents, n_items, n_refs, ref_item = corpus.sents, corpus.n_items, corpus.n_refs, corpus.ref_item
    n_sents = len(sents)
    length = np.array([max(len(s) - 1, 0) for s in sents], dtype=np.float64)
    delta = length[:n_items][ref_item] - length[n_items:]  # (R,)
    penalty = np.exp(-(delta**2) / (2 * sigma**2))
    log_n = np.log(float(n_items))
    sims = np.zeros((len(ref_item), n))  # (R, n)
    for k, (sent, gram, cnt, n_grams) in enumerate(corpus.counts[:n]):
        is_ref = sent >= n_items
        r_sent, r_gram = sent[is_ref] - n_items, gram[is_ref]
        pairs = np.unique(ref_item[r_sent] * n_grams + r_gram)
        df = np.bincount(pairs % n_grams, minlength=n_grams).astype(np.float64)
        weight = log_n - np.log(np.maximum(1.0, df))  # (G,)
        vec = cnt * weight[gram]
        norm = np.sqrt(np.bincount(sent, weights=vec**2, minlength=n_sents))  # (S,)
        c_key = sent[~is_ref] * n_grams + gram[~is_ref]  # sorted (np.unique order)
        vc = _lookup(c_key, vec[~is_ref], ref_item[r_sent] * n_grams + r_gram)
        vr = vec[is_ref]
        val = np.bincount(r_sent, weights=np.minimum(vc, vr) * vr, minlength=len(ref_item))
        den = norm[:n_items][ref_item] * norm[n_items:]
        val = np.where(den != 0, val / np.where(den != 0, den, 1.0), val)
        sims[:, k] = val * penalty
    per_ref = sims.mean(1)  # (R,)
    scores = np.bincount(ref_item, weights=per_ref, minlength=n_items) / n_refs * 10.0
    return MetricResult("cider_d", float(scores.mean()), scores)


def ngram_metrics(candidates: list[str], references: list[list[str]], *, n: int = 4,
                  sigma: float = 6.0, beta: float = 1.2,
                  tokenized: bool = False) -> dict[str, MetricResult]:
    """BLEU-1..n, ROUGE-L and CIDEr-D together, tokenizing and counting n-grams once.

    Same numbers as :func:`bleu`, :func:`rouge_l` and :func:`cider_d` (coco-caption's
    definitions; Papineni et al. 2002, Lin 2004, Vedantam et al. 2015), only faster.
    """
    cands, refs = prepare(candidates, references, tokenized=tokenized)
    corpus = _Corpus(cands, refs, n)
    out = _bleu(corpus, n)
    out["rouge_l"] = _rouge_l(cands, refs, beta)
    out["cider_d"] = _cider_d(corpus, n, sigma)
    return out
