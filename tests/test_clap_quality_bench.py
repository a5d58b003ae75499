"""benchmarks/clap_quality.py: metric values on hand-made embeddings and a fake-embedder run."""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiocap.data.manifest import Clip, write_manifest
from audiocap.metrics.retrieval import rank_metrics

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "clap_quality.py"


@pytest.fixture(scope="module")
def cq():
    spec = importlib.util.spec_from_file_location("clap_quality", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["clap_quality"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_chance_matches_brute_force_over_all_rankings(cq):
    for rel in ([1, 0, 0, 0, 0], [1, 1, 0, 1, 0], [1, 1, 1, 0]):
        rel = np.array(rel, bool)
        runs = [rank_metrics(np.array([p], float), rel[None], ks=(1, 5, 10), ties="stable")
                for p in itertools.permutations(range(len(rel)))]
        brute = {k: np.mean([r[k] for r in runs]) for k in runs[0]}
        got = cq.chance_rank_metrics([int(rel.sum())], len(rel))
        assert got == pytest.approx(brute)
    # one relevant among 3: R@1 1/3, mAP@10 = (1 + 1/2 + 1/3) / 3 = 11/18
    assert cq.chance_rank_metrics([1], 3)["mAP@10"] == pytest.approx(11 / 18)


def test_caption_retrieval_perfect_and_reversed(cq):
    audio = np.eye(3)
    aot = [0, 0, 1, 1, 2, 2]
    perfect = cq.caption_retrieval(audio, audio[aot], aot)
    for d in ("text_to_audio", "audio_to_text"):
        assert perfect[d]["R@1"] == perfect[d]["mAP@10"] == 1.0
    assert perfect["text_to_audio"]["chance"]["R@1"] == pytest.approx(1 / 3)
    assert (perfect["text_to_audio"]["n_queries"], perfect["audio_to_text"]["n_queries"]) == (6, 3)
    rev = cq.caption_retrieval(audio, -audio[aot], aot)["text_to_audio"]
    # each caption scores -1 with its clip and 0 elsewhere: its clip is ranked 3rd of 3
    assert (rev["R@1"], rev["R@5"], rev["mAP@10"]) == (0.0, 1.0, pytest.approx(1 / 3))


def test_short_queries_hand_computed(cq):
    audio = np.eye(4)  # so a tag row of similarities is its embedding
    tags = ["a", "b"]
    tag_emb = np.array([[0.9, 0.1, 0.5, 0.2], [0.0, 0.3, 0.2, 0.1]])
    res = cq.short_query_retrieval(audio, tag_emb, [["a"], ["a", "b"], ["b"], ["a"]], tags)
    # a: ranks 1(rel) 2 3(rel) 4(rel) -> (1 + 2/3 + 3/4)/3 = 29/36; b: ranks 1,2 relevant -> 1
    assert res["all"]["mAP@10"] == pytest.approx((29 / 36 + 1) / 2)
    assert res["all"]["R@10"] == 1.0 and res["all"]["n_queries"] == 2 and res["all"]["n_items"] == 4
    # single-event collection = clips 0, 2, 3: a -> (1 + 2/3)/2 = 5/6; b -> 1
    assert res["single_event"]["mAP@10"] == pytest.approx((5 / 6 + 1) / 2)
    assert res["single_event"]["n_items"] == 3
    # chance of a (3 of 4 relevant) and b (2 of 4) by brute force
    assert res["all"]["chance"]["R@10"] == 1.0


def test_zero_shot_hand_computed(cq):
    cls = np.eye(3)
    audio = np.array([[1, 0, 0], [0, 1, 0], [0.6, 0, 0.8], [0.6, 0.8, 0]])
    res = cq.zero_shot(audio, cls, [0, 1, 2, 0])  # the last clip's true class is 2nd
    assert (res["top1"], res["top5"]) == (0.75, 1.0)
    assert res["chance"] == {"top1": pytest.approx(1 / 3), "top5": 1.0}
    assert (res["n_clips"], res["n_classes"]) == (4, 3)


WORDS = {"dog": 0, "rain": 1, "bell": 2}
FREQS = [300.0, 1200.0, 4000.0]


class ToneEmbedder:
    """Audio: one-hot of the nearest of FREQS; text: one-hot of the keyword it contains."""

    sample_rate = 16000
    clip_seconds = 10.0

    def __init__(self):
        self.audio_calls = 0

    def embed_audio(self, waves):
        self.audio_calls += len(waves)
        out = np.zeros((len(waves), 3))
        for i, w in enumerate(waves):
            f = np.argmax(np.abs(np.fft.rfft(w))) * self.sample_rate / len(w)
            out[i, int(np.argmin([abs(f - g) for g in FREQS]))] = 1
        return out

    def embed_text(self, texts):
        out = np.zeros((len(texts), 3))
        for i, t in enumerate(texts):
            out[i, next(v for k, v in WORDS.items() if k in t)] = 1
        return out


def test_script_end_to_end_with_fake_embedder(cq, tmp_path, capsys):
    rows = []
    for k, (word, tag) in enumerate([("dog", "dog barking"), ("rain", "rain"), ("bell", "bell ringing"),
                                     ("dog", "dog barking")]):
        t = np.arange(16000) / 16000
        sf.write(tmp_path / f"c{k}.wav", 0.3 * np.sin(2 * np.pi * FREQS[WORDS[word]] * t), 16000)
        rows.append(Clip(id=f"c{k}", audio=f"c{k}.wav", duration=1.0, captions=[f"a {word} sound", f"{word} here"],
                         tags=[tag], split="test", meta={"labels": [word]}))
    rows.append(Clip(id="x", audio="c0.wav", duration=1.0, captions=["a dog sound"], tags=["dog barking"], split="train"))
    write_manifest(tmp_path / "m.jsonl", rows)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"fake")
    emb = ToneEmbedder()
    argv = ["--model", f"fake={tmp_path / 'ckpt'}", "--manifest", str(tmp_path / "m.jsonl"),
            "--split", "test", "--out", str(tmp_path / "r.json")]
    res = cq.main(argv, load=lambda ckpt: emb)["models"]["fake"]
    t2a = res["captions"]["text_to_audio"]
    # captions of the two dog clips tie with both dog clips: pessimistic ties put the right one 2nd
    assert (t2a["R@1"], t2a["R@5"]) == (0.5, 1.0) and t2a["mAP@10"] == pytest.approx(0.75)
    assert t2a["n_queries"] == 8 and t2a["n_items"] == 4
    assert res["short_queries"]["all"]["mAP@10"] == 1.0 and res["short_queries"]["all"]["n_queries"] == 3
    assert res["zero_shot"]["top1"] == 1.0 and res["zero_shot"]["chance"]["top1"] == pytest.approx(1 / 3)
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["n_clips"] == 4 and saved["models"]["fake"]["zero_shot"]["n_clips"] == 4
    assert "| fake |" in capsys.readouterr().out
    calls = emb.audio_calls
    cq.main(argv, load=lambda ckpt: emb)  # second run reads the cached audio embeddings
    assert emb.audio_calls == calls == 4
    assert len(list(tmp_path.glob(".r.*.npz"))) == 1
