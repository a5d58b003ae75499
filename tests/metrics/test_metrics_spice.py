"""SPICE from the official jar: equality with a direct run, self-reference = 1, unavailable path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from audiocap.metrics.spice import spice, spice_status, spider
from audiocap.metrics.ngram import cider_d
from audiocap.text.tokenize import ptb_tokenize

sys.path.insert(0, str(Path(__file__).parent))
from helpers_metrics import clotho_pairs  # noqa: E402

SPICE_DIR, WHY = spice_status()
needs_spice = pytest.mark.skipif(SPICE_DIR is None, reason=f"SPICE not set up: {WHY}")


def start_official_spice(cands, refs, folder: Path, tmp: Path) -> subprocess.Popen:
    """coco-caption's command line on the same class path (no audiocap code involved), started
    in the background so that it runs alongside audiocap's call."""
    items = [{"image_id": str(i), "test": c, "refs": r}
             for i, (c, r) in enumerate(zip(ptb_tokenize(cands), [ptb_tokenize(r) for r in refs]))]
    (tmp / "in.json").write_text(json.dumps(items))
    return subprocess.Popen(
        ["java", "-Xmx8G", "-cp", "spice-1.0.jar:lib/*", "edu.anu.spice.SpiceScorer",
         str(tmp / "in.json"), "-out", str(tmp / "out.json"), "-subset", "-silent"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish_official_spice(proc: subprocess.Popen, n: int, tmp: Path) -> list[dict]:
    _, err = proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    out = {o["image_id"]: o["scores"]["All"] for o in json.loads((tmp / "out.json").read_text())}
    return [out[str(i)] for i in range(n)]


def assert_same(ours, official):
    f = np.array([np.nan if o["f"] is None else o["f"] for o in official], dtype=float)
    pr = np.array([np.nan if o["pr"] is None else o["pr"] for o in official], dtype=float)
    np.testing.assert_allclose(ours.per_item, f, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(ours.extra["precision"], pr, atol=1e-6, equal_nan=True)
    assert abs(ours.score - float(np.mean(f))) < 1e-6


@needs_spice
def test_spice_subset_equals_official_jar_and_self_reference_is_one(shared, tmp_path):
    cands, refs = clotho_pairs(shared)
    cands, refs = cands[:4], refs[:4]
    # two extra items: a caption against itself as the only reference
    cands += ["A dog barks loudly at a passing car.", refs[0][0]]
    refs += [["A dog barks loudly at a passing car."], [refs[0][0]]]
    proc = start_official_spice(cands, refs, SPICE_DIR, tmp_path)  # runs alongside ours
    ours = spice(cands, refs)
    assert ours.available, ours.reason
    assert_same(ours, finish_official_spice(proc, len(cands), tmp_path))
    assert ours.per_item[-2] == 1.0 and ours.per_item[-1] == 1.0
    assert ours.extra["recall"][-1] == 1.0
    assert 0 < ours.per_item[0] < 1  # a real, different caption scores in between


def test_spice_unavailable_without_folder(tmp_path):
    res = spice(["a dog barks"], [["a dog is barking"]], folder=tmp_path / "nothing")
    assert not res.available and res.score is None
    assert "setup-spice" in res.reason and str(tmp_path / "nothing") in res.reason
    sp = spider(cider_d(["a dog barks"], [["a dog is barking"]]), res)
    assert not sp.available and "spice unavailable" in sp.reason


def test_spice_unavailable_when_corenlp_missing(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "spice-1.0.jar").write_bytes(b"")
    res = spice(["a dog barks"], [["a dog is barking"]], folder=tmp_path)
    assert not res.available and "stanford-corenlp-3.6.0.jar" in res.reason


@pytest.mark.slow
@needs_spice
def test_spice_full_clotho_evaluation_equals_official_jar(shared, tmp_path):
    cands, refs = clotho_pairs(shared)
    t0 = time.time()
    proc = start_official_spice(cands, refs, SPICE_DIR, tmp_path)  # runs concurrently
    ours = spice(cands, refs)
    t_ours = time.time() - t0
    assert ours.available, ours.reason
    official = finish_official_spice(proc, len(cands), tmp_path)
    t_official = time.time() - t0
    assert_same(ours, official)
    sp = spider(cider_d(cands, refs), ours)
    print(f"\nClotho eval caption_1 vs 2-5: SPICE {ours.score:.6f} SPIDEr {sp.score:.6f} "
          f"(CIDEr-D {sp.score * 2 - ours.score:.6f}); wall time audiocap {t_ours:.1f} s, "
          f"official {t_official:.1f} s (run side by side)")


@needs_spice
def test_spice_many_equals_separate_runs(shared):
    """One JVM for several systems gives each system exactly its separate-run SPICE."""
    from audiocap.metrics.spice import spice_many

    cands, refs = clotho_pairs(shared)
    refs = refs[:3]
    systems = {"a": cands[:3], "b": ["a dog barks", "rain falls on a roof", refs[2][1]]}
    many = spice_many(systems, refs)
    for name, c in systems.items():
        alone = spice(c, refs)
        np.testing.assert_allclose(many[name].per_item, alone.per_item, atol=1e-12)
        np.testing.assert_allclose(many[name].extra["recall"], alone.extra["recall"], atol=1e-12)
        assert many[name].score == pytest.approx(alone.score, abs=1e-12)
    assert many["a"].score != many["b"].score
