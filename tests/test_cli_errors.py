"""Malformed data and configs through the CLI (issue 20 E): each case ends with a non-zero exit,
no traceback, and a message naming the problem. The inputs are written by the test the way a
user's broken download or a hostile file would look."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audiocap.cli import app

REPO = Path(__file__).resolve().parents[1]
CLAP = str(REPO / "configs" / "clap" / "debug.yaml")
LONG = "a" * 300


def _wavcaps(tmp: Path, body: str) -> list[str]:
    (tmp / "audio").mkdir(exist_ok=True)
    (tmp / "w.json").write_text(body, encoding="utf-8")
    return ["data", "import", "wavcaps", str(tmp / "w.json"), "-o", str(tmp / "out.jsonl"),
            "--audio", str(tmp / "audio"), "--keep-missing"]


def _audiocaps(tmp: Path, rows: str) -> list[str]:
    (tmp / "ac").mkdir()
    (tmp / "audio").mkdir()
    head = "audiocap_id,youtube_id,start_time,caption\n"
    for split in ("train", "val", "test"):
        (tmp / "ac" / f"{split}.csv").write_text(head + (rows if split == "train" else ""))
    return ["data", "import", "audiocaps", str(tmp / "ac"), "-o", str(tmp / "out.jsonl"),
            "--audio", str(tmp / "audio"), "--keep-missing"]


def _clotho(tmp: Path, name: str) -> list[str]:
    (tmp / "c").mkdir()
    for split in ("development", "validation", "evaluation"):
        (tmp / "c" / f"clotho_captions_{split}.csv").write_text(
            "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n" + f"{name},a,b,c,d,e\n")
    return ["data", "import", "clotho", str(tmp / "c"), "-o", str(tmp / "out.jsonl"),
            "--audio", str(tmp / "audio")]


def _manifest(tmp: Path, line: str) -> list[str]:
    (tmp / "m.jsonl").write_text(line + "\n")
    return ["data", "info", str(tmp / "m.jsonl")]


def _fifo(tmp: Path) -> list[str]:
    os.mkfifo(tmp / "pipe.wav")
    return ["audio", "info", str(tmp / "pipe.wav")]


def _latin1_csv(tmp: Path) -> Path:
    path = tmp / "refs.csv"
    path.write_bytes(b"file_name,caption_1\nb.wav,a dog barks\na.wav,caf\xe9 noise\n")  # Latin-1, not UTF-8
    return path


# (id, build(tmp) -> argv, words the message must contain)
CASES = [
    ("wavcaps-id-300-chars", lambda t: _wavcaps(t, json.dumps({"data": [{"id": LONG, "caption": "a dog"}]})),
     ["file name too long"]),
    ("wavcaps-lone-surrogate", lambda t: _wavcaps(t, '{"data": [{"id": "x", "caption": "a dog \\ud800 barks"}]}'),
     ["\\ud800", "surrogate"]),
    ("wavcaps-json-100k-deep", lambda t: _wavcaps(t, '{"data": ' + "[" * 100_000 + "]" * 100_000 + "}"),
     ["w.json", "nested too deeply"]),
    ("wavcaps-5000-digit-int", lambda t: _wavcaps(t, '{"data": [], "n": ' + "7" * 5000 + "}"),
     ["w.json", "4300 digits"]),
    ("audiocaps-youtube-id-300-chars", lambda t: _audiocaps(t, f"1,{LONG},30,a dog barks\n"),
     ["file name too long"]),
    ("audiocaps-start-1e300", lambda t: _audiocaps(t, "1,abc,1e300,a dog barks\n"), ["bad start_time '1e300'"]),
    ("clotho-file-name-300-chars", lambda t: _clotho(t, LONG + ".wav"), ["file name too long"]),
    ("manifest-json-100k-deep", lambda t: _manifest(t, "[" * 100_000 + "]" * 100_000), ["m.jsonl:1", "nested"]),
    ("manifest-5000-digit-int", lambda t: _manifest(t, '{"id": "a", "duration": ' + "5" * 5000 + "}"),
     ["m.jsonl:1", "4300 digits"]),
    ("audio-file-name-too-long", lambda t: ["audio", "info", str(t / (LONG + ".wav"))], ["File name too long"]),
    ("audio-fifo", _fifo, ["pipe.wav", "not a regular file"]),
    ("eval-refs-not-utf8", lambda t: ["eval", "captions", "--pred", str(_latin1_csv(t)), "--refs", str(t / "refs.csv"),
                                      "--metrics", "bleu_1"], ["refs.csv:3", "UTF-8"]),
    ("wsac-captions-not-utf8", lambda t: ["train", "wsac", "--captions", str(_latin1_csv(t)), "-o", str(t / "w")],
     ["refs.csv:3", "UTF-8"]),
    ("config-is-a-folder", lambda t: ["train", "clap", "--config", str(t)], ["is a folder, not a recipe file"]),
    ("override-malformed-yaml", lambda t: ["train", "clap", "--config", CLAP, "optim.lr=[1,2"],
     ["optim.lr", "not valid YAML"]),
    ("override-5000-digits", lambda t: ["train", "clap", "--config", CLAP, "trainer.seed=" + "9" * 5000],
     ["trainer.seed", "4300 digits"]),
    ("accelerator-gpu-on-cpu", lambda t: ["train", "clap", "--config", CLAP, "trainer.accelerator=gpu"],
     ["trainer.accelerator=gpu", "no CUDA GPU"]),
    ("devices-0", lambda t: ["train", "clap", "--config", CLAP, "trainer.devices=0"], ["trainer.devices=0"]),
    ("max-epochs-negative", lambda t: ["train", "clap", "--config", CLAP, "trainer.max_epochs=-1"],
     ["trainer.max_epochs=-1"]),
    ("lr-1e30", lambda t: ["train", "clap", "--config", CLAP, "optim.lr=1e30"], ["optim.lr"]),
    ("embed-dim-0", lambda t: ["train", "clap", "--config", CLAP, "model.embed_dim=0"], ["model.embed_dim=0"]),
    ("warmup-negative", lambda t: ["train", "clap", "--config", CLAP, "optim.warmup_steps=-5"],
     ["optim.warmup_steps=-5"]),
]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="accelerator case assumes no GPU")
@pytest.mark.parametrize("build, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_input_is_one_clear_error(build, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, build(tmp_path))
    out = result.output  # stdout + stderr
    assert result.exit_code != 0, out
    assert "Traceback" not in out and not isinstance(result.exception, (OSError, RecursionError, UnicodeError)), \
        repr(result.exception)
    assert "error:" in out
    for word in words:
        assert word in out, out[-600:]
