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
