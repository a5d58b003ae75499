"""``audiocap serve``: the web service and page for searching, listening to and captioning sounds."""

from __future__ import annotations

from pathlib import Path

import typer

from audiocap.cli.apps import app, fail


def serve_command(model: Path, index: Path, captioner: Path | None = None, *,
                  host: str = "127.0.0.1", port: int = 8000) -> str:
    """The shell command that serves ``model`` + ``index`` (+ ``captioner``): the demo's last line."""
    import shlex

    parts = ["audiocap", "serve", "--model", str(model), "--index", str(index)]
    if captioner is not None:
        parts += ["--captioner", str(captioner)]
    if (host, port) != ("127.0.0.1", 8000):
        parts += ["--host", host, "--port", str(port)]
    return shlex.join(parts)


def default_serve_models(model: Path | None, index: Path, captioner: Path | None) -> tuple[Path, Path | None]:
    """``--model``: given, else the model recorded in the index, else the shipped CLAP model;
    ``--captioner``: given, else the shipped captioner when the installation has one."""
    import json

    from audiocap.pretrained import DefaultModelMissing, default_model, has_default

    if model is None:
        try:
            built = json.loads((index / "index.json").read_text(encoding="utf-8")).get("model") or {}
        except (OSError, ValueError):
            built = {}
        if built.get("path") and Path(built["path"]).is_dir():
            model = Path(built["path"])
        else:
            try:
                model = default_model("clap")
            except DefaultModelMissing as exc:
                raise fail(str(exc)) from None
    if captioner is None and has_default("captioner"):
        captioner = default_model("captioner")
    return model, captioner


def check_index_folder(index: Path) -> None:
    """Fail with what to do when ``--index`` is not an index folder (missing, or no index.json)."""
    where = "" if index.is_absolute() else f" (a relative path is read from the current folder {Path.cwd()})"
    if not index.is_dir():
        raise fail(f"--index {index}: not found{where}. Build an index of a sound folder with "
                   f"`audiocap index build FOLDER --out {index}`, or pass the index folder that "
                   "`make demo` printed (its serve command uses absolute paths)")
    if not (index / "index.json").is_file():
        raise fail(f"--index {index}: not an index folder (no index.json){where}; build one with "
                   f"`audiocap index build FOLDER --out {index}`")


def bind_port(host: str, port: int):
    """A listening socket on ``host:port``, or a clear error when the port is taken or the
    address is not this machine's. Bound before the models load, then handed to uvicorn."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise fail(f"port {port} on {host} is already in use (another `audiocap serve`?); stop "
                       "that program or pick another port with --port (--port 0 picks a free one)") from None
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host "
                   "(127.0.0.1 serves this machine only, 0.0.0.0 every network)") from None
    return sock


@app.command("serve")
def serve(
    model: Path | None = typer.Option(None, "--model", help="CLAP checkpoint folder (kind 'clap'; default: "
                                      "the model that built the index, else the shipped CLAP model)."),
    index: Path = typer.Option(..., "--index", help="Index folder built by `audiocap index build`."),
    captioner: Path | None = typer.Option(
        None, "--captioner", help="Captioner or WSAC checkpoint folder (default: the shipped captioner, "
        "if this installation has one); without any, /v1/caption answers 503."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (loopback by default)."),
    port: int = typer.Option(8000, min=0, max=65535, help="TCP port (0 picks a free one)."),
    max_upload_mb: float = typer.Option(20.0, min=0.01, help="Largest accepted upload, in MB."),
    max_duration: float = typer.Option(300.0, min=0.1, help="Longest accepted upload, in seconds "
                                       "(uploads over 30 s are captioned window by window)."),
    workers: int = typer.Option(2, min=1, max=64, help="Threads for decoding and model calls."),
    upload_timeout: float = typer.Option(30.0, min=0.1, help="Seconds an upload may take to arrive "
                                         "(slower clients get 408 and are disconnected)."),
    device: str = typer.Option("cpu", help="Torch device for the models (cpu, cuda, cuda:1...)."),
    allow_host: list[str] = typer.Option([], "--allow-host", help="Also answer requests for this Host "
                                         "name (repeatable; e.g. the name a reverse proxy forwards; '*' = any). "
                                         "By default only loopback names and --host are answered."),
    library: list[Path] = typer.Option([], "--library", help="Folder whose audio files may be played "
                                       "(repeatable; default: the folder the index was built from)."),
    engine: str = typer.Option("torch", "--backend", help="torch, or onnx: ONNX Runtime on exports of the "
                                "models (made once into the cache from checkpoints; export folders from "
                                "`audiocap export onnx` always run on onnx)."),
) -> None:
    """Serve the search/caption API and the web page (http://HOST:PORT/, API docs at /docs).

    Text queries and uploaded sounds are embedded with the CLAP model and ranked against the
    index; the page plays the hits (only files registered in the index are ever served) and
    captions dropped files when a captioner is given. Uploads are limited by --max-upload-mb
    and --max-duration; model calls run in a bounded thread pool, one at a time. Only audio
    files inside the library folder are streamed, and only requests for the allowed Host names
    are answered (a defence against DNS rebinding; see --allow-host).
    """
    check_index_folder(index)
    if engine not in ("torch", "onnx"):
        raise fail(f"unknown --backend '{engine}'; use torch or onnx")
    model, captioner = default_serve_models(model, index, captioner)
    for flag, path in (("--model", model), ("--captioner", captioner),
                       *(("--library", p) for p in library)):
        if path is not None and not path.is_dir():
            where = "" if path.is_absolute() else f"; a relative path is read from {Path.cwd()}"
            raise fail(f"{flag} {path}: not found (expected a folder{where})")
    sock = bind_port(host, port)  # before the models load: a busy port fails in a second

    from rich.console import Console

    from audiocap.serve.backend import ModelBackend

    console = Console(stderr=True)
    try:
        with console.status("loading the CLAP model, the index and the captioner..."):
            backend = ModelBackend.load(model, index, captioner, max_duration=max_duration,
                                        device=device, library=library, backend=engine)
    except Exception as exc:  # any load failure is a user-facing error, not a traceback
        sock.close()
        raise fail(f"could not load the models: {exc}") from None
    info = backend.info()
    console.print(f"{info['items']} indexed sounds ({info['playable']} playable), captioner: "
                  f"{'yes' if info['captioner'] else 'no'}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]listening on {host}: the service has no authentication[/yellow]")

    import uvicorn

    from audiocap.serve.app import create_app
    from audiocap.serve.library import allowed_hosts

    if not backend.library_roots:
        console.print("[yellow]no library folder (the index records none): sounds will not play; "
                      "pass --library FOLDER[/yellow]")
    hosts = allowed_hosts(host, allow_host)
    web = create_app(backend, max_upload_bytes=int(max_upload_mb * 1e6), max_duration=max_duration,
                     workers=workers, allowed_hosts=hosts, upload_timeout=upload_timeout)
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    console.print(f"open http://{shown}:{port}/  (API docs: http://{shown}:{port}/docs)")
    uvicorn.Server(uvicorn.Config(web, log_level="info")).run(sockets=[sock])
