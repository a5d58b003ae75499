"""Evaluator, sbert_sim, vocab, the `audiocap eval captions` CLI and the SPICE set-up failure path."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from audiocap.cli import app
from audiocap.metrics.evaluator import Evaluator, sbert_sim, sbert_sim_many, vocab
from audiocap.metrics.ngram import bleu, cider_d, ngram_metrics, rouge_l
from audiocap.metrics.spice import spice_status
from audiocap.metrics.spice_setup import SpiceSetupError, setup_spice

sys.path.insert(0, str(Path(__file__).parent))
from helpers_metrics import clotho_pairs, clotho_rows  # noqa: E402

FAST = ["bleu_1", "bleu_4", "rouge_l", "cider_d", "spice", "spider", "spider_fl", "vocab"]


def test_ngram_metrics_equal_single_functions(shared):
    cands, refs = clotho_pairs(shared)
    cands, refs = cands[:200], refs[:200]
    together = ngram_metrics(cands, refs)
    singles = {**bleu(cands, refs), "rouge_l": rouge_l(cands, refs), "cider_d": cider_d(cands, refs)}
    for name, res in singles.items():
        assert together[name].score == pytest.approx(res.score, abs=1e-12)
        np.testing.assert_allclose(together[name].per_item, res.per_item, atol=1e-12)


def test_evaluator_reports_spice_unavailable_with_reason(shared, tmp_path):
    cands, refs = clotho_pairs(shared)
    ev = Evaluator(FAST, spice_dir=tmp_path / "no-spice")
    res = ev(cands[:50], refs[:50])
    assert list(res) == FAST
    assert res["bleu_1"].available and 0 < res["bleu_1"].score < 1
    for name in ("spice", "spider", "spider_fl"):
        assert not res[name].available and res[name].score is None and res[name].reason
    assert "setup-spice" in res["spice"].reason
    out = Evaluator.write_json(res, tmp_path / "m.json", ids=[str(i) for i in range(50)])
    data = json.loads(out.read_text())
    assert data["metrics"]["spice"] == {"available": False, "reason": res["spice"].reason}
    assert len(data["metrics"]["cider_d"]["per_item"]) == 50
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(Evaluator.table(res))
    text = console.export_text()
    assert "unavailable" in text and "spider_fl" in text and f"{res['cider_d'].score:.4f}" in text
    with pytest.raises(ValueError, match="unknown metric"):
        Evaluator(["fense"])


def test_evaluate_many_equals_one_call_per_system(shared, tmp_path):
    cands, refs = clotho_pairs(shared)
    refs = refs[:40]
    systems = {"c1": cands[:40], "c2": [r[0] for r in refs], "short": ["a sound"] * 40}
    ev = Evaluator(FAST + ["meteor"], spice_dir=tmp_path / "no-spice")
    many = ev.evaluate_many(systems, refs)
    assert list(many) == list(systems)
    for name, c in systems.items():
        alone = ev(c, refs)
        assert list(many[name]) == list(alone)
        for metric, res in alone.items():
            assert many[name][metric].available == res.available
            if res.available:
                assert many[name][metric].score == pytest.approx(res.score, abs=1e-12), (name, metric)
    assert many["short"]["cider_d"].score < many["c1"]["cider_d"].score
    assert not many["c1"]["spice"].available and "setup-spice" in many["c1"]["spice"].reason
    assert ev.evaluate_many({}, refs) == {}


def test_sbert_sim_and_vocab():
    cands = ["a dog barks loudly", "rain falls on a tin roof"]
    refs = [["a dog barks loudly", "a dog is barking"], ["a man speaks"]]
    s = sbert_sim(cands, refs)
    assert s.available
    from audiocap.text.minilm import sentence_embeddings

    e = sentence_embeddings(["a dog barks loudly", "a dog is barking"]).double()
    # item 0: mean of cos(identical) = 1 and cos(paraphrase)
    assert s.per_item[0] == pytest.approx((1 + float(e[0] @ e[1])) / 2, abs=1e-5)
    assert 0.6 < float(e[0] @ e[1]) < 0.999 and s.per_item[1] < 0.5  # paraphrase vs unrelated
    assert s.score == pytest.approx(s.per_item.mean())
    v = vocab(cands, refs)
    assert v.score == 9 and v.extra["references"] == 8 and v.per_item is None
    # several systems at once: each equals its own call; references are embedded once
    many = sbert_sim_many({"a": cands, "b": ["a cat meows", "a man speaks"]}, refs)
    np.testing.assert_allclose(many["a"].per_item, s.per_item, atol=1e-6)
    np.testing.assert_allclose(many["b"].per_item, sbert_sim(["a cat meows", "a man speaks"], refs).per_item,
                               atol=1e-6)
    assert many["b"].per_item[1] > 0.99  # identical to its only reference


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_cli_eval_captions_clotho_and_audiocaps(shared, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOCAP_SPICE_DIR", str(tmp_path / "no-spice"))
    rows = clotho_rows(shared)[:30]
    refs = write_csv(tmp_path / "refs.csv", ["file_name"] + [f"caption_{k}" for k in range(1, 6)],
                     [[r["file_name"]] + [r[f"caption_{k}"] for k in range(1, 6)] for r in rows])
    pred = write_csv(tmp_path / "pred.csv", ["file_name", "caption"],
                     [[r["file_name"], r["caption_1"]] for r in rows])
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(app, ["eval", "captions", "--pred", str(pred), "--refs", str(refs),
                                      "--metrics", "bleu_4,cider_d,spice,spider", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    # the prediction is one of the references -> near-perfect scores
    assert data["metrics"]["bleu_4"]["score"] > 0.99
    assert data["metrics"]["spice"]["available"] is False
    assert "cider_d" in result.output and "unavailable" in result.output
    # AudioCaps layout: one row per caption, clips keyed by youtube_id
    ac = write_csv(tmp_path / "ac.csv", ["audiocap_id", "youtube_id", "start_time", "caption"],
                   [["1", "yt1", "30", "a dog barks"], ["2", "yt1", "30", "a dog is barking"],
                    ["3", "yt2", "0", "rain falls"]])
    acp = write_csv(tmp_path / "acp.csv", ["youtube_id", "caption"], [["yt1", "a dog barks"],
                                                                       ["yt2", "rain is falling"]])
    result = CliRunner().invoke(app, ["eval", "captions", "--pred", str(acp), "--refs", str(ac),
                                      "--metrics", "bleu_1,rouge_l"])
    assert result.exit_code == 0, result.output
    # errors name the file and the item
    bad = write_csv(tmp_path / "bad.csv", ["file_name", "caption"], [[rows[0]["file_name"], "x"]])
    result = CliRunner().invoke(app, ["eval", "captions", "--pred", str(bad), "--refs", str(refs)])
    assert result.exit_code == 2 and "no prediction for 29 clip(s)" in result.output
    assert "Traceback" not in result.output
    # several systems in one table; each equals its own single-system run
    pred2 = write_csv(tmp_path / "pred2.csv", ["file_name", "caption"],
                      [[r["file_name"], "a sound is heard"] for r in rows])
    out2 = tmp_path / "systems.json"
    result = CliRunner().invoke(app, ["eval", "captions", "--pred", str(pred), "--pred", str(pred2),
                                      "--refs", str(refs), "--metrics", "bleu_4,cider_d,spice",
                                      "--out", str(out2)], terminal_width=200)
    assert result.exit_code == 0, result.output
    both = json.loads(out2.read_text())["systems"]
    assert both[str(pred)]["metrics"]["bleu_4"]["score"] == data["metrics"]["bleu_4"]["score"]
    assert both[str(pred2)]["metrics"]["cider_d"]["score"] < 0.5 * data["metrics"]["cider_d"]["score"]
    assert "pred2.csv" in result.output and "spice unavailable" in result.output


def test_setup_spice_without_maven_central_fails_clearly(tmp_path, monkeypatch):
    if shutil.which("mvn") is None or shutil.which("java") is None:
        pytest.skip("needs mvn and java to simulate an unreachable Maven Central")
    settings = tmp_path / "settings.xml"  # every repository mirrored to a closed local port
    settings.write_text("<settings><mirrors><mirror><id>offline</id><mirrorOf>*</mirrorOf>"
                        "<url>https://127.0.0.1:9/maven2</url></mirror></mirrors></settings>")
    target = tmp_path / "spice"
    with pytest.raises(SpiceSetupError, match="Maven Central reachable"):
        setup_spice(target, mvn_args=["-s", str(settings), f"-Dmaven.repo.local={tmp_path}/m2"])
    path, reason = spice_status(target)
    assert path is None and "stanford-corenlp-3.6.0.jar" in reason
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(SpiceSetupError, match="java not found"):
        setup_spice(target)
