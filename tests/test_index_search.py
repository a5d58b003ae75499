"""VectorIndex and sound-collection search, with a stand-in embedder (spectral band energies)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from audiocap.cli import app
from audiocap.data.manifest import Clip, write_manifest
from audiocap.index import IndexParams, VectorIndex, VectorIndexError
from audiocap.search import build_index, embed_file, search

SR, BANDS = 16000, 32  # 32 bands of 250 Hz up to 8 kHz


class BandEmbedder:
    """Stand-in for a CLAP model: audio -> normalized energy in 32 linear frequency bands;
    text "<f> Hz" -> the unit vector of the band holding frequency f. Deterministic."""

    sample_rate = SR
    clip_seconds = 4.0

    def __init__(self) -> None:
        self.audio_calls = 0

    def embed_audio(self, waves):
        self.audio_calls += 1
        out = np.zeros((len(waves), BANDS), dtype=np.float32)
        for i, w in enumerate(waves):
            mag = np.abs(np.fft.rfft(w))  # (F,)
            band = np.minimum(np.fft.rfftfreq(len(w), 1 / SR) // (SR / 2 / BANDS), BANDS - 1)
            out[i] = np.bincount(band.astype(int), weights=mag, minlength=BANDS) + 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def embed_text(self, texts):
        out = np.full((len(texts), BANDS), 1e-3, dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, int(float(re.match(r"\s*([\d.]+)", t).group(1)) // (SR / 2 / BANDS))] = 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


FREQS = {"a/low.wav": 440, "b/mid.flac": 1125, "high.WAV": 3125, "c/d/top.ogg": 6125}


@pytest.fixture
def collection(tmp_path: Path, tone) -> Path:
    root = tmp_path / "sounds"
    for rel, f in FREQS.items():
        tone(f"sounds/{rel}", freq=f, seconds=1.5)
    tone("sounds/long.wav", freq=2125, seconds=11.0)  # 3 windows of 4 s
    (root / "notes.txt").write_text("not audio")
    return root


def _corrupt(root: Path) -> None:
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00garbage that is not audio" * 4)
    (root / "empty.flac").write_bytes(b"")


def test_round_trip_each_clip_finds_itself(collection):
    emb = BandEmbedder()
    index, report = build_index(collection, emb, progress=False)
    assert index.kind == "flat" and report["indexed"] == len(index) == 5
    assert report["windows"] == 4 + 3  # the 11 s file is embedded as three 4 s windows
    for item in index.items:
        vec = embed_file(emb, item["path"])[0]
        hits = index.hits(vec, k=3)[0]
        assert hits[0]["id"] == item["id"] and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
        assert hits[0]["score"] > hits[1]["score"] + 0.1
    long = next(i for i in index.items if i["id"] == "long.wav")
    assert long["windows"] == 3 and long["duration"] == pytest.approx(11.0)
    # a text query lands on the tone in its band; an audio query through the API works too
    assert search(index, text="1125 Hz", k=2, model=emb)[0]["id"] == "b/mid.flac"
    top = search(index, audio=collection / "c/d/top.ogg", k=10, model=emb)
    assert [h["rank"] for h in top] == [1, 2, 3, 4, 5] and top[0]["id"] == "c/d/top.ogg"


def test_save_load_gives_identical_results(collection, tmp_path):
    emb = BandEmbedder()
    index, _ = build_index(collection, emb, tmp_path / "idx", progress=False)
    queries = emb.embed_text(["440 Hz", "3125 Hz", "2125 Hz"])
    again = VectorIndex.load(tmp_path / "idx")
    for a, b in zip(index.search(queries, 4), again.search(queries, 4)):
        np.testing.assert_array_equal(a, b)
    assert again.items == index.items and again.kind == "flat"
    index.save(tmp_path / "idx")  # re-save replaces the faiss file, never leaves two
    assert len(list((tmp_path / "idx").glob("vectors-*.faiss"))) == 1
    meta = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert meta["format"] == "audiocap-index" and meta["count"] == 5 and meta["dim"] == BANDS


def _clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Groups of 20 noisy copies of random centres: neighbours exist but are not trivial to find."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 20, dim))
    return (np.repeat(centres, 20, axis=0) + rng.standard_normal((n, dim))).astype(np.float32)


@pytest.mark.parametrize("kind, knob, low, high", [
    ("ivf", "nprobe", 1, 16), ("pqfs", "refine", 1, 20), ("hnsw", "ef_search", None, 64)])
def test_approximate_agrees_with_exact(kind, knob, low, high, tmp_path):
    x = _clustered(4000, 48)
    items = [{"id": f"c{i}", "path": f"{i}.wav"} for i in range(len(x))]
    q = x[::40] + 0.3 * np.random.default_rng(1).standard_normal((100, 48)).astype(np.float32)
    exact = VectorIndex.build(x, items)
    approx = VectorIndex.build(x, items, params=IndexParams(exact_below=100, kind=kind))
    assert exact.kind == "flat" and approx.kind == kind
    s_e, r_e = exact.search(q, 10)

    def recall(value):
        approx.set_search_params(**{knob: value})
        s_a, r_a = approx.search(q, 10)
        same = r_a == r_e  # where the same row is found, its score is the exact inner product
        np.testing.assert_allclose(s_a[same], s_e[same], atol=1e-5)
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(r_a, r_e)])

    if low is not None:  # the cheapest setting really is approximate...
        assert recall(low) < 0.9
    assert recall(high) >= 0.95  # ...and the knob buys recall back
    loaded = VectorIndex.load(approx.save(tmp_path / kind))  # knobs survive a round trip
    assert loaded.kind == kind and loaded.params == approx.params
    np.testing.assert_array_equal(loaded.search(q, 10)[1], approx.search(q, 10)[1])
    if kind == "ivf":  # scanning every cell is exact search
        approx.set_search_params(nprobe=approx.params.ivf_nlist)
        np.testing.assert_array_equal(approx.search(q, 10)[1], r_e)


def test_corrupt_and_missing_files_are_skipped_and_reported(collection, tmp_path):
    _corrupt(collection)
    index, report = build_index(collection, BandEmbedder(), tmp_path / "idx", progress=False)
    assert len(index) == 5 and report["found"] == 7
    reasons = {row["id"]: row["reason"] for row in report["skipped"]}
    assert set(reasons) == {"broken.wav", "empty.flac"}
    assert "corrupt" in reasons["broken.wav"] and "empty" in reasons["empty.flac"]
    on_disk = json.loads((tmp_path / "idx" / "report.json").read_text())
    assert on_disk["skipped"] == report["skipped"]
    # a manifest naming a missing file: skipped with "file not found", captions carried over
    man = tmp_path / "m.jsonl"
    write_manifest(man, [
        Clip(id="x1", audio="sounds/a/low.wav", duration=1.5, captions=["a low tone"]),
        Clip(id="x2", audio="sounds/nowhere.wav", duration=1.0),
    ])
    index, report = build_index(man, BandEmbedder(), progress=False)
    assert [i["id"] for i in index.items] == ["x1"] and index.items[0]["captions"] == ["a low tone"]
    assert "file not found" in report["skipped"][0]["reason"]


def test_k_larger_than_collection_and_bad_queries(collection):
    index, _ = build_index(collection, BandEmbedder(), progress=False)
    scores, rows = index.search(np.ones(BANDS), k=50)
    assert rows.shape == (1, 5) and sorted(rows[0]) == [0, 1, 2, 3, 4]
    assert np.all(np.diff(scores[0]) <= 1e-7)  # best first
    with pytest.raises(VectorIndexError, match="dimension 7 does not match the index dimension 32"):
        index.search(np.ones((2, 7)), k=1)
    with pytest.raises(VectorIndexError, match="k must be"):
        index.search(np.ones(BANDS), k=0)
    with pytest.raises(VectorIndexError, match="exactly one"):
        search(index, text="440 Hz", audio=collection / "high.WAV", model=BandEmbedder())
    with pytest.raises(VectorIndexError, match="nothing to index"):
        VectorIndex.build(np.zeros((0, 4)), [])
    with pytest.raises(VectorIndexError, match="no index.json"):
        VectorIndex.load(collection)


def test_cli_build_and_search(collection, tmp_path, monkeypatch):
    _corrupt(collection)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"stand-in weights")
    monkeypatch.setattr("audiocap.search.load_embedder", lambda path, backend="torch": BandEmbedder())
    runner, out = CliRunner(), tmp_path / "idx"
    res = runner.invoke(app, ["index", "build", str(collection), "--model", str(ckpt), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "indexed 5 of 7" in res.output and "broken.wav" in res.output
    res = runner.invoke(app, ["search", "3125 Hz", "--index", str(out), "-k", "2", "--json"])
    hits = json.loads(res.stdout)
    assert res.exit_code == 0 and [h["id"] for h in hits][0] == "high.WAV" and len(hits) == 2
    res = runner.invoke(app, ["search", "--audio", str(collection / "long.wav"), "--index", str(out)])
    assert res.exit_code == 0 and "long.wav" in res.stdout.splitlines()[0]
    (ckpt / "model.safetensors").write_bytes(b"retrained weights")  # index remembers the hash
    res = runner.invoke(app, ["search", "440 Hz", "--index", str(out)])
    assert res.exit_code == 2 and "model changed" in res.output
    res = runner.invoke(app, ["search", "440 Hz", "--index", str(out), "--model", str(ckpt)])
    assert res.exit_code == 0 and "a/low.wav" in res.stdout.splitlines()[0]
    res = runner.invoke(app, ["search", "--index", str(out)])
    assert res.exit_code == 2 and "exactly one" in res.output


def test_cli_errors_are_clear(collection, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["index", "build", str(collection), "--model", str(tmp_path / "nope"),
                              "--out", str(tmp_path / "idx")])
    assert res.exit_code == 2 and "error:" in res.output and "model not found" in res.output
    res = runner.invoke(app, ["search", "a dog", "--index", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "no index.json" in res.output  # an uncaught error would exit 1


def test_cli_help():
    runner = CliRunner()
    for cmd, word in ((["index", "build", "--help"], "--out"), (["search", "--help"], "--audio"),
                      (["index", "--help"], "build")):
        res = runner.invoke(app, cmd)
        assert res.exit_code == 0 and word in res.output, res.output


def test_pqfs_shards_keep_row_order_and_persist(tmp_path):
    """A PQ scan split into 3 threaded shards returns global rows; it round-trips through 3
    faiss files, and a version-1 folder (one faiss file) still loads."""
    x = _clustered(3000, 32)
    items = [{"id": f"c{i}", "path": f"{i}.wav"} for i in range(len(x))]
    one = VectorIndex.build(x, items, params=IndexParams(exact_below=100, kind="pqfs", pq_shards=1))
    three = VectorIndex.build(x, items, params=IndexParams(exact_below=100, kind="pqfs", pq_shards=3))
    assert one.params.pq_shards == 1 and three.params.pq_shards == 3 and len(three) == 3000
    probe = x[[0, 999, 1000, 1999, 2000, 2999]]  # the first and last row of every shard
    for index in (one, three):
        index.set_search_params(refine=400)  # k * refine >= a shard's rows: exact re-ranking of all
        scores, rows = index.search(probe, 1)
        assert rows[:, 0].tolist() == [0, 999, 1000, 1999, 2000, 2999]
    exact = VectorIndex.build(x, items)
    q = x[::30] + 0.3 * np.random.default_rng(2).standard_normal((100, 32)).astype(np.float32)
    np.testing.assert_array_equal(three.search(q, 10)[1], exact.search(q, 10)[1])
    folder = three.save(tmp_path / "sharded")
    assert len(list(folder.glob("vectors-*.faiss"))) == 3
    loaded = VectorIndex.load(folder)
    assert loaded.params.pq_shards == 3
    np.testing.assert_array_equal(loaded.search(q, 10)[1], three.search(q, 10)[1])
    old = one.save(tmp_path / "v1")  # rewrite as the version-1 layout
    meta = json.loads((old / "index.json").read_text())
    meta["version"], meta["faiss_file"] = 1, meta.pop("faiss_files")[0]
    (old / "index.json").write_text(json.dumps(meta))
    np.testing.assert_array_equal(VectorIndex.load(old).search(q, 10)[1], one.search(q, 10)[1])


def test_manifest_items_keep_tags_license_and_the_folder_source(collection, tmp_path):
    from audiocap.data.manifest import Clip, write_manifest

    manifest = write_manifest(collection / "m.jsonl", [
        Clip(id="a", audio="long.wav", duration=11.0, captions=["a tone"], tags=["tone"], source="synth",
             license="CC0", meta={"author": "me"}),
        Clip(id="b", audio="long.wav", duration=11.0, captions=["a tone"])])
    index, _ = build_index(manifest, BandEmbedder(), progress=False)
    a, b = index.items
    assert (a["tags"], a["license"], a["source"], a["author"]) == (["tone"], "CC0", "synth", "me")
    assert "tags" not in b and "license" not in b  # empty fields stay out of index.json
    folder_index, _ = build_index(collection, BandEmbedder(), progress=False)
    assert folder_index.source == str(collection.resolve())


def test_links_folders_and_pipes_named_like_audio_are_skipped_with_a_reason(collection, tmp_path, monkeypatch):
    """Issue 20 E: entries with an audio suffix that are not files were silently left out."""
    (collection / "dead.wav").symlink_to(tmp_path / "deleted.wav")
    (collection / "loop.wav").symlink_to(collection / "loop2.flac")
    (collection / "loop2.flac").symlink_to(collection / "loop.wav")
    (collection / "x.wav").mkdir()
    os.mkfifo(collection / "pipe.mp3")
    (collection / "ok.wav").symlink_to(collection / "a" / "low.wav")  # a working link is indexed
    index, report = build_index(collection, BandEmbedder(), tmp_path / "idx", progress=False)
    assert len(index) == 6 and report["found"] == 11 and report["indexed"] == 6
    reasons = {row["id"]: row["reason"] for row in report["skipped"]}
    assert reasons == {
        "dead.wav": f"{collection / 'dead.wav'}: is a broken symbolic link (to {tmp_path / 'deleted.wav'}, "
                    "which does not exist) (fix or delete the link)",
        "loop.wav": f"{collection / 'loop.wav'}: is a symbolic link loop (fix or delete the link)",
        "loop2.flac": f"{collection / 'loop2.flac'}: is a symbolic link loop (fix or delete the link)",
        "x.wav": f"{collection / 'x.wav'}: is a folder, not an audio file",
        "pipe.mp3": f"{collection / 'pipe.mp3'}: is not a regular file (a pipe, socket or device) (give a "
                    "file on disk; streams are not read)",
    }
    monkeypatch.setattr("audiocap.search.load_embedder", lambda path, backend="torch": BandEmbedder())
    res = CliRunner().invoke(app, ["index", "build", str(collection), "--model", str(_fake_ckpt(tmp_path)),
                                   "--out", str(tmp_path / "idx2")])
    assert res.exit_code == 0, res.output
    assert "indexed 6 of 11" in res.output and "skipped 5 unreadable file(s)" in res.output
    assert "is a symbolic link loop" in res.output and "x.wav: is a folder" in res.output


def _fake_ckpt(tmp_path: Path) -> Path:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir(exist_ok=True)
    (ckpt / "model.safetensors").write_bytes(b"stand-in weights")
    return ckpt


def test_as_embedder_keeps_an_embedder_and_wraps_a_model():
    """What the service holds (an embedder such as the ONNX one, or a loaded torch CLAP model)
    reaches embed_wave through one adapter."""
    from audiocap.search import ClapEmbedder, as_embedder

    band = BandEmbedder()
    assert as_embedder(band) is band

    class TorchClap:  # a model: encode_* only, no embed_* methods
        sample_rate = SR

    wrapped = as_embedder(TorchClap())
    assert isinstance(wrapped, ClapEmbedder) and wrapped.sample_rate == SR
    assert isinstance(as_embedder(wrapped), ClapEmbedder) and as_embedder(wrapped) is wrapped
