"""The service streams only library audio and answers only expected Host names (issue 20 A).

Hostile cases as they happen to users: a library file replaced by a symlink to a secret, an
index.json edited to point at /etc/passwd, a text file named .wav, a DNS-rebinding page that
sends ``Host: attacker.example``. The real :class:`ModelBackend` and a real saved index are
used; only the CLAP model is a stand-in (nothing here embeds).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from audiocap.index import VectorIndex
from audiocap.serve.app import create_app
from audiocap.serve.backend import ModelBackend
from audiocap.serve.library import allowed_hosts, library_file, normalize_host

SECRET = b"root:x:0:0:TOP-SECRET:/root:/bin/bash\n"


class FakeClap:
    sample_rate = 16000


def tone(path: Path, hz: float = 440.0) -> bytes:
    t = np.arange(1600) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 16000)
    return path.read_bytes()


@pytest.fixture
def lib(tmp_path):
    """A library folder of three sounds, an index built over it, and secrets outside it."""
    root = tmp_path / "library"
    (root / "sub").mkdir(parents=True)
    data = {name: tone(root / name, hz) for name, hz in (("a.wav", 220), ("b.wav", 330), ("sub/c.wav", 440))}
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "passwd").write_bytes(SECRET)
    secret_wav = tone(outside / "secret.wav", 1000)  # audio, but not the library's
    items = [{"id": n, "path": str((root / n).resolve())} for n in data]
    VectorIndex.build(np.eye(3, 4, dtype=np.float32), items).save(tmp_path / "index")
    return {"root": root, "data": data, "outside": outside, "secret_wav": secret_wav,
            "index": tmp_path / "index"}


def client_for(index_folder: Path, **kw) -> TestClient:
    backend = ModelBackend(FakeClap(), VectorIndex.load(index_folder), index_path=str(index_folder))
    return TestClient(create_app(backend, **kw), base_url="http://127.0.0.1:8000")


def test_index_records_its_library_folder(lib):
    meta = json.loads((lib["index"] / "index.json").read_text())
    assert meta["source"] == os.path.realpath(lib["root"])
    assert VectorIndex.load(lib["index"]).source == meta["source"]


def test_library_files_stream(lib):
    c = client_for(lib["index"])
    for name, data in lib["data"].items():
        r = c.get(f"/v1/audio/{name}")
        assert r.status_code == 200 and r.content == data


@pytest.mark.parametrize("target", ["passwd", "secret.wav"])
def test_symlink_out_of_the_library_is_refused(lib, target):
    victim = lib["root"] / "b.wav"
    victim.unlink()
    victim.symlink_to(lib["outside"] / target)  # swapped after the index was built
    c = client_for(lib["index"])
    r = c.get("/v1/audio/b.wav")
    assert r.status_code == 404 and r.json()["error"] == "unknown_id"
    assert b"TOP-SECRET" not in r.content and b"RIFF" not in r.content
    assert c.get("/v1/audio/a.wav").status_code == 200  # the rest of the library still plays


def test_symlink_swapped_while_serving_is_refused(lib):
    c = client_for(lib["index"])
    assert c.get("/v1/audio/b.wav").status_code == 200
    (lib["root"] / "b.wav").unlink()
    (lib["root"] / "b.wav").symlink_to(lib["outside"] / "secret.wav")
    assert c.get("/v1/audio/b.wav").status_code == 404


def test_symlink_inside_the_library_still_plays(lib):
    (lib["root"] / "b.wav").unlink()
    (lib["root"] / "b.wav").symlink_to(lib["root"] / "sub" / "c.wav")
    r = client_for(lib["index"]).get("/v1/audio/b.wav")
    assert r.status_code == 200 and r.content == lib["data"]["sub/c.wav"]


@pytest.mark.parametrize("where", ["/etc/passwd", "outside-wav", "dotdot"])
def test_edited_index_json_is_refused(lib, where):
    meta_path = lib["index"] / "index.json"
    meta = json.loads(meta_path.read_text())
    meta["items"][0]["path"] = {"/etc/passwd": "/etc/passwd",
                                "outside-wav": str(lib["outside"] / "secret.wav"),
                                "dotdot": str(lib["root"] / ".." / "private" / "secret.wav")}[where]
    meta_path.write_text(json.dumps(meta))
    r = client_for(lib["index"]).get("/v1/audio/a.wav")
    assert r.status_code == 404
    assert b"root:" not in r.content and b"RIFF" not in r.content


def test_non_audio_inside_the_library_is_refused(lib):
    (lib["root"] / "b.wav").write_bytes(SECRET)  # a text file named .wav
    (lib["root"] / "a.wav").unlink()
    os.mkfifo(lib["root"] / "a.wav")  # a FIFO would block the reader forever
    c = client_for(lib["index"])
    assert c.get("/v1/audio/b.wav").status_code == 404
    assert c.get("/v1/audio/a.wav").status_code == 404


def test_old_index_without_source_uses_report_or_plays_nothing(lib):
    meta_path = lib["index"] / "index.json"
    meta = json.loads(meta_path.read_text())
    del meta["source"]
    meta["items"][0]["path"] = "/etc/passwd"
    meta_path.write_text(json.dumps(meta))
    c = client_for(lib["index"])
    assert c.get("/v1/audio/b.wav").status_code == 404  # no library folder known: nothing plays
    (lib["index"] / "report.json").write_text(json.dumps({"source": str(lib["root"])}))
    c = client_for(lib["index"])
    assert c.get("/v1/audio/b.wav").status_code == 200
    assert c.get("/v1/audio/a.wav").status_code == 404


def test_library_file_rules(lib):
    roots = [Path(os.path.realpath(lib["root"]))]
    assert library_file(lib["root"] / "a.wav", roots) == roots[0] / "a.wav"
    assert library_file(lib["root"] / "a.wav", None) is None
    assert library_file(lib["root"] / "a.wav", []) is None
    twin = lib["root"].parent / "library-evil"  # a prefix match is not containment
    twin.mkdir()
    tone(twin / "x.wav")
    assert library_file(twin / "x.wav", roots) is None


@pytest.mark.parametrize("host, status", [
    ("attacker.example", 421), ("attacker.example:8000", 421), ("127.0.0.1.attacker.example", 421),
    ("localhost", 200), ("LOCALHOST.:8000", 200), ("127.0.0.1:8000", 200), ("[::1]:8000", 200),
])
def test_host_header_is_checked(lib, host, status):
    r = client_for(lib["index"]).get("/v1/audio/a.wav", headers={"host": host})
    assert r.status_code == status
    if status != 200:
        assert r.json()["error"] == "host_not_allowed" and b"RIFF" not in r.content
        assert "--allow-host" in r.json()["detail"]


def test_allowed_host_names():
    assert normalize_host("[::1]:80") == "::1" and normalize_host("Example.COM.:1") == "example.com"
    assert allowed_hosts("127.0.0.1") == sorted({"localhost", "127.0.0.1", "::1"})
    assert "192.168.1.5" in allowed_hosts("192.168.1.5")
    assert "proxy.example" in allowed_hosts("127.0.0.1", ["proxy.example"])
    assert "0.0.0.0" not in allowed_hosts("0.0.0.0")


def test_allow_host_star_answers_any(lib):
    r = client_for(lib["index"], allowed_hosts=["*"]).get("/healthz", headers={"host": "anything.example"})
    assert r.status_code == 200


def test_serve_cli_passes_allow_host_and_library(lib, tmp_path, monkeypatch):
    """`audiocap serve --allow-host proxy.example --library DIR` configures the app it runs."""
    import uvicorn
    from typer.testing import CliRunner

    from audiocap.cli import app

    seen = {}

    def load(model, index, captioner=None, **kw):
        seen["library"] = kw.get("library")
        return ModelBackend(FakeClap(), VectorIndex.load(index), index_path=str(index), library=kw["library"])

    monkeypatch.setattr(ModelBackend, "load", staticmethod(load))
    class Server:  # what `audiocap serve` runs; here it only records the app
        def __init__(self, config):
            seen["app"] = config.app

        def run(self, sockets=None):
            for sock in sockets or []:
                sock.close()

    monkeypatch.setattr(uvicorn, "Server", Server)
    other = tmp_path / "other"
    other.mkdir()
    tone(other / "o.wav")
    (tmp_path / "model").mkdir()
    r = CliRunner().invoke(app, ["serve", "--model", str(tmp_path / "model"), "--index", str(lib["index"]),
                                 "--port", "0", "--allow-host", "proxy.example", "--library", str(other)])
    assert r.exit_code == 0, r.output
    assert [str(p) for p in seen["library"]] == [str(other)]
    c = TestClient(seen["app"], base_url="http://proxy.example")
    assert c.get("/healthz").status_code == 200
    assert c.get("/healthz", headers={"host": "attacker.example"}).status_code == 421
    assert c.get("/v1/audio/a.wav").status_code == 404  # --library replaced the index's folder
    bad = CliRunner().invoke(app, ["serve", "--model", str(tmp_path / "model"), "--index", str(lib["index"]),
                                   "--port", "0", "--library", str(tmp_path / "nope")])
    assert bad.exit_code == 2 and "--library" in bad.output
