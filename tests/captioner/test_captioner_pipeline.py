"""End to end on tones: vocab, cached features, training, checkpoint round trip, captioning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from audiocap.captioning import CaptionPipeline, caption_files, captioner_for, load_captioner
from audiocap.checkpoint import read_recipe
from audiocap.config import load_recipe
from audiocap.data.manifest import Clip, write_manifest
from audiocap.text.vocab import Vocab, tokenize_captions
from audiocap.train.captioner import CaptionerRecipe, train_captioner

CAPS = {440.0: ["a low tone hums", "a low steady hum"], 1760.0: ["a high pitched beep", "a high beep rings"]}


def test_vocab_round_trip():
    toks = tokenize_captions(["A dog barks, loudly!", "The dog  BARKS."])
    assert toks[0] == ["a", "dog", "barks", "loudly"]
    v = Vocab.build(toks, min_count=2)
    assert v.words[4:] == ["barks", "dog"]
    ids = v.encode(toks[0])
    assert ids[0] == v.bos_id and ids[-1] == v.eos_id and ids[1] == v.unk_id
    assert v.decode(v.encode(toks[1][1:])) == "dog barks"
    assert Vocab.from_json(v.to_json()).words == v.words
    with pytest.raises(ValueError):
        Vocab.from_json({"words": ["x"]})


@pytest.fixture(scope="module")
def trained(tmp_path_factory, standin_tower, sine_writer):
    root = tmp_path_factory.mktemp("cap")
    clips = []
    for i in range(12):
        freq = 440.0 if i % 2 else 1760.0
        split = "train" if i < 8 else "val"
        sine_writer(root / f"c{i}.wav", seconds=2.0, freq=freq)
        clips.append(Clip(id=f"c{i}", audio=f"c{i}.wav", duration=2.0, captions=CAPS[freq], split=split))
    write_manifest(root / "manifest.jsonl", clips)
    recipe = load_recipe(CaptionerRecipe, None, [
        f"data.manifest={root / 'manifest.jsonl'}", f"data.cache_dir={root / 'cache'}", "data.min_count=1",
        "model.d_model=32", "model.ff_dim=64", "model.dropout=0.0", "model.proj_dim=8", "model.encoder_layers=1",
        "train.epochs=10", "train.threads=1", "train.batch_size=4", "train.lr=3e-3", f"train.out={root / 'run'}", "train.progress=false",
        "loss.aux=cl4ac", "loss.weight=1.0", "clip_seconds=2.0", "tower.name=standin", "decode.max_len=8",
    ])
    ckpt = train_captioner(recipe, tower=standin_tower())
    return root, ckpt, standin_tower


def test_training_writes_checkpoint_that_round_trips(trained):
    root, ckpt, Tower = trained
    assert read_recipe(ckpt)["kind"] == "captioner"
    assert len(list((root / "cache").glob("*/*-audio.safetensors"))) == 2  # train and val, shared cache layout
    loaded = load_captioner(ckpt)
    again = load_captioner(ckpt)
    for (k, a), (_, b) in zip(loaded.model.state_dict().items(), again.model.state_dict().items()):
        assert torch.equal(a, b), k
    assert "tone" in loaded.vocab.index and "beep" in loaded.vocab.index
    assert captioner_for(ckpt).__name__ == "caption_files"


def test_trained_captioner_tells_tones_apart(trained):
    root, ckpt, Tower = trained
    m = load_captioner(ckpt)
    pipe = CaptionPipeline([m], beam=3, tower=Tower())
    low = pipe.caption_wave(0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 8000).astype(np.float32))[0]
    high = pipe.caption_wave(0.3 * np.sin(2 * np.pi * 1760 * np.arange(16000) / 8000).astype(np.float32))[0]
    assert low.text in CAPS[440.0] or "low" in low.text
    assert high.text in CAPS[1760.0] or "high" in high.text


def test_long_file_per_window_and_whole(trained, monkeypatch, sine_writer):
    import audiocap.features.towers as towers

    root, ckpt, Tower = trained
    monkeypatch.setattr(towers, "load_frame_tower", lambda name, options=None, **kw: Tower())
    path = sine_writer(root / "long.wav", seconds=5.5)
    per = caption_files([path], [ckpt], beam=3, per_window=True)
    # the checkpoint's policy (2-s training clips): the last window shifted back to end at 5.5 s
    assert [(c.start, c.end) for c in per] == [(0.0, 2.0), (2.0, 4.0), (3.5, 5.5)]
    whole = caption_files([path], [ckpt, ckpt], beam=1)  # ensemble, greedy
    assert len(whole) == 1 and (whole[0].start, whole[0].end) == (0.0, 5.5)


def test_cli_caption_and_errors(trained, monkeypatch, sine_writer):
    import json

    from typer.testing import CliRunner

    import audiocap.features.towers as towers
    from audiocap.cli import app

    root, ckpt, Tower = trained
    monkeypatch.setattr(towers, "load_frame_tower", lambda name, options=None, **kw: Tower())
    path = sine_writer(root / "cli.wav", seconds=4.5, freq=1760.0)
    runner = CliRunner()
    res = runner.invoke(app, ["caption", str(path), "--model", str(ckpt), "--per-window", "--json"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(r["start"], r["end"]) for r in rows] == [(0.0, 2.0), (2.0, 4.0), (2.5, 4.5)]  # last ends at 4.5 s
    res = runner.invoke(app, ["caption", str(root / "missing.wav"), "--model", str(ckpt)])
    assert res.exit_code == 2 and "missing.wav: file not found" in res.output
    res = runner.invoke(app, ["caption", str(path), "--model", str(root)])
    assert res.exit_code == 2 and "no recipe.yaml" in res.output


def test_cached_training_frames_equal_inference_frames(trained):
    """The frames training read from the feature cache are the frames captioning computes."""
    from audiocap.data.manifest import audio_path, read_manifest
    from audiocap.train.captioner_data import split_frames

    root, ckpt, Tower = trained
    manifest = root / "manifest.jsonl"
    clips = [c for c in read_manifest(manifest) if c.split == "train"]
    cached = split_frames(manifest, clips, "train", Tower(), clip_seconds=2.0, cache_dir=root / "cache")
    pipe = CaptionPipeline([load_captioner(ckpt)], tower=Tower(), precision="fp32")
    from audiocap.audio.io import load_audio

    for clip in clips[:3]:
        frames, spans = pipe.window_frames(load_audio(audio_path(manifest, clip), sr=8000))
        assert len(frames) == 1 and spans == [(0.0, 2.0)]
        torch.testing.assert_close(frames[0], cached[clip.id], atol=1e-5, rtol=0)


def test_a_bf16_recipe_reads_the_bf16_cache_clap_filled(trained):
    """data.precision reaches the cache key: bf16 frames come from a bf16 file (the one a CLAP
    recipe with the same tower, manifest and precision fills), never from the fp32 one."""
    from audiocap.data.manifest import read_manifest
    from audiocap.train.captioner_data import split_frames
    from audiocap.train.features import cache_audio_frames, read_cache

    root, _, Tower = trained
    manifest = root / "manifest.jsonl"
    clips = [c for c in read_manifest(manifest) if c.split == "train"][:4]
    cache = root / "cache-bf16"
    clap_file = cache_audio_frames(Tower(), manifest, clips, "train[:4]", cache, max_seconds=2.0, precision="bf16")
    fp32 = split_frames(manifest, clips, "train[:4]", Tower(), clip_seconds=2.0, cache_dir=cache)
    bf16 = split_frames(manifest, clips, "train[:4]", Tower(), clip_seconds=2.0, cache_dir=cache, precision="bf16")
    assert sorted(p.name for p in cache.rglob("*.safetensors")) == sorted([clap_file.name] * 2)  # fp32 file added
    assert read_cache(clap_file)[1]["precision"] == "bf16"
    stored = read_cache(clap_file)[0]["frames"]
    torch.testing.assert_close(bf16[clips[0].id], stored[0][: bf16[clips[0].id].shape[0]], atol=0, rtol=0)
    assert any(not torch.equal(bf16[c.id], fp32[c.id]) for c in clips)


def test_precision_choice(monkeypatch):
    """auto is bf16 exactly where bf16 runs natively: a CPU with AVX512-BF16 or AMX, a CUDA
    device that supports it; fp32 elsewhere. Explicit choices are kept."""
    from audiocap.captioning import resolve_precision

    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto", "meta") == "fp32"
    for avx512_bf16, amx in [(False, False), (True, False), (False, True), (True, True)]:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v, raising=False)
        assert resolve_precision("auto", "cpu") == ("bf16" if avx512_bf16 or amx else "fp32")
    for supported in (False, True):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda v=supported: v)
        assert resolve_precision("auto", "cuda") == ("bf16" if supported else "fp32")
    monkeypatch.undo()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():  # this machine, as the kernel reports its CPU flags
        flags = set(cpuinfo.read_text().split())
        assert resolve_precision("auto", "cpu") == ("bf16" if flags & {"avx512_bf16", "amx_tile"} else "fp32")
    with pytest.raises(ValueError, match="auto, fp32, bf16"):
        resolve_precision("fp16")


def test_cli_rejects_unknown_precision(trained, sine_writer):
    from typer.testing import CliRunner

    from audiocap.cli import app

    root, ckpt, _ = trained
    res = CliRunner().invoke(app, ["caption", str(root / "c0.wav"), "--model", str(ckpt), "--precision", "fp8"])
    assert res.exit_code == 2 and "unknown --precision 'fp8'" in res.output


def test_one_thread_blocks_overlapping_in_threads_restore_the_count(monkeypatch):
    """Two decodes in different threads whose blocks overlap (A opens, B opens, A closes, B
    closes): B must still run on one thread after A closes, and the process-wide count must end
    as it began, not stuck at 1. torch's count is modelled by one process-wide value, so the
    test checks the bookkeeping itself, whatever the OpenMP runtime does per thread."""
    import threading

    import torch

    from audiocap.captioning import one_thread

    count = {"n": 2}
    monkeypatch.setattr(torch, "get_num_threads", lambda: count["n"])
    monkeypatch.setattr(torch, "set_num_threads", lambda n: count.__setitem__("n", n))
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with one_thread():
            a_in.set()
            b_in.wait(5)
            seen["a"] = torch.get_num_threads()
        a_out.set()

    def b():
        a_in.wait(5)
        with one_thread():
            b_in.set()
            a_out.wait(5)
            seen["b"] = torch.get_num_threads()  # A has closed; B still decodes

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"a": 1, "b": 1}
    assert count["n"] == 2
