"""``audiocap serve`` command line: help, bad paths, and the command line the demo prints."""

from __future__ import annotations

import shlex
from pathlib import Path

from typer.testing import CliRunner

from audiocap.cli import app
from audiocap.cli.serve import serve_command


def test_serve_help_and_missing_folders(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "--max-upload-mb" in result.output
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "nope"), "--index", str(tmp_path)])
    assert result.exit_code == 2
    assert "--model" in result.output and "not found" in result.output
    assert "Traceback" not in result.output


def test_unloadable_model_is_an_error_line(tmp_path):
    (tmp_path / "clap").mkdir()
    (tmp_path / "index").mkdir()
    result = CliRunner().invoke(app, ["serve", "--model", str(tmp_path / "clap"),
                                      "--index", str(tmp_path / "index")])
    assert result.exit_code == 2 and "could not load the models" in result.output


def test_serve_command_round_trips_through_the_shell():
    cmd = serve_command(Path("runs/demo/clap model"), Path("runs/demo/index"), Path("runs/cap"))
    assert shlex.split(cmd) == ["audiocap", "serve", "--model", "runs/demo/clap model",
                                "--index", "runs/demo/index", "--captioner", "runs/cap"]
    assert "--port" not in cmd
    assert shlex.split(serve_command(Path("m"), Path("i"), port=9000))[-2:] == ["--port", "9000"]


def test_demo_ends_with_the_serve_command(tmp_path, capsys):
    from audiocap.cli.demo import STEPS, print_serve_command

    assert STEPS[-1] is print_serve_command
    print_serve_command({"out": tmp_path})
    assert "nothing to serve yet" in capsys.readouterr().out
    print_serve_command({"clap": tmp_path / "clap", "index": tmp_path / "index"})
    line = capsys.readouterr().out.splitlines()[-1].strip()
    assert shlex.split(line) == ["audiocap", "serve", "--model", str(tmp_path / "clap"),
                                 "--index", str(tmp_path / "index")]
