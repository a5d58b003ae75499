"""`audiocap demo` uses the shipped models, trains with --train, and falls back (saying so)."""

from __future__ import annotations

from typer.testing import CliRunner

from audiocap.cli import app
from audiocap.cli import demo as demo_mod


def _run(monkeypatch, tmp_path, *args):
    ran: list[str] = []

    def step(name):
        def run(ctx):
            """A recorded step."""
            ran.append(name)
        return run

    monkeypatch.setattr(demo_mod, "TRAIN_STEPS", [step("train")])
    monkeypatch.setattr(demo_mod, "SHIPPED_STEPS", [step("shipped")])
    (tmp_path / "shared" / "data" / "clotho").mkdir(parents=True, exist_ok=True)
    res = CliRunner().invoke(app, ["demo", "--shared", str(tmp_path / "shared"), "--out",
                                   str(tmp_path / "out"), *args])
    assert res.exit_code == 0, res.output
    return ran, res.output


def test_demo_without_shipped_models_trains_and_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("AUDIOCAP_PRETRAINED_DIR", str(tmp_path / "none"))
    ran, out = _run(monkeypatch, tmp_path)
    assert ran == ["train"] and "ships no default CLAP model" in out


def test_demo_uses_shipped_models_and_train_flag(monkeypatch, tmp_path):
    pre = tmp_path / "pre" / "clap-default"
    pre.mkdir(parents=True)
    (pre / "recipe.yaml").write_text("kind: clap\n")
    (pre / "model.safetensors").write_bytes(b"")
    monkeypatch.setenv("AUDIOCAP_PRETRAINED_DIR", str(tmp_path / "pre"))
    assert _run(monkeypatch, tmp_path)[0] == ["shipped"]
    assert _run(monkeypatch, tmp_path, "--train")[0] == ["train"]


def test_demo_rebuilds_its_index_when_the_shipped_model_changes(tmp_path):
    # A new release ships new CLAP weights at the same path: the old index must be rebuilt, not
    # searched (search refuses it with 'the model changed since the index was built').
    import json

    from audiocap.cli.demo import _index_is_current
    from audiocap.search import model_fingerprint

    clap, index = tmp_path / "clap-default", tmp_path / "index-shipped"
    clap.mkdir(), index.mkdir()
    (clap / "model.safetensors").write_bytes(b"release 1")
    assert not _index_is_current(index, clap)  # no index yet
    (index / "index.json").write_text(json.dumps({"model": {**model_fingerprint(clap), "sample_rate": 44100}}))
    assert _index_is_current(index, clap)
    (clap / "model.safetensors").write_bytes(b"release 2")
    assert not _index_is_current(index, clap)
    (index / "index.json").write_text("{not json")
    assert not _index_is_current(index, clap)
