"""``audiocap train wsac`` command-line errors (no tracebacks) and help."""

from __future__ import annotations

from typer.testing import CliRunner

from audiocap.cli import app


def test_train_wsac_help_and_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["train", "wsac", "--help"])
    assert res.exit_code == 0 and "captions only" in res.output
    res = runner.invoke(app, ["train", "wsac", "--captions", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "nope.csv: caption file not found" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    res = runner.invoke(app, ["train", "wsac", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--captions" in res.output
    res = runner.invoke(app, ["train", "wsac", "--captions", "x.csv", "--gap", "sideways", "--out", "o"])
    assert res.exit_code == 2 and "sideways" in res.output


def test_caption_passes_strategy_to_wsac_only(tmp_path, monkeypatch):
    """`audiocap caption --strategy/--tau` reaches the WSAC caption function and is refused for
    other checkpoint kinds (it used to be missing: the documented command failed with 'No such option')."""
    import audiocap.captioning as captioning
    from audiocap.captioning import Caption

    runner = CliRunner()
    seen = {}

    def fake_run(files, checkpoints, **kw):
        seen.update(kw)
        return [Caption(str(f), 0.0, 1.0, "a dog barks", 0.0) for f in files]

    monkeypatch.setattr(captioning, "captioner_for", lambda model: fake_run)
    wsac, cap = tmp_path / "wsac", tmp_path / "cap"
    for folder, kind in ((wsac, "wsac"), (cap, "captioner")):
        folder.mkdir()
        (folder / "recipe.yaml").write_text(f"kind: {kind}\n")
    clip = tmp_path / "x.wav"  # readable: `caption` skips unreadable files before it dispatches
    import numpy as np
    import soundfile as sf

    sf.write(clip, np.zeros(1600, dtype=np.float32), 16000)
    res = runner.invoke(app, ["caption", str(clip), "--model", str(wsac), "--strategy", "nnd", "--tau", "0.05"])
    assert res.exit_code == 0, res.output
    assert seen["strategy"] == "nnd" and seen["tau"] == 0.05 and "a dog barks" in res.output
    res = runner.invoke(app, ["caption", str(clip), "--model", str(wsac), "--strategy", "sideways"])
    assert res.exit_code != 0 and "unknown --strategy 'sideways'" in res.output
    res = runner.invoke(app, ["caption", str(clip), "--model", str(cap), "--strategy", "nnd"])
    assert res.exit_code != 0 and "WSAC checkpoints only" in res.output
    seen.clear()
    res = runner.invoke(app, ["caption", str(clip), "--model", str(cap)])
    assert res.exit_code == 0 and "strategy" not in seen
