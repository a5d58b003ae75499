"""ONNX export and the onnx backend (issue 18) on the shipped models: the real aisfx tower, the
shipped CLAP heads with MiniLM, the shipped captioner.

Each test compares ONNX Runtime with torch on the same inputs: embeddings within 1e-4 (fp32),
the same captions at beam 3, the same decoder log-probabilities step by step, and the CLI paths
(``export onnx``, ``--backend onnx`` on caption, index build and search) giving torch's results.
Clips are test clips of the demo data when it is built, else generated event-like sounds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from audiocap.audio.io import load_audio
from audiocap.cli import app
from audiocap.pretrained import default_model

SR = 44100
FOLEY = Path(__file__).resolve().parents[1] / "data" / "foley-default"
TOL = 1e-4


def event_clip(seed: int, seconds: float) -> np.ndarray:
    """Decaying tonal knocks and noise bursts over faint noise: an event-like stand-in clip."""
    rng = np.random.default_rng(seed)
    x = 0.003 * rng.standard_normal(int(seconds * SR))
    t = np.arange(int(0.3 * SR)) / SR
    for start in rng.uniform(0, seconds - 0.4, size=6):
        hz = rng.uniform(200, 3000)
        burst = 0.5 * np.exp(-10 * t) * (0.6 * np.sin(2 * np.pi * hz * t) + 0.4 * rng.standard_normal(len(t)))
        x[int(start * SR) : int(start * SR) + len(t)] += burst
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """Four 10-s clips (demo test split, or generated) plus a 3.7-s and a 23-s one (one short
    window; several windows with the last one overlapping)."""
    folder = tmp_path_factory.mktemp("clips")
    manifest = FOLEY / "manifest.jsonl"
    if manifest.exists():
        rows = [json.loads(line) for line in manifest.read_text().splitlines()]
        files = [FOLEY / r["audio"] for r in rows if r.get("split") == "test"][:4]
    else:
        files = []
        for i in range(4):
            sf.write(folder / f"gen{i}.wav", event_clip(i, 10.0), SR)
            files.append(folder / f"gen{i}.wav")
    a, b = load_audio(files[0], sr=SR), load_audio(files[1], sr=SR)
    sf.write(folder / "short.wav", a[: int(3.7 * SR)], SR)
    sf.write(folder / "long.wav", np.concatenate([a, b, a[: 3 * SR]]), SR)
    return [*files, folder / "short.wav", folder / "long.wav"]


@pytest.fixture(scope="module")
def clap_export(tmp_path_factory) -> Path:
    from audiocap.onnx_export import export_onnx

    return export_onnx(default_model("clap"), tmp_path_factory.mktemp("clap-onnx"))


@pytest.fixture(scope="module")
def captioner_export(tmp_path_factory) -> Path:
    from audiocap.onnx_export import export_onnx

    return export_onnx(default_model("captioner"), tmp_path_factory.mktemp("captioner-onnx"))


def test_model_card_describes_the_export(clap_export, captioner_export):
    from audiocap.onnx_export import checkpoint_sha256, read_card

    for folder, kind in ((clap_export, "clap"), (captioner_export, "captioner")):
        card = read_card(folder)
        src = default_model(kind)
        assert card["kind"] == kind and card["opset"] == 17 and card["sample_rate"] == SR
        assert card["source"]["sha256"] == checkpoint_sha256(src)
        recipe_policy = __import__("yaml").safe_load((src / "recipe.yaml").read_text())["audio_policy"]
        assert card["audio_policy"] == recipe_policy
        assert card["tower"] == {"name": "aisfx", "sample_rate": SR, "window_frames": 100, "hop_frames": 100,
                                 "frame_dim": 512, "peak_normalize": True}
        for name, graph in card["graphs"].items():
            assert (folder / graph["file"]).is_file()
            assert card["export_check"]["max_abs_diff_vs_torch"][name] <= TOL
        front = card["graphs"]["frontend"]
        assert front["inputs"] == [{"name": "wave", "dtype": "float32", "shape": ["batch", "samples"]}]
        assert front["outputs"][0]["shape"] == ["batch", "frames", 96]
        assert any("beam search" in step or "clap_text" in step for step in card["pipeline"])
    clap = read_card(clap_export)
    assert set(clap["graphs"]) == {"frontend", "audio_tower", "clap_audio_head", "clap_text"}
    assert clap["graphs"]["clap_text"]["inputs"][0]["shape"] == ["batch", "tokens"]
    cap = read_card(captioner_export)
    assert set(cap["graphs"]) == {"frontend", "audio_tower", "captioner_encoder", "captioner_step"}
    step = {i["name"]: i["shape"] for i in cap["graphs"]["captioner_step"]["inputs"]}
    assert step["past_k"] == [2, "rows", 4, "past", 64] and step["memory_mask"] == ["rows", "time"]


def test_clap_embeddings_match_torch(clap_export, clips):
    from audiocap.onnx_backend import OnnxClapEmbedder
    from audiocap.search import embed_wave, load_embedder

    torch_emb, onnx_emb = load_embedder(default_model("clap")), OnnxClapEmbedder(clap_export)
    waves = [load_audio(c, sr=SR) for c in clips]
    a = np.stack([embed_wave(torch_emb, w)[0] for w in waves])
    b = np.stack([embed_wave(onnx_emb, w)[0] for w in waves])
    assert [embed_wave(onnx_emb, w)[1] for w in waves][-2:] == [1, 3]  # short clip; 23 s -> 3 windows
    assert np.abs(a - b).max() <= TOL
    batch = waves[:4]  # four equal lengths: one batch through the graphs
    assert np.abs(torch_emb.embed_audio(batch) - onnx_emb.embed_audio(batch)).max() <= TOL
    texts = ["a dog barks", "rain falls on a tin roof while thunder rumbles far away", "footsteps", ""]
    ta, tb = torch_emb.embed_text(texts), onnx_emb.embed_text(texts)
    assert tb.shape == (4, 512) and np.abs(ta - tb).max() <= TOL
    assert np.allclose(np.linalg.norm(tb, axis=1), 1.0, atol=1e-5)


def test_captions_match_torch_at_beam_3(captioner_export, clips, tmp_path):
    """Same captions as torch, also for a 65-s file (streamed; one caption per 10-s window)."""
    from audiocap.captioning import caption_files
    from audiocap.onnx_backend import caption_files as onnx_caption_files

    sf.write(tmp_path / "65s.wav", np.concatenate([load_audio(c, sr=SR) for c in clips[:4]] * 2)[: 65 * SR], SR)
    files = [clips[0], clips[1], clips[4], clips[5], tmp_path / "65s.wav"]
    ref = caption_files(files, [default_model("captioner")], beam=3, precision="fp32")
    got = onnx_caption_files(files, [captioner_export], beam=3)
    assert len(ref) == 4 + 7 and [c.end for c in got[-7:]] == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 65.0]
    assert [c.text for c in got] == [c.text for c in ref]
    assert [(c.start, c.end, c.flag) for c in got] == [(c.start, c.end, c.flag) for c in ref]
    assert max(abs(a.score - b.score) for a, b in zip(ref, got)) <= 1e-3
    assert all(c.text and c.text != "silence" for c in got)


def test_decoder_step_with_cache_matches_torch_on_a_padded_batch(captioner_export):
    """Two items of 7 and 12 frames padded into one batch, three beams each: the onnx scorer
    (encoder per item, cache as arrays) gives torch's log-probabilities at every step."""
    from audiocap.captioning import load_captioner
    from audiocap.decoding import CaptionerScorer
    from audiocap.features.towers import pad_frames
    from audiocap.onnx_backend import OnnxCaptionerScorer
    from audiocap.onnx_export import read_card

    loaded = load_captioner(default_model("captioner"))
    ref = CaptionerScorer(loaded.model, bos_id=1, eos_id=2, pad_id=0)
    got = OnnxCaptionerScorer(captioner_export, read_card(captioner_export))
    gen = torch.Generator().manual_seed(0)
    x, mask = pad_frames([torch.rand(7, 512, generator=gen), torch.rand(12, 512, generator=gen)])
    rows = torch.tensor([0, 0, 0, 1, 1, 1])
    s_ref, s_got = ref.select(ref.start(x, mask), rows), got.select(got.start(x, mask), rows)
    tokens = torch.full((6,), 1)
    for step in range(6):
        lp_ref, s_ref = ref.step(tokens, s_ref)
        lp_got, s_got = got.step(tokens, s_got)
        assert np.abs(lp_ref.numpy() - lp_got.numpy()).max() <= TOL, step
        order = torch.tensor([2, 0, 1, 5, 3, 3])  # reorder and duplicate beams as beam search does
        s_ref, s_got = ref.select(s_ref, order), got.select(s_got, order)
        tokens = lp_ref.argmax(-1)[order]
    assert s_got["k"].shape == (2, 6, 4, 6, 64)


def test_feature_cache_on_the_onnx_tower(captioner_export, clips, tmp_path):
    """The feature cache takes the onnx tower like the torch one: the same frames, another key."""
    from audiocap.audio.policy import AudioPolicy
    from audiocap.data.manifest import Clip, read_manifest
    from audiocap.features.cache import cache_window_frames, read_window_frames
    from audiocap.features.towers import load_frame_tower
    from audiocap.onnx_backend import OnnxAudioTower

    (tmp_path / "a").mkdir()
    rows = []
    for i, c in enumerate(clips[4:]):
        sf.write(tmp_path / "a" / f"c{i}.wav", load_audio(c, sr=SR), SR)
        rows.append(json.dumps({"id": f"c{i}", "audio": f"a/c{i}.wav", "duration": 1.0, "captions": ["x"],
                                "tags": [], "source": "test", "license": "CC0", "split": "test"}))
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("\n".join(rows) + "\n")
    clip_rows: list[Clip] = read_manifest(manifest)
    policy = AudioPolicy(clip_seconds=10.0, hop_seconds=10.0, last="overlap", combine="concat")
    torch_tower = load_frame_tower("aisfx", {"hop_frames": 100})
    p_torch = cache_window_frames(torch_tower, manifest, clip_rows, "test", policy, tmp_path / "cache")
    p_onnx = cache_window_frames(OnnxAudioTower(captioner_export), manifest, clip_rows, "test", policy,
                                 tmp_path / "cache")
    assert p_torch != p_onnx
    a, b = read_window_frames(p_torch)[0], read_window_frames(p_onnx)[0]
    assert [len(v) for v in a.values()] == [len(v) for v in b.values()] == [1, 3]
    for cid in a:
        for fa, fb in zip(a[cid], b[cid]):
            assert fa.shape == fb.shape and float((fa - fb).abs().max()) <= TOL


def test_cli_caption_backend_onnx_prints_torch_captions(captioner_export, clips, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOCAP_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    files = [str(clips[0]), str(clips[4])]
    ref = runner.invoke(app, ["caption", *files, "--json", "--precision", "fp32"])
    assert ref.exit_code == 0, ref.output
    for extra in (["--backend", "onnx"], ["--model", str(captioner_export)]):
        res = runner.invoke(app, ["caption", *files, "--json", *extra])
        assert res.exit_code == 0, res.output
        texts = lambda out: [json.loads(line[line.index('{"file"'):])["caption"]  # noqa: E731
                             for line in out.splitlines() if '{"file"' in line]
        assert texts(res.output) == texts(ref.output) and len(texts(ref.output)) == 2
    cached = list((tmp_path / "cache" / "onnx").glob("captioner-*/model_card.json"))
    assert len(cached) == 1  # --backend onnx on a checkpoint exported it once into the cache
    card = json.loads(cached[0].read_text())
    cached[0].write_text(json.dumps({**card, "format": "audiocap-onnx/0"}))  # an older audiocap's export
    res = runner.invoke(app, ["caption", files[0], "--json", "--backend", "onnx"])
    assert res.exit_code == 0 and json.loads(cached[0].read_text())["format"] == card["format"]  # made again
    res = runner.invoke(app, ["caption", files[0], "--backend", "onnx", "--ensemble", str(default_model("captioner"))])
    assert res.exit_code == 2 and "one captioner" in res.output
    res = runner.invoke(app, ["caption", files[0], "--backend", "tensorrt"])
    assert res.exit_code == 2 and "unknown --backend" in res.output
    res = runner.invoke(app, ["caption", files[0], "--backend", "onnx", "--model", str(default_model("clap"))])
    assert res.exit_code == 2 and "'clap' checkpoint" in res.output and "Traceback" not in res.output


def test_cli_index_build_and_search_backend_onnx(clap_export, clips, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOCAP_CACHE", str(tmp_path / "cache"))
    lib = tmp_path / "lib"
    lib.mkdir()
    for c in clips:
        (lib / c.name).symlink_to(c)
    runner = CliRunner()
    hits = {}
    for name, extra in (("torch", []), ("onnx", ["--backend", "onnx"]), ("export", ["--model", str(clap_export)])):
        res = runner.invoke(app, ["index", "build", str(lib), "--out", str(tmp_path / name), *extra])
        assert res.exit_code == 0, res.output
        res = runner.invoke(app, ["search", "a dog barks", "--index", str(tmp_path / name), "--json", "-k", "6",
                                  *extra[:2]])
        assert res.exit_code == 0, res.output
        hits[name] = json.loads(res.output)
    for name in ("onnx", "export"):
        assert [h["id"] for h in hits[name]] == [h["id"] for h in hits["torch"]]
        assert max(abs(a["score"] - b["score"]) for a, b in zip(hits[name], hits["torch"])) <= TOL
    assert "confidence" in hits["export"][0]  # the calibration travels with the export
    res = runner.invoke(app, ["search", "--audio", str(clips[5]), "--index", str(tmp_path / "torch"), "--json",
                              "--backend", "onnx"])
    assert res.exit_code == 0 and json.loads(res.output)[0]["id"] == clips[5].name
    assert abs(json.loads(res.output)[0]["score"] - 1.0) <= TOL


def test_cli_export_and_its_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["export", "onnx", "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and res.output.startswith("error: ") and "Traceback" not in res.output
    res = runner.invoke(app, ["export", "onnx", "--out", str(tmp_path / "cap")])  # the shipped captioner
    assert res.exit_code == 0, res.output
    assert "exported captioner 4 graph(s)" in res.output and (tmp_path / "cap" / "model_card.json").is_file()
    (tmp_path / "cap" / "captioner_step.onnx").unlink()
    sf.write(tmp_path / "x.wav", event_clip(9, 2.0), SR)
    res = runner.invoke(app, ["caption", str(tmp_path / "x.wav"), "--model", str(tmp_path / "cap")])
    assert res.exit_code == 2 and "captioner_step.onnx: missing" in res.output and "export onnx" in res.output


def test_serve_backend_onnx_answers_as_torch(clap_export, captioner_export, clips, tmp_path):
    """The service's model backend on onnx: text and audio search, captions and zero-shot
    probabilities as on torch."""
    from audiocap.search import build_index
    from audiocap.serve.backend import ModelBackend

    clap, captioner = default_model("clap"), default_model("captioner")
    lib = tmp_path / "lib"
    lib.mkdir()
    for c in clips:
        (lib / c.name).symlink_to(c)
    build_index(lib, clap, tmp_path / "idx", progress=False)
    ref = ModelBackend.load(clap, tmp_path / "idx", captioner)
    for got in (ModelBackend.load(clap, tmp_path / "idx", captioner, backend="onnx"),
                ModelBackend.load(clap_export, tmp_path / "idx", captioner_export)):
        a, b = ref.search_text("a dog barks", 3), got.search_text("a dog barks", 3)
        assert [h.id for h in a] == [h.id for h in b] and abs(a[0].score - b[0].score) <= TOL
        assert a[0].confidence is not None and abs(a[0].confidence - b[0].confidence) <= 1e-3
        wave = load_audio(clips[1], sr=SR)
        assert [h.id for h in got.search_audio(wave, 2)] == [h.id for h in ref.search_audio(wave, 2)]
        assert got.caption(wave, 3) == ref.caption(wave, 3)
        pa, pb = ref.classify(wave, ["dog", "rain", "bird"], "the sound of {}"), \
            got.classify(wave, ["dog", "rain", "bird"], "the sound of {}")
        assert [p["label"] for p in pa] == [p["label"] for p in pb]
        assert max(abs(x["probability"] - y["probability"]) for x, y in zip(pa, pb)) <= 1e-3
    res = CliRunner().invoke(app, ["serve", "--index", str(tmp_path / "idx"), "--backend", "tflite"])
    assert res.exit_code == 2 and "unknown --backend" in res.output


def test_eval_captioner_backend_onnx(captioner_export, clips, tmp_path):
    """``eval captioner --backend onnx``: the frame cache comes from the onnx tower (its own file)
    and the split's captions are torch's."""
    from audiocap.evaluation.captioner import caption_split

    (tmp_path / "a").mkdir()
    rows = []
    for i, c in enumerate(clips[:2] + clips[4:]):
        sf.write(tmp_path / "a" / f"c{i}.wav", load_audio(c, sr=SR), SR)
        rows.append(json.dumps({"id": f"c{i}", "audio": f"a/c{i}.wav", "duration": 1.0, "captions": ["x y"],
                                "tags": [], "source": "test", "license": "CC0", "split": "test"}))
    (tmp_path / "m.jsonl").write_text("\n".join(rows) + "\n")
    cache = tmp_path / "cache"
    ref = caption_split([default_model("captioner")], tmp_path / "m.jsonl", cache_dir=str(cache), precision="fp32")
    for model, backend in ((default_model("captioner"), "onnx"), (captioner_export, "torch")):
        got = caption_split([model], tmp_path / "m.jsonl", cache_dir=str(cache), backend=backend)
        assert got["backend"] == "onnx" and got["windows"] == ref["windows"] == 1 + 1 + 1 + 3
        assert [r["caption"] for r in got["predictions"]] == [r["caption"] for r in ref["predictions"]]
    assert len(list(cache.rglob("*-windows.safetensors"))) == 2  # torch frames and onnx frames, apart
    res = CliRunner().invoke(app, ["eval", "captioner", "--model", str(captioner_export), "--manifest",
                                   str(tmp_path / "m.jsonl"), "--backend", "coreml"])
    assert res.exit_code == 2 and "unknown --backend" in res.output


def test_missing_onnx_packages_are_named(tmp_path, monkeypatch):
    """Without the [onnx] extra, export and --backend onnx say what to install (exit 2, one line)."""
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    monkeypatch.setenv("AUDIOCAP_CACHE", str(tmp_path / "cache"))
    sf.write(tmp_path / "x.wav", event_clip(3, 2.0), SR)
    runner = CliRunner()
    for args in (["export", "onnx", "--out", str(tmp_path / "o")],
                 ["caption", str(tmp_path / "x.wav"), "--backend", "onnx"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and "onnxruntime package is not installed" in res.output, res.output
        assert "pip install -e '.[onnx]'" in res.output and "Traceback" not in res.output
