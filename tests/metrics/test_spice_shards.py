"""SPICE over item shards in parallel JVMs equals one direct run of the official jar (issue 19 item 3)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from audiocap.metrics.spice import run_spice, spice, spice_status
from audiocap.text.tokenize import ptb_tokenize

sys.path.insert(0, str(Path(__file__).parent))
from helpers_metrics import clotho_pairs  # noqa: E402

SPICE_DIR, WHY = spice_status()
needs_spice = pytest.mark.skipif(SPICE_DIR is None, reason=f"SPICE not set up: {WHY}")


@needs_spice
def test_three_shards_equal_one_direct_run_of_the_official_jar(shared, tmp_path):
    cands, refs = clotho_pairs(shared)
    cands, refs = cands[10:17], refs[10:17]
    items = [{"image_id": str(i), "test": c, "refs": r}
             for i, (c, r) in enumerate(zip(ptb_tokenize(cands), [ptb_tokenize(r) for r in refs]))]
    (tmp_path / "in.json").write_text(json.dumps(items))
    official = subprocess.Popen(  # coco-caption's command line, no cache, no audiocap code, alongside ours
        ["java", "-Xmx8G", "-cp", "spice-1.0.jar:lib/*", "edu.anu.spice.SpiceScorer", str(tmp_path / "in.json"),
         "-out", str(tmp_path / "out.json"), "-subset", "-silent"],
        cwd=SPICE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ours = spice(cands, refs, workers=3)
    _, err = official.communicate()
    assert official.returncode == 0, err.decode()[-2000:]
    direct = {o["image_id"]: o["scores"]["All"] for o in json.loads((tmp_path / "out.json").read_text())}
    assert ours.available, ours.reason
    for key, ext in (("f", ours.per_item), ("pr", ours.extra["precision"]), ("re", ours.extra["recall"])):
        want = np.array([np.nan if direct[str(i)][key] is None else direct[str(i)][key] for i in range(len(items))])
        np.testing.assert_array_equal(ext, want)
    assert ours.score == pytest.approx(float(np.mean(ours.per_item)), abs=0)


@needs_spice
def test_shards_are_contiguous_and_merged_in_order(monkeypatch, tmp_path):
    """Each JVM gets one contiguous slice; more workers than items start one JVM per item."""
    started = []

    class FakeJVM:
        def __init__(self, cmd, cwd, stdout, stderr):
            items = json.loads(Path(next(c for c in cmd if Path(c).name.startswith("in"))).read_text())
            started.append([it["image_id"] for it in items])
            Path(cmd[cmd.index("-out") + 1]).write_text(json.dumps([{"image_id": it["image_id"]} for it in items]))
            self.returncode = 0

        def wait(self, timeout=None):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeJVM)
    items = [{"image_id": str(i), "test": "a", "refs": ["a"]} for i in range(7)]
    out = run_spice(items, SPICE_DIR, workers=3)
    assert started == [["0", "1"], ["2", "3", "4"], ["5", "6"]]
    assert [o["image_id"] for o in out] == [str(i) for i in range(7)]
    started.clear()
    run_spice(items[:2], SPICE_DIR, workers=8, cache=False)
    assert started == [["0"], ["1"]]


def test_evaluator_and_cli_pass_the_worker_count(monkeypatch, tmp_path):
    import audiocap.metrics.evaluator as evaluator
    from typer.testing import CliRunner

    from audiocap.cli import app
    from audiocap.metrics.base import MetricResult

    seen = []

    def fake_spice_many(systems, refs, **kw):
        seen.append(kw["workers"])
        return {n: MetricResult("spice", 0.5, np.full(len(c), 0.5)) for n, c in systems.items()}

    monkeypatch.setattr(evaluator, "spice_many", fake_spice_many)
    res = evaluator.Evaluator(["spice", "spider"], spice_workers=4)(["a dog barks"], [["a dog is barking"]])
    assert seen == [4] and res["spice"].score == 0.5 and res["spider"].available
    pred, ref = tmp_path / "p.csv", tmp_path / "r.csv"
    pred.write_text("file_name,caption\na.wav,a dog barks\n")
    ref.write_text("file_name,caption_1,caption_2,caption_3,caption_4,caption_5\na.wav,a dog barks,a dog,dogs,a hound,a pup\n")
    runner = CliRunner()
    ok = runner.invoke(app, ["eval", "captions", "--pred", str(pred), "--refs", str(ref), "--metrics", "spice",
                             "--spice-workers", "2"])
    assert ok.exit_code == 0, ok.output
    assert seen == [4, 2]
    bad = runner.invoke(app, ["eval", "captions", "--pred", str(pred), "--refs", str(ref), "--spice-workers", "0"])
    assert bad.exit_code == 2 and "--spice-workers must be at least 1, got 0" in bad.output


@needs_spice
def test_warm_caches_the_references_the_evaluator_will_send(shared, tmp_path):
    """--warm parses each reference of a standard set into SPICE's cache (LMDB keyed by the
    tokenized caption), tokenized exactly as the Evaluator tokenizes that reference file."""
    from audiocap.metrics.base import prepare
    from audiocap.metrics.caption_csv import read_references
    from audiocap.metrics.spice import warm_spice_cache

    folder = tmp_path / "spice"  # the real jar and libraries, an empty cache of its own
    folder.mkdir()
    for name in ("spice-1.0.jar", "lib"):
        (folder / name).symlink_to(SPICE_DIR / name)
    src = shared / "data" / "clotho" / "clotho_captions_evaluation.csv"
    csv_path = tmp_path / "shared" / "data" / "clotho" / "clotho_captions_evaluation.csv"
    csv_path.parent.mkdir(parents=True)
    csv_path.write_text("".join(src.read_text(encoding="utf-8").splitlines(keepends=True)[:4]), encoding="utf-8")
    assert warm_spice_cache(["clotho-eval"], tmp_path / "shared", folder=folder, workers=2) == {"clotho-eval": 15}
    stored = (folder / "cache" / "data.mdb").read_bytes()
    _, refs, _ = read_references(csv_path)
    tokenized = [r for rs in prepare(["x"] * len(refs), refs, tokenized=False)[1] for r in rs]
    assert len(tokenized) == 15 and all(r.encode() in stored for r in tokenized)


def test_warm_refuses_unknown_sets_before_any_work(tmp_path):
    from typer.testing import CliRunner

    from audiocap.cli import app

    res = CliRunner().invoke(app, ["metrics", "setup-spice", "--dir", str(tmp_path / "s"), "--warm",
                                   "clotho-eval,clotho-train"])
    assert res.exit_code == 2 and "unknown reference set(s) clotho-train; choose from clotho-eval" in res.output
    assert not (tmp_path / "s").exists()
