"""Train audiocap's fluency-error detector the way FENSE's was trained (Zhou et al., ICASSP 2022).

Real human captions (Clotho v2.1 and AudioCaps, text only) are the fluent examples; copies with
one synthetic error each (:func:`audiocap.metrics.fluency.inject_error`: repeated word, repeated
event, missing verb, incomplete ending) are the disfluent ones. A small head
(:class:`~audiocap.metrics.fluency.FluencyHead`) is trained on frozen MiniLM features with
binary cross-entropy on "any error" and on each kind. Sentences come from disjoint splits:
training from Clotho development + AudioCaps train, the epoch and threshold from Clotho
validation + AudioCaps val, and the reported accuracy from Clotho evaluation + AudioCaps test,
where every held-out caption is scored clean and with each error kind. The threshold is the
P(error) that flags at most ``threshold_fpr`` of the validation split's human captions.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiocap.fileio import atomic_write_json

SOURCES = {  # split -> (Clotho CSV, AudioCaps CSV) under <shared>/data
    "train": ("clotho/clotho_captions_development.csv", "audiocaps/train.csv"),
    "dev": ("clotho/clotho_captions_validation.csv", "audiocaps/val.csv"),
    "test": ("clotho/clotho_captions_evaluation.csv", "audiocaps/test.csv"),
}


@dataclass
class FluencyDataRecipe:
    shared: str = ""  # folder holding data/clotho and data/audiocaps; "" = $AUDIOCAP_SHARED or ../shared
    train_captions: int = 10000  # human captions drawn from each split (half Clotho, half AudioCaps)
    dev_captions: int = 600
    test_captions: int = 1000
    error_share: float = 0.5  # share of training captions that get one synthetic error


@dataclass
class FluencyModelRecipe:
    hidden: int = 64
    channels: int = 96  # width-3 convolution over word-piece states
    dropout: float = 0.1


@dataclass
class FluencyTrainRecipe:
    out: str = "runs/fluency/default"
    epochs: int = 25
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.01
    seed: int = 0
    threads: int = 1
    threshold_fpr: float = 0.02  # the threshold flags at most this share of the dev split's human captions


@dataclass
class FluencyRecipe:
    data: FluencyDataRecipe = field(default_factory=FluencyDataRecipe)
    model: FluencyModelRecipe = field(default_factory=FluencyModelRecipe)
    train: FluencyTrainRecipe = field(default_factory=FluencyTrainRecipe)


def shared_root(recipe: FluencyDataRecipe) -> Path:
    root = Path(recipe.shared or os.environ.get("AUDIOCAP_SHARED", "../shared"))
    for split in SOURCES.values():
        for rel in split:
            if not (root / "data" / rel).is_file():
                raise FileNotFoundError(f"{root / 'data' / rel}: caption CSV not found; set data.shared or "
                                        "AUDIOCAP_SHARED to the folder holding data/clotho and data/audiocaps")
    return root


def read_captions(root: Path, split: str) -> tuple[list[str], int]:
    """Every caption of the split's Clotho and AudioCaps CSVs (Clotho first) and the Clotho count."""
    clotho, audiocaps = SOURCES[split]
    out: list[list[str]] = [[], []]
    with open(root / "data" / clotho, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out[0] += [row[f"caption_{i}"] for i in range(1, 6) if row.get(f"caption_{i}")]
    with open(root / "data" / audiocaps, newline="", encoding="utf-8") as fh:
        out[1] += [row["caption"] for row in csv.DictReader(fh) if row.get("caption")]
    return out[0] + out[1], len(out[0])


def draw(root: Path, split: str, n: int, rng: random.Random) -> list[str]:
    """``n`` distinct human captions of ``split``, half from Clotho and half from AudioCaps."""
    from audiocap.metrics.fluency import normalize

    caps, n_clotho = read_captions(root, split)
    picked = []
    for pool, k in ((caps[:n_clotho], n // 2), (caps[n_clotho:], n - n // 2)):
        uniq = sorted({normalize(c) for c in pool if len(normalize(c).split()) >= 3})
        picked += rng.sample(uniq, min(k, len(uniq)))
    return picked


def build_examples(captions: list[str], rng: random.Random, verbs: frozenset[str], *,
                   error_share: float | None) -> tuple[list[str], np.ndarray, list[str]]:
    """Texts, labels (N, 5) and kinds ("clean" or the error). ``error_share`` None: every caption
    clean and once with each kind it allows (the held-out layout); else each caption once, with
    one random error with probability ``error_share``."""
    from audiocap.metrics.fluency import ERROR_KINDS, LABELS, inject_error

    texts, kinds = [], []
    for cap in captions:
        if error_share is None:
            texts.append(cap)
            kinds.append("clean")
            for kind in ERROR_KINDS:
                bad = inject_error(cap, kind, rng, verbs)
                if bad is not None and bad != cap:
                    texts.append(bad)
                    kinds.append(kind)
            continue
        bad = None
        if rng.random() < error_share:
            kind = rng.choice(ERROR_KINDS)
            bad = inject_error(cap, kind, rng, verbs)
        texts.append(bad if bad is not None and bad != cap else cap)
        kinds.append(kind if bad is not None and bad != cap else "clean")
    labels = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
    for i, k in enumerate(kinds):
        if k != "clean":
            labels[i, 0] = 1
            labels[i, LABELS.index(k)] = 1
    return texts, labels, kinds


def cached_states(texts: list[str], cache: Path) -> list[torch.Tensor]:
    """MiniLM word-piece states of ``texts`` (float16), kept in ``cache`` (one safetensors file of
    concatenated states and lengths) keyed by the texts' hash, so head experiments skip the tower."""
    from safetensors.torch import load_file, save_file

    from audiocap.metrics.fluency import token_states

    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = cache / f"states-{key}.safetensors"
    if not path.is_file():
        states = token_states(texts)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".partial")
        save_file({"states": torch.cat(states).half().contiguous(),
                   "lengths": torch.tensor([len(x) for x in states])}, str(tmp))
        os.replace(tmp, path)
    data = load_file(str(path))
    return list(data["states"].split(data["lengths"].tolist()))


def train_fluency(recipe: FluencyRecipe) -> dict[str, Any]:
    """Build the data, train the head, choose the threshold, write ``<out>/checkpoint`` and
    ``<out>/report.json`` (held-out accuracy per kind); returns the report."""
    from audiocap.checkpoint import save_checkpoint
    from audiocap.config import recipe_to_dict
    from audiocap.metrics.fluency import ERROR_KINDS, FluencyHead, pad_states, repeat_flags, verb_lexicon

    d, t = recipe.data, recipe.train
    torch.set_num_threads(t.threads)
    torch.manual_seed(t.seed)
    root = shared_root(d)
    rng = random.Random(t.seed)
    verbs = verb_lexicon(read_captions(root, "train")[0])
    out = Path(t.out)
    sets = {}
    for split, n, share in (("train", d.train_captions, d.error_share), ("dev", d.dev_captions, None),
                            ("test", d.test_captions, None)):
        texts, labels, kinds = build_examples(draw(root, split, n, rng), rng, verbs, error_share=share)
        sets[split] = (texts, torch.from_numpy(labels), kinds, cached_states(texts, out / "features"),
                       repeat_flags(texts))
    head = FluencyHead(hidden=recipe.model.hidden, channels=recipe.model.channels, dropout=recipe.model.dropout)
    opt = torch.optim.AdamW(head.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    x, f, y = sets["train"][3], sets["train"][4], sets["train"][1]
    best, best_state, history = -1.0, None, []
    for epoch in range(t.epochs):
        head.train()
        for idx in torch.randperm(len(x)).split(t.batch_size):
            logits = head(*pad_states([x[i] for i in idx.tolist()], [f[i] for i in idx.tolist()]))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        acc = float(((_probs(head, *sets["dev"][3:]) > 0.5) == (sets["dev"][1][:, 0] > 0)).float().mean())
        history.append(round(acc, 5))
        print(f"epoch {epoch + 1}/{t.epochs}: dev accuracy {acc:.4f}", file=sys.stderr, flush=True)
        if acc > best:
            best, best_state = acc, {k: v.detach().clone() for k, v in head.state_dict().items()}
    head.load_state_dict(best_state)
    head.eval()
    dev_p, test_p = _probs(head, *sets["dev"][3:]).numpy(), _probs(head, *sets["test"][3:]).numpy()
    dev_clean = dev_p[np.array(sets["dev"][2]) == "clean"]
    threshold = float(max(0.5, np.quantile(dev_clean, 1 - t.threshold_fpr)))
    kinds = np.array(sets["test"][2])
    flagged = test_p > threshold
    report = {
        "threshold": round(threshold, 6), "dev_accuracy_per_epoch": history, "best_dev_accuracy": round(best, 5),
        "test": {"captions": int((kinds == "clean").sum()), "examples": len(kinds),
                 "accuracy": round(float((flagged == (kinds != "clean")).mean()), 5),
                 "human_captions_flagged": round(float(flagged[kinds == "clean"].mean()), 5),
                 "detected": {k: round(float(flagged[kinds == k].mean()), 5) for k in ERROR_KINDS},
                 "per_kind_count": {k: int((kinds == k).sum()) for k in ERROR_KINDS}},
        "train_examples": len(x), "train_errors": int(y[:, 0].sum()), "verbs": len(verbs),
    }
    meta = {**recipe_to_dict(recipe), "threshold": threshold, "labels": ["error", *ERROR_KINDS],
            "feature": "all-MiniLM-L6-v2 last-layer word-piece states (384 each, [CLS] and [SEP] included) "
                       "+ 3 flags: the piece equals the piece 1, 2, 3 places before",
            "held_out": report["test"]}
    save_checkpoint(out / "checkpoint", head.state_dict(), kind="fluency", recipe=meta)
    atomic_write_json(out / "report.json", report)
    examples = [{"text": s, "kind": k, "p_error": round(float(p), 4)}
                for s, k, p in list(zip(sets["test"][0], kinds, test_p))[:40]]
    atomic_write_json(out / "examples.json", examples)
    return report


@torch.no_grad()
def _probs(head: torch.nn.Module, states: list[torch.Tensor], flags: list[torch.Tensor],
           batch_size: int = 512) -> torch.Tensor:
    """P(error) (N,) of the head in eval mode."""
    from audiocap.metrics.fluency import pad_states

    head.eval()
    return torch.cat([torch.sigmoid(head(*pad_states(states[s : s + batch_size], flags[s : s + batch_size]))[:, 0])
                      for s in range(0, len(states), batch_size)])


__all__ = ["FluencyRecipe", "build_examples", "train_fluency"]


if __name__ == "__main__":  # python -m audiocap.train.fluency [key=value ...]
    from audiocap.config import load_recipe

    print(json.dumps(train_fluency(load_recipe(FluencyRecipe, None, sys.argv[1:])), indent=1))
