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


def official_spice(cands, refs, folder: Path, tmp: Path) -> list[dict]:
    """coco-caption's command line on the same class path (no audiocap code involved)."""
    items = [{"image_id": str(i), "test": c, "refs": r}
             for i, (c, r) in enumerate(zip(ptb_tokenize(cands), [ptb_tokenize(r) for r in refs]))]
    (tmp / "in.json").write_text(json.dumps(items))
    subprocess.run(["java", "-Xmx8G", "-cp", "spice-1.0.jar:lib/*", "edu.anu.spice.SpiceScorer",
                    str(tmp / "in.json"), "-out", str(tmp / "out.json"), "-subset", "-silent"],
                   cwd=folder, check=True, capture_output=True)
    out = {o["image_id"]: o["scores"]["All"] for o in json.loads((tmp / "out.json").read_text())}
    return [out[str(i)] for i in range(len(items))]


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
    ours = spice(cands, refs)
    assert ours.available, ours.reason
    assert_same(ours, official_spice(cands, refs, SPICE_DIR, tmp_path))
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
    ours = spice(cands, refs)
    t_ours = time.time() - t0
    assert ours.available, ours.reason
    t0 = time.time()
    official = official_spice(cands, refs, SPICE_DIR, tmp_path)
    t_official = time.time() - t0
    assert_same(ours, official)
    sp = spider(cider_d(cands, refs), ours)
    print(f"\nClotho eval caption_1 vs 2-5: SPICE {ours.score:.6f} SPIDEr {sp.score:.6f} "
          f"audiocap {t_ours:.1f} s, official {t_official:.1f} s")
