"""Commands fall back to the shipped default models when no --model is given."""

from __future__ import annotations

import pytest
import torch
from serve_standin import tone_bytes
from typer.testing import CliRunner

from audiocap.checkpoint import save_checkpoint
from audiocap.cli import app


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    from audiocap.config import recipe_to_dict
    from audiocap.models.clap import ClapConfig, build_clap
    from audiocap.pretrained import package_model

    root = tmp_path_factory.mktemp("shipped")
    torch.manual_seed(0)
    cfg = ClapConfig(audio="tiny", text="minilm", embed_dim=32, head_hidden=64, adapter_hidden=64)
    save_checkpoint(root / "trained", build_clap(cfg).state_dict(), kind="clap",
                    recipe={"model": recipe_to_dict(cfg)})
    package_model(root / "trained", root / "pretrained" / "clap-default", card={"name": "stand-in"})
    sounds = root / "sounds"
    sounds.mkdir()
    for hz in (220, 440, 880):
        (sounds / f"tone{hz}.wav").write_bytes(tone_bytes(hz, seconds=1.0))
    return root


def test_index_build_and_search_use_the_shipped_clap(shipped, monkeypatch):
    monkeypatch.setenv("AUDIOCAP_PRETRAINED_DIR", str(shipped / "pretrained"))
    runner = CliRunner()
    out = runner.invoke(app, ["index", "build", str(shipped / "sounds"), "--out", str(shipped / "index")])
    assert out.exit_code == 0, out.output
    assert "indexed 3 of 3" in out.output
    res = runner.invoke(app, ["search", "a tone", "--index", str(shipped / "index"), "-k", "2"])
    assert res.exit_code == 0, res.output
    assert "  1  " in res.output and "  2  " in res.output and "tone" in res.output, res.output


def test_missing_default_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOCAP_PRETRAINED_DIR", str(tmp_path))
    (tmp_path / "a.wav").write_bytes(tone_bytes(440))
    res = CliRunner().invoke(app, ["caption", str(tmp_path / "a.wav")])
    assert res.exit_code != 0
    assert "ships no default captioner" in res.output and "--model" in res.output


def test_format_hits_no_close_match_and_plain_scores():
    from audiocap.cli.search import format_hits

    plain = format_hits([{"rank": 1, "score": 0.5, "id": "x", "captions": ["a dog barks"]}])
    assert "0.5000" in plain[0] and "reference caption: a dog barks" in plain[1]
    cal = format_hits([{"rank": 1, "score": -0.1, "id": "x", "confidence": 0.03, "match": False}])
    assert cal[0].startswith("no close match") and "3.0%" in cal[1] and "-0.1" not in "".join(cal)
    ok = format_hits([{"rank": 1, "score": 0.7, "id": "x", "confidence": 0.91, "match": True}])
    assert "no close match" not in ok[0] and "91.0%" in ok[0]


def test_python_api_embeds_with_the_shipped_clap(shipped, monkeypatch):
    import numpy as np

    import audiocap

    monkeypatch.setenv("AUDIOCAP_PRETRAINED_DIR", str(shipped / "pretrained"))
    default = audiocap.embed_text(None, ["a dog barks"])
    explicit = audiocap.embed_text(shipped / "pretrained" / "clap-default", ["a dog barks"])
    assert np.array_equal(default, explicit) and np.array_equal(audiocap.embed_text("default", ["a dog barks"]), default)
