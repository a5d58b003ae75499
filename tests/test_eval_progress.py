"""Progress with counts and time left on every evaluation phase (issue 19 "Progress").

The events of :mod:`audiocap.progress` are recorded from real work (a tiny captioner captions a
split, the Evaluator scores it with METEOR, sbert_sim and the fluency detector) and from SPICE
JVMs whose log lines are the official jar's (replayed by a stand-in process: a real cold SPICE run
takes minutes); the command line is run through CliRunner, whose stderr is not a terminal, so
it must print count lines.
"""

from __future__ import annotations

import importlib
import io
import json
import re
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

import audiocap.progress as progress_mod
from audiocap.cli import app
from audiocap.progress import Phase, Progress, ProgressView
from framed_tower import FramedProjection as Tower  # the captioner tests' stand-in tower: 8 kHz -> 0.25 s frames -> 16-d

CAPS = {440.0: ["a low tone hums", "a low steady hum"], 1760.0: ["a high pitched beep", "a high beep rings"]}
N_VAL = 36  # more than one captioning batch (16): the counts must move in between


class Recorder:
    """A progress callback that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Progress] = []

    def __call__(self, event: Progress) -> None:
        self.events.append(event)

    def phases(self) -> list[str]:
        out: list[str] = []
        for e in self.events:
            if not out or out[-1] != e.label:
                out.append(e.label)
        return out

    def of(self, label: str) -> list[Progress]:
        return [e for e in self.events if e.label == label]


def assert_well_formed(events: list[Progress]) -> None:
    """Counts never go down and end at the total, time never goes back, and the time left is a
    number as soon as something is done (0 at the end)."""
    assert events, "no events"
    done = [e.done for e in events]
    assert done == sorted(done) and done[0] == 0 and done[-1] == events[-1].total, done
    assert [e.elapsed for e in events] == sorted(e.elapsed for e in events)
    assert len({e.total for e in events}) == 1
    for e in events:
        if e.done > 0:
            assert isinstance(e.eta, float) and e.eta >= 0, e
    assert events[-1].finished and events[-1].eta == 0.0


@pytest.fixture(autouse=True)
def every_event(monkeypatch):
    monkeypatch.setattr(progress_mod, "EVERY", 0.0)  # no throttling: every count reaches the recorder


@pytest.fixture(scope="module")
def captioner(tmp_path_factory):
    """A captioner trained for 2 epochs on 8 tones; 36 validation tones to caption."""
    from audiocap.config import load_recipe
    from audiocap.data.manifest import Clip, write_manifest
    from audiocap.train.captioner import CaptionerRecipe, train_captioner

    root = tmp_path_factory.mktemp("progress")
    t = np.arange(8000) / 8000
    clips = []
    for i in range(8 + N_VAL):
        freq = 440.0 if i % 2 else 1760.0
        sf.write(root / f"c{i}.wav", (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 8000)
        clips.append(Clip(id=f"c{i}", audio=f"c{i}.wav", duration=1.0, captions=CAPS[freq],
                          split="train" if i < 8 else "val"))
    write_manifest(root / "manifest.jsonl", clips)
    recipe = load_recipe(CaptionerRecipe, None, [
        f"data.manifest={root / 'manifest.jsonl'}", f"data.cache_dir={root / 'cache'}", "data.min_count=1",
        "model.d_model=32", "model.ff_dim=64", "model.dropout=0.0", "model.proj_dim=8", "model.encoder_layers=1",
        "train.epochs=2", "train.threads=1", "train.batch_size=4", "train.lr=5e-3", f"train.out={root / 'run'}",
        "train.progress=false", "clip_seconds=1.0", "tower.name=standin", "decode.max_len=8"])
    return root, train_captioner(recipe, tower=Tower())


def test_a_phase_counts_up_with_time_left_from_the_rate_after_a_slow_start():
    clock = iter([0.0, 30.0, 31.0, 32.0, 40.0]).__next__
    rec = Recorder()
    phase = Phase(rec, "meteor", 4, clock=clock)  # events at t=0 (start); 30 s of JVM start, then 1 item/s
    phase.update(1)
    phase.update(2)
    phase.advance(1)
    phase.update(2)  # never goes back
    phase.finish()
    assert [e.done for e in rec.events] == [0, 1, 2, 3, 4]
    assert rec.events[0].eta is None
    assert rec.events[1].eta == pytest.approx(90.0)  # only the slow first item to go by: 30 s/item
    assert rec.events[2].eta == pytest.approx(2.0)  # then the rate since the first count: 1 s/item, 2 left
    assert rec.events[3].eta == pytest.approx(1.0)
    assert rec.events[4].finished and rec.events[4].eta == 0.0 and rec.events[4].elapsed == 40.0
    assert rec.events[2].line() == "meteor: 2/4 items (50%), 31.0 s, ~2.0 s left"
    assert rec.events[4].line() == "meteor: 4/4 items (100%), done in 40.0 s"
    quiet = Recorder()
    throttled = Phase(quiet, "x", 100, every=3600)
    for _ in range(100):
        throttled.advance()
    assert [e.done for e in quiet.events] == [0, 100]  # first and last only


def test_line_view_prints_a_silent_phase_at_least_every_interval():
    buf = io.StringIO()
    with ProgressView(lines=True, interval=0.3, file=buf) as view:
        Phase(view, "tokenize", 10).finish()  # fast: one line
        phase = Phase(view, "spice", 6, detail="starting Java")
        time.sleep(1.0)
        phase.update(detail="references: parsing")  # a new stage prints at once
        time.sleep(1.4)  # the jar reports nothing for a while
        phase.update(3)
        time.sleep(0.05)
        phase.finish(detail="references parsed, candidates parsed")
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("tokenize: 10/10 items (100%), done in")
    spice = [ln for ln in lines if ln.startswith("spice:")]
    assert any("references: parsing" in ln for ln in spice)
    silent = [ln for ln in spice if ln.startswith("spice: 0/6") and "references: parsing" in ln]
    assert len(silent) >= 3, lines  # about every 0.3 s while nothing came
    shown = [float(re.search(r", ([\d.]+) s,", ln).group(1)) for ln in silent]
    assert shown == sorted(shown) and shown[-1] - shown[0] >= 0.6  # the elapsed time moves on
    assert spice[-1].startswith("spice: 6/6 items (100%), done in") and spice[-1].endswith("candidates parsed")


def test_captioning_and_scoring_report_every_phase_in_order(captioner):
    from audiocap.evaluation.captioner import caption_split, candidates
    from audiocap.metrics.evaluator import Evaluator

    root, ckpt = captioner
    rec = Recorder()
    report = caption_split([ckpt], root / "manifest.jsonl", split="val", beam=2, tower=Tower(),
                           cache_dir=str(root / "cache"), precision="fp32", progress=rec)
    assert rec.phases() == ["window features", "captioning"]
    for label in rec.phases():
        assert_well_formed(rec.of(label))
        assert rec.of(label)[-1].total == N_VAL
    assert [e.done for e in rec.of("captioning")] == [0, 16, 32, 36]  # the pipeline's batches
    again = Recorder()
    caption_split([ckpt], root / "manifest.jsonl", split="val", beam=2, tower=Tower(),
                  cache_dir=str(root / "cache"), precision="fp32", progress=again)
    assert again.of("window features")[-1].detail == "from cache"

    scored = Recorder()
    res = Evaluator(["bleu_4", "cider_d", "meteor", "sbert_sim", "fluency_error_rate"], progress=scored)(
        candidates(report), report["references"])
    assert all(r.available for r in res.values()), res
    assert scored.phases() == ["tokenize", "bleu, rouge_l, cider_d", "meteor", "sbert_sim", "fluency_error_rate"]
    for label in scored.phases():
        assert_well_formed(scored.of(label))
    assert scored.of("meteor")[-1].total == N_VAL and scored.of("sbert_sim")[-1].total == N_VAL * 3


def test_meteor_counts_items_as_the_jar_returns_them():
    from audiocap.metrics.meteor import _shared_process

    seen: list[int] = []
    cands = ["a dog barks", "rain falls", "a car passes by", "birds sing"]
    refs = [["a dog is barking"], ["rain is falling"], ["a car drives past"], ["birds are singing"]]
    per_item, _ = _shared_process().score(cands, refs, progress=seen.append)
    assert seen == [1, 2, 3, 4] and len(per_item) == 4


# What the official SPICE 1.0 jar and CoreNLP 3.6.0 print on stderr (a cold run of this machine):
COLD_LOG = """Parsing reference captions
Initiating Stanford parsing pipeline
[main] INFO edu.stanford.nlp.pipeline.StanfordCoreNLP - Adding annotator tokenize
[main] INFO edu.stanford.nlp.pipeline.StanfordCoreNLP - Adding annotator parse
Loading classifier from edu/stanford/nlp/models/ner/english.all.3class.distsim.crf.ser.gz ... done [12.0 sec].
Loading classifier from edu/stanford/nlp/models/ner/english.conll.4class.distsim.crf.ser.gz ... done [24.3 sec].
Threads( StanfordCoreNLP ) [20.685 seconds]
Parsing test captions
Threads( StanfordCoreNLP ) [0.816 seconds]
SPICE evaluation took: 1.977 min""".splitlines()
WARM_REFS_LOG = ["Parsing reference captions", "Parsing test captions",  # references cached, candidates not
                 "Initiating Stanford parsing pipeline",
                 "Loading classifier from edu/stanford/nlp/models/ner/english.conll.4class.distsim.crf.ser.gz "
                 "... done [9.1 sec].", "Threads( StanfordCoreNLP ) [0.5 seconds]", "SPICE evaluation took: 40 s"]


def fake_jvms(monkeypatch, logs: list[list[str]]):
    """Replace the SPICE JVMs by processes that print the given log lines one per poll and then
    write an output for every item of their shard."""
    spice_mod = importlib.import_module("audiocap.metrics.spice")  # audiocap.metrics.spice is also a function

    started = []

    class FakeJVM:
        def __init__(self, cmd, cwd, stdout, stderr):
            self.log, self.lines = Path(stdout.name), list(logs[len(started)])
            self.out = Path(cmd[cmd.index("-out") + 1])
            self.items = json.loads(Path(cmd[1]).read_text())  # java_command is ["java"] here
            self.returncode, self.args = None, cmd
            started.append(self)

        def poll(self):
            if self.lines:
                with open(self.log, "a") as fh:
                    fh.write(self.lines.pop(0) + "\n")
                return None
            self.out.write_text(json.dumps([{"image_id": it["image_id"], "scores": {"All": {
                "f": 0.5, "pr": 0.5, "re": 0.5}}} for it in self.items]))
            self.returncode = 0
            return 0

        def kill(self):
            pass

        def wait(self, timeout=None):
            return self.returncode

    monkeypatch.setattr(spice_mod, "java_command", lambda folder, memory="8G": ["java"])
    monkeypatch.setattr(subprocess, "Popen", FakeJVM)
    return started


def test_spice_reports_each_jvm_stage_shard_counts_and_cache_use(monkeypatch, tmp_path):
    from audiocap.metrics.spice import run_spice, spice_stage

    assert [spice_stage("\n".join(COLD_LOG[:k])) for k in (0, 1, 2, 6, 7, 8, 9, 10)] == [
        "starting Java", "references: reading the cache", "references: loading CoreNLP", "references: parsing",
        "references: parsed", "candidates: reading the cache", "scoring", "done"]
    fake_jvms(monkeypatch, [COLD_LOG, WARM_REFS_LOG])
    rec = Recorder()
    items = [{"image_id": str(i), "test": "a dog barks", "refs": ["a dog barks"]} for i in range(5)]
    out = run_spice(items, tmp_path, workers=2, progress=rec)
    assert [o["image_id"] for o in out] == [str(i) for i in range(5)]
    assert_well_formed(rec.events)
    assert sorted({e.done for e in rec.events}) in ([0, 2, 5], [0, 3, 5])  # a shard's items when it ends
    details = [e.detail for e in rec.events]
    assert "2 JVMs: 1 references: loading CoreNLP, 1 candidates: reading the cache" in details, details
    assert any(d.startswith("2 JVMs: ") and "1 done" in d for d in details), details
    assert details[-1] == "references parsed (1 of 2 shards from the cache), candidates parsed"


def test_eval_captions_prints_count_lines_when_not_a_terminal(tmp_path):
    pred, ref = tmp_path / "p.csv", tmp_path / "r.csv"
    pred.write_text("file_name,caption\na.wav,a dog barks\nb.wav,rain falls on a roof\nc.wav,a man speaks\n")
    ref.write_text("file_name,caption_1,caption_2\na.wav,a dog is barking,dogs bark\n"
                   "b.wav,rain on a metal roof,heavy rain\nc.wav,a man talks,someone speaks\n")
    res = CliRunner().invoke(app, ["eval", "captions", "--pred", str(pred), "--refs", str(ref),
                                   "--metrics", "bleu_4,cider_d,meteor"])
    assert res.exit_code == 0, res.output
    err = res.stderr.splitlines()
    assert any(re.match(r"tokenize: 9/9 captions \(100%\), done in [\d.]+ s$", ln) for ln in err), err
    # one system: its lines may name it ("meteor [p.csv]: ...")
    assert any(re.match(r"bleu, rouge_l, cider_d( \[[^]]*\])?: 3/3 items \(100%\), done in", ln) for ln in err), err
    assert any(re.match(r"meteor( \[[^]]*\])?: 3/3 items \(100%\), done in", ln) for ln in err), err
    assert "\r" not in res.stderr


def test_eval_captioner_prints_captioning_counts(captioner, monkeypatch):
    import audiocap.features.towers as towers
    import audiocap.metrics.evaluator as evaluator

    root, ckpt = captioner
    monkeypatch.setattr(towers, "load_frame_tower", lambda name, options=None, **kw: Tower())
    monkeypatch.setattr(evaluator, "ALL_METRICS", ("bleu_4", "cider_d"))  # what --skip-spice keeps, made fast
    res = CliRunner().invoke(app, ["eval", "captioner", "--model", str(ckpt), "--manifest",
                                   str(root / "manifest.jsonl"), "--split", "val", "--beam", "2",
                                   "--out", str(root / "eval"), "--cache-dir", str(root / "cache2")])
    assert res.exit_code == 0, res.output
    err = res.stderr.splitlines()
    assert any(re.match(rf"window features: {N_VAL}/{N_VAL} clips \(100%\), done in", ln) for ln in err), err
    assert any(re.match(rf"captioning: {N_VAL}/{N_VAL} clips \(100%\), done in .* - beam 2$", ln) for ln in err), err
    assert any(ln.startswith("bleu, rouge_l, cider_d: ") for ln in err), err


def test_validation_metrics_in_training_print_progress(captioner, capfd):
    from audiocap.captioning import load_captioner
    from audiocap.train.val_metrics import CaptionMetrics

    root, ckpt = captioner
    loaded = load_captioner(ckpt)
    frames = [torch.randn(4, 16) for _ in range(5)]
    cb = CaptionMetrics(frames, [["a low tone hums"]] * 5, loaded.vocab, metrics=["cider_d"], every=1, beam=1,
                        alpha=0.0, max_len=8, progress=True)
    trainer = SimpleNamespace(sanity_checking=False, current_epoch=2, max_epochs=3)
    logged = {}
    cb.on_validation_epoch_end(trainer, SimpleNamespace(model=loaded.model, log=lambda k, v, **kw: logged.update({k: v})))
    err = capfd.readouterr().err.splitlines()
    assert any(re.match(r"epoch 2 validation captioning: 5/5 clips \(100%\), done in .* - beam 1$", ln)
               for ln in err), err
    assert any(ln.startswith("epoch 2 validation bleu, rouge_l, cider_d: 5/5 items (100%)") for ln in err), err
    assert "val/cider_d" in logged
    quiet = CaptionMetrics(frames, [["a low tone hums"]] * 5, loaded.vocab, metrics=["cider_d"], every=1, beam=1,
                           alpha=0.0, max_len=8, progress=False)
    quiet.on_validation_epoch_end(trainer, SimpleNamespace(model=loaded.model, log=lambda *a, **k: None))
    assert "validation" not in capfd.readouterr().err


def test_setup_spice_warm_shows_clip_counts_and_stages(monkeypatch, tmp_path):
    import audiocap.metrics.spice_setup as setup_mod

    spice_mod = importlib.import_module("audiocap.metrics.spice")

    folder, shared = tmp_path / "spice", tmp_path / "shared"
    folder.mkdir()
    csv = shared / "data" / "clotho" / "clotho_captions_evaluation.csv"
    csv.parent.mkdir(parents=True)
    csv.write_text("file_name,caption_1,caption_2\n" + "".join(
        f"f{i}.wav,a dog barks number {i},dogs bark {i}\n" for i in range(3)))
    monkeypatch.setattr(setup_mod, "setup_spice", lambda target, mvn_args=(), progress=None: folder)
    monkeypatch.setattr(spice_mod, "spice_status", lambda f=None: (folder, ""))
    fake_jvms(monkeypatch, [COLD_LOG])
    monkeypatch.setattr(progress_mod, "FIRST_LINE", 0.0)  # the stand-in JVM runs 2 s: print from the start
    res = CliRunner().invoke(app, ["metrics", "setup-spice", "--dir", str(folder), "--warm", "clotho-eval",
                                   "--shared", str(shared)])
    assert res.exit_code == 0, res.output
    err = res.stderr.splitlines()
    assert any(ln.startswith("warm clotho-eval: 0/3 clips (0%)") and ln.endswith("references: loading CoreNLP")
               for ln in err), err
    assert any(re.match(r"warm clotho-eval: 3/3 clips \(100%\), done in .* - references parsed, candidates parsed$",
                        ln) for ln in err), err
    assert "  clotho-eval: 6 reference captions cached" in res.stdout.splitlines()
