"""The models that ship inside the package load and reproduce what was stored when they were packaged."""

from __future__ import annotations

import json

from audiocap.pretrained import default_model, has_default
from audiocap.pretrained.package import verify_reference


def test_default_clap_ships_reproduces_its_embeddings_and_is_calibrated():
    assert has_default("clap"), "src/audiocap/pretrained/clap-default is missing: run scripts/package_default_models.py"
    folder = default_model("clap")
    res = verify_reference(folder, atol=1e-4)
    assert res["ok"], res
    cal = json.loads((folder / "calibration.json").read_text())
    assert cal["a"] > 0 and -1.0 < cal["threshold"] < 1.0
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size < 20e6, f"{folder} holds {size / 1e6:.1f} MB; ship heads only"


def test_default_captioner_ships_and_reproduces_its_captions():
    assert has_default("captioner"), "src/audiocap/pretrained/captioner-default is missing"
    res = verify_reference(default_model("captioner"), atol=1e-3)
    assert res["ok"] and not res["mismatches"], res
