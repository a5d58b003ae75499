"""Paired bootstrap and seed spread (audiocap.evaluation.bootstrap), per-query retrieval figures,
and a tiny end-to-end run of benchmarks/ablation_grid.py that is stopped and resumed."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from audiocap.evaluation.bootstrap import mean_sd, paired_bootstrap
from audiocap.metrics.retrieval import per_query_metrics, rank_metrics

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_identical_systems_give_zero_interval():
    x = np.random.default_rng(1).random(50)
    b = paired_bootstrap(x, x.copy(), n_resamples=500, seed=3)
    assert (b["diff"], b["low"], b["high"], b["real"]) == (0.0, 0.0, 0.0, False)
    assert b["n_items"] == 50 and b["n_resamples"] == 500


def test_constant_shift_gives_that_shift():
    base = np.random.default_rng(2).random(40)
    b = paired_bootstrap(base + 0.25, base, n_resamples=300)
    assert b["diff"] == pytest.approx(0.25) and b["low"] == pytest.approx(0.25) and b["high"] == pytest.approx(0.25)
    assert b["real"]
    neg = paired_bootstrap(base - 0.1, base, n_resamples=300)
    assert neg["high"] == pytest.approx(-0.1) and neg["real"]


def test_noisy_case_matches_a_numpy_reference_with_the_same_seed():
    rng = np.random.default_rng(7)
    base = rng.random(200)
    sys_ = base + 0.02 + 0.3 * rng.standard_normal(200)
    got = paired_bootstrap(sys_, base, n_resamples=2000, seed=11, level=0.9)
    # reference: one resample at a time from the same generator, percentiles of the means
    ref_rng = np.random.default_rng(11)
    d = sys_ - base
    means = [d[ref_rng.integers(0, 200, size=200)].mean() for _ in range(2000)]
    lo, hi = np.percentile(means, [5, 95])
    assert got["low"] == pytest.approx(lo, abs=1e-12) and got["high"] == pytest.approx(hi, abs=1e-12)
    assert got["diff"] == pytest.approx(d.mean())
    # and it is the interval the normal approximation predicts (mean ± 1.645 se), to bootstrap precision
    se = d.std(ddof=1) / np.sqrt(200)
    assert got["low"] == pytest.approx(d.mean() - 1.645 * se, abs=0.15 * se * 1.645 + 0.004)
    assert got["high"] == pytest.approx(d.mean() + 1.645 * se, abs=0.15 * se * 1.645 + 0.004)
    assert got["real"] == (lo > 0 or hi < 0)


def test_nan_items_are_dropped_and_bad_inputs_refused():
    a = np.array([1.0, np.nan, 3.0, 4.0])
    b = np.array([0.0, 1.0, np.nan, 3.0])
    r = paired_bootstrap(a, b, n_resamples=100)  # items 0 and 3 remain, both differ by 1
    assert r["n_items"] == 2 and (r["low"], r["high"]) == (1.0, 1.0)
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="no item"):
        paired_bootstrap([np.nan], [1.0])


def test_mean_sd_uses_the_sample_sd():
    r = mean_sd([0.30, 0.32, 0.37])
    assert r["mean"] == pytest.approx(0.33) and r["n"] == 3
    assert r["sd"] == pytest.approx(np.sqrt(((0.03) ** 2 + (0.01) ** 2 + (0.04) ** 2) / 2))
    assert mean_sd([0.5]) == {"mean": 0.5, "sd": None, "n": 1}
    assert mean_sd([])["n"] == 0


def test_per_query_figures_average_to_rank_metrics():
    rng = np.random.default_rng(0)
    sim = rng.standard_normal((30, 12))
    rel = rng.random((30, 12)) < 0.2
    rel[np.arange(30), rng.integers(0, 12, 30)] = True
    per = per_query_metrics(sim, rel)
    assert {k: float(v.mean()) for k, v in per.items()} == rank_metrics(sim, rel)
    # one query: clip 2 has the top score -> hit at 1, AP 1; a query whose clip is 3rd -> AP 1/3
    one = per_query_metrics(np.array([[0.1, 0.2, 0.9], [0.9, 0.5, 0.1]]), np.array([[0, 0, 1], [0, 0, 1]], bool))
    assert one["R@1"].tolist() == [1.0, 0.0] and one["mAP@10"].tolist() == pytest.approx([1.0, 1 / 3])


def test_clap_quality_per_item_outputs_leave_the_corpus_figures_unchanged():
    cq = _load("clap_quality")
    rng = np.random.default_rng(4)
    audio = rng.standard_normal((6, 5))
    audio /= np.linalg.norm(audio, axis=1, keepdims=True)
    caps = rng.standard_normal((12, 5))
    aot = [i // 2 for i in range(12)]
    plain = cq.caption_retrieval(audio, caps, aot)
    full = cq.caption_retrieval(audio, caps, aot, per_item=True)
    pq = full["text_to_audio"].pop("per_query")
    assert full == plain
    assert np.mean(pq["R@1"]) == pytest.approx(plain["text_to_audio"]["R@1"])
    assert np.mean(pq["mAP@10"]) == pytest.approx(plain["text_to_audio"]["mAP@10"])
    tags = rng.standard_normal((2, 5))
    clip_tags = [["a"], ["a", "b"], ["b"], ["a"], ["b"], ["a"]]
    sq = cq.short_query_retrieval(audio, tags, clip_tags, ["a", "b"], per_item=True)["all"]
    assert sq["per_query"]["tag"] == ["a", "b"] and np.mean(sq["per_query"]["mAP@10"]) == pytest.approx(sq["mAP@10"])
    zs = cq.zero_shot(audio, tags, [0, 1, 1, 0, 1, 0], per_item=True)
    assert np.mean(zs["per_clip"]["top1"]) == pytest.approx(zs["top1"])


# --- the grid end to end, on tones --------------------------------------------------------

def _audio_caches(root: Path) -> list[dict]:
    from audiocap.features.cache import read_cache

    return [read_cache(p)[1] for p in root.rglob("*-audio.safetensors")]


def test_grid_runs_stops_and_resumes_without_retraining(tmp_path, monkeypatch, capsys):
    from clap_helpers import write_dataset, write_tiny_bert

    grid = _load("ablation_grid")
    monkeypatch.setenv("AUDIOCAP_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    manifest, bert = write_dataset(tmp_path / "data", per_class=6), write_tiny_bert(tmp_path / "bert")
    runs, out = tmp_path / "runs", tmp_path / "res" / "grid.json"
    argv = ["--manifest", str(manifest), "--runs", str(runs), "--out", str(out), "--seeds", "0",
            "--clap-config", "configs/clap/debug.yaml", "--captioner-config", "configs/captioner/debug.yaml",
            "--set-clap", "model.freeze_audio=true", "--set-clap", "data.precision=bf16",
            "--set-clap", "model.text=hf", "--set-clap", f"model.text_kw={{folder: {bert}}}",
            "--set-clap", "tag.fit_epochs=20",
            "--set-captioner", "data.precision=bf16", "--set-captioner", "data.limit=0",
            "--clap-epochs", "1", "--captioner-epochs", "1", "--metrics", "bleu_4,cider_d", "--resamples", "200",
            "--only", "clap", "--only", "tag_msle", "--only", "ce", "--only", "ntxent", "--only", "ensemble"]

    first = grid.main([*argv, "--max-train", "1"])  # a run that is cut short after one training
    assert first["stopped"] and first["trained"] == [str(runs / "clap" / "clap" / "s0")]
    assert first["evaluated"] == [str(runs / "clap" / "clap" / "s0")] and not out.exists()
    done = runs / "clap" / "clap" / "s0" / "grid_done.json"
    stamp = (done.stat().st_mtime_ns, (runs / "clap" / "clap" / "s0" / "model.safetensors").stat().st_mtime_ns)

    second = grid.main(argv)  # continues: the finished CLAP run is neither retrained nor re-scored
    names = [str(runs / s / n / "s0") for s, n in (("clap", "tag_msle"), ("captioner", "ce"), ("captioner", "ntxent"))]
    assert second["trained"] == names
    assert second["evaluated"] == [*names, str(runs / "captioner" / "ensemble" / "s0")]
    assert stamp == (done.stat().st_mtime_ns, (runs / "clap" / "clap" / "s0" / "model.safetensors").stat().st_mtime_ns)
    res = json.loads(out.read_text())
    clap = res["clap"]["recipes"]
    assert clap["clap"]["seeds"] == [0] and clap["clap"]["figures"]["t2a_R@1"]["n"] == 1
    assert 0.0 <= clap["tag_msle"]["figures"]["t2a_R@1"]["mean"] <= 1.0
    assert set(clap["tag_msle"]["vs_baseline"]) == {"t2a_R@1", "t2a_mAP@10", "short_mAP@10"}  # no single-tag clip
    cap = res["captioner"]["recipes"]
    assert set(cap) == {"ce", "ntxent", "ensemble"} and res["captioner"]["selection"].endswith("val/ce")
    assert set(cap["ensemble"]["vs_baseline"]) == {"cider_d"}  # BLEU-4 is corpus-level only
    ev = json.loads((runs / "captioner" / "ce" / "s0" / "grid_eval.json").read_text())["result"]
    assert len(ev["predictions"]) == 4 and abs(ev["cider_d_mean_of_items_minus_corpus"]) < 1e-9
    # every tower cache was filled in the recipe's precision: the tagger fit reused the bf16 training cache
    assert {m.get("precision") for m in _audio_caches(tmp_path / "cache")} == {"bf16"}
    assert "CLAP-TAG, MSLE, λ = 1" in out.with_suffix(".md").read_text()

    # killed after training but before the marker: the trainer finds the finished run, weights unchanged
    ce = runs / "captioner" / "ce" / "s0"
    sha = json.loads((ce / "grid_done.json").read_text())["sha256"]
    (ce / "grid_done.json").unlink()
    capsys.readouterr()
    third = grid.main([*argv, "--side", "captioner"])
    assert third["trained"] == [str(ce)] and third["evaluated"] == []
    assert "already trained" in capsys.readouterr().out
    assert json.loads((ce / "grid_done.json").read_text())["sha256"] == sha
