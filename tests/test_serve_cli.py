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
    (tmp_path / "index.json").write_text("{}")
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "nope"), "--index", str(tmp_path)])
    assert result.exit_code == 2
    assert "--model" in result.output and "not found" in result.output
    assert "Traceback" not in result.output


def test_unloadable_model_is_an_error_line(tmp_path):
    (tmp_path / "clap").mkdir()
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "index.json").write_text("{}")
    result = CliRunner().invoke(app, ["serve", "--model", str(tmp_path / "clap"),
                                      "--index", str(tmp_path / "index"), "--port", "0"])
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


def test_missing_index_says_where_it_looked_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["serve", "--index", "runs/demo/index"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--index runs/demo/index: not found" in result.output
    assert str(tmp_path) in result.output and "audiocap index build" in result.output
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["serve", "--index", "empty"])
    assert result.exit_code == 2 and "not an index folder (no index.json)" in result.output


def test_busy_port_fails_before_loading_models(tmp_path, monkeypatch):
    import socket

    import audiocap.serve.backend as backend

    def never(*_a, **_k):
        raise AssertionError("models were loaded although the port is taken")

    monkeypatch.setattr(backend.ModelBackend, "load", classmethod(never))
    (tmp_path / "clap").mkdir()
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "index.json").write_text("{}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--model", str(tmp_path / "clap"), "--index",
                                          str(tmp_path / "index"), "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert f"port {port} on 127.0.0.1 is already in use" in result.output and "--port" in result.output


def test_demo_prints_absolute_paths(tmp_path, monkeypatch, capsys):
    from audiocap.cli.demo import print_serve_command

    monkeypatch.chdir(tmp_path)
    print_serve_command({"clap": Path("runs/demo/clap"), "index": Path("runs/demo/index")})
    words = shlex.split(capsys.readouterr().out.splitlines()[-1])
    assert words[3] == str(tmp_path / "runs/demo/clap") and words[5] == str(tmp_path / "runs/demo/index")


def test_version():
    from audiocap import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"audiocap {__version__}"
