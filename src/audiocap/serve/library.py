"""What the service may stream, and which Host headers it answers: the security boundary.

Two rules, both checked on every request (never cached, so a file swapped for a symlink after
start-up is caught):

* **Only library audio is streamed.** An index item's recorded path is resolved to its real
  path (every symlink followed); it is served only when that real path lies inside one of the
  library roots (the folder the index was built from, or folders given to ``audiocap serve
  --library``), is a regular file with a supported audio suffix, and starts with the magic
  bytes of an audio container. An index.json edited to point at ``/etc/passwd``, or a library
  file replaced by a symlink to a secret, is answered 404 like an unknown id.
* **Only expected Host headers are answered** (DNS-rebinding defence): a web page on
  ``attacker.example`` whose name is re-pointed at 127.0.0.1 makes the browser send
  ``Host: attacker.example``; the service answers 421 unless the name is a loopback name, the
  address it binds, or one allowed with ``--allow-host``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from audiocap.audio.io import SUPPORTED_SUFFIXES

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
WILDCARD_HOSTS = ("", "0.0.0.0", "::")


def library_roots(index_folder: str | os.PathLike | None, index: Any,
                  extra: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """The folders whose files may be streamed (real paths, existing folders only).

    ``extra`` (``serve --library``) when given; else the index's recorded ``source``; else, for
    indexes built before it was recorded, the ``source`` folder of ``report.json`` beside it.
    An empty list means nothing is playable.
    """
    extra = [Path(os.path.realpath(p)) for p in extra]
    if extra:
        return [p for p in extra if p.is_dir()]
    source = getattr(index, "source", None)
    if not source and index_folder is not None:
        try:
            report = json.loads((Path(index_folder) / "report.json").read_text(encoding="utf-8"))
            source = report.get("source") if isinstance(report, dict) else None
        except (OSError, ValueError):
            source = None
    if not isinstance(source, str) or not source:
        return []
    root = Path(os.path.realpath(source))
    return [root] if root.is_dir() and root != root.parent else []


def _inside(path: str, root: Path) -> bool:
    try:
        return os.path.commonpath([path, str(root)]) == str(root)
    except ValueError:  # different drives (Windows)
        return False


def library_file(path: str | os.PathLike | None, roots: Sequence[Path] | None, *,
                 sniff: bool = True) -> Path | None:
    """The real path of ``path`` if it may be streamed, else None (reasons in the module docstring).

    ``sniff`` also reads the first bytes and requires an audio container's magic number.
    """
    if path is None or not roots:
        return None
    real = os.path.realpath(path)
    if Path(real).suffix.lower() not in SUPPORTED_SUFFIXES:
        return None
    if not any(_inside(real, root) for root in roots):
        return None
    try:
        if not Path(real).is_file():  # a FIFO or device would block or never end
            return None
        if sniff:
            from audiocap.serve.uploads import ApiError, sniff_audio

            with open(real, "rb") as fh:
                head = fh.read(64)
            try:
                sniff_audio(head)
            except ApiError:
                return None
    except OSError:
        return None
    return Path(real)


def allowed_hosts(host: str, extra: Iterable[str] = ()) -> list[str]:
    """The Host names ``serve --host HOST`` answers: loopback names, HOST itself (unless it is a
    wildcard address; then the machine's host name) and the ``--allow-host`` names."""
    import socket

    names = [*LOOPBACK_HOSTS, *extra]
    if host in WILDCARD_HOSTS:
        names.append(socket.gethostname())
    else:
        names.append(host)
    return sorted({normalize_host(n) for n in names if n})


def normalize_host(value: str) -> str:
    """``Host`` header or name -> lower-case name without port, brackets or final dot."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8000
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        value = value.split(":", 1)[0]
    return value.rstrip(".")


class HostGuard:
    """ASGI middleware: answer 421 to requests whose Host header is not allowed (400 if absent).

    ``"*"`` among the names turns the check off (a reverse proxy that checks hosts itself).
    """

    def __init__(self, app, names: Iterable[str]) -> None:
        self.app = app
        self.names = {normalize_host(n) for n in names}
        self.any = "*" in self.names

    async def __call__(self, scope, receive, send) -> None:
        if self.any or scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        raw = dict(scope.get("headers") or []).get(b"host")
        if raw is None:
            return await self._refuse(scope, receive, send, 400, "missing_host",
                                      "the request has no Host header")
        host = normalize_host(raw.decode("latin-1"))
        if host in self.names:
            return await self.app(scope, receive, send)
        return await self._refuse(
            scope, receive, send, 421, "host_not_allowed",
            f"this server does not answer for host {host[:100]!r}; open it as "
            f"{' or '.join(sorted(self.names)[:3])}, or start it with --allow-host NAME")

    async def _refuse(self, scope, receive, send, status: int, code: str, detail: str) -> None:
        from starlette.responses import JSONResponse

        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await JSONResponse({"error": code, "detail": detail}, status_code=status)(scope, receive, send)
