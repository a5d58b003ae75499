"""Zero-shot classification (issue 16): ``audiocap.classify``, ``audiocap classify``, ``POST /v1/classify``.

The HTTP and CLI tests use the deterministic stand-in (tests/serve_standin.py), whose answers are
computed here by hand; one test runs the shipped CLAP on a real recording (a rooster from the
tuxpaint-stamps-default package that the foley builder unpacks) and checks the three entry points
give the same numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from serve_standin import SR, StandInBackend, tone_bytes
from typer.testing import CliRunner

from audiocap.cli import app as cli_app
from audiocap.serve.app import create_app
from audiocap.zeroshot import (DEFAULT_PROMPT, LabelError, default_labels, label_probabilities, label_prompts,
                               parse_labels)

# ---------------------------------------------------------------- the zero-shot arithmetic


def test_probabilities_are_the_softmax_of_scaled_cosines():
    scores = np.array([[0.5, 0.2, -0.1], [0.0, 0.0, 0.0]])
    p = label_probabilities(scores, 20.0)
    by_hand = np.exp(20 * scores[0]) / np.exp(20 * scores[0]).sum()
    assert np.allclose(p[0], by_hand) and np.allclose(p[1], 1 / 3)
    assert np.allclose(p.sum(1), 1.0)
    # large logits do not overflow
    assert np.allclose(label_probabilities(np.array([1000.0, 0.0]), 100.0), [1.0, 0.0])


def test_labels_are_parsed_deduplicated_and_checked():
    assert parse_labels(" dog barking,rain\nDog  barking, ,siren\r\n") == ["dog barking", "rain", "siren"]
    assert parse_labels(["a", "b", "A"]) == ["a", "b"]
    for bad, words in [("dog", "1 candidate label"), (" , ", "no candidate labels"),
                       (",".join(f"l{i}" for i in range(201)), "limit is 200"), ("x" * 101 + ",y", "limit is 100")]:
        with pytest.raises(LabelError, match=words):
            parse_labels(bad)
    assert label_prompts(["dog", "rain"]) == ["the sound of dog", "the sound of rain"]
    with pytest.raises(LabelError, match="must contain"):
        label_prompts(["dog"], "a sound")
    labels = default_labels()
    assert len(labels) == 101 and labels[0] == "dog barking" and "rain" in labels


def test_eval_clap_scores_zero_shot_with_the_same_prompts_and_cosines():
    import torch

    from audiocap.evaluation.clap import zero_shot_accuracy

    audio = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], requires_grad=True)  # grads must not matter
    tags = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert zero_shot_accuracy(audio, tags, [["dog"], ["rain"], ["dog"]], ["dog", "rain"]) == pytest.approx(2 / 3)


# ---------------------------------------------------------------- POST /v1/classify (stand-in)


def bow(a: str, b: str) -> float:
    wa, wb = a.split(), b.split()
    vocab = sorted(set(wa) | set(wb))
    va, vb = np.array([wa.count(w) for w in vocab]), np.array([wb.count(w) for w in vocab])
    return float(va @ vb / np.linalg.norm(va) / np.linalg.norm(vb))


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(StandInBackend(tmp_path), max_upload_bytes=600_000, max_duration=5.0),
                    base_url="http://localhost") as c:
        yield c


def classify(client, data, labels=None, name="clip.wav"):
    return client.post("/v1/classify", files={"file": (name, data, "audio/wav")},
                       data={} if labels is None else {"labels": labels})


def test_classify_an_upload_gives_each_label_its_probability(client):
    # a 330 Hz tone is nearest to the stand-in's "a dog barks twice in the distance"
    resp = classify(client, tone_bytes(330.0), "rain, dog, birds")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["filename"] == "clip.wav" and body["duration"] == 1.0 and body["labels_from"] == "request"
    assert body["prompt"] == DEFAULT_PROMPT
    caption = "a dog barks twice in the distance"
    cos = {lab: bow(f"the sound of {lab}", caption) for lab in ("rain", "dog", "birds")}
    assert cos["dog"] == pytest.approx(2 / (2 * math.sqrt(7)))  # shares "the" and "dog"
    z = sum(math.exp(10 * c) for c in cos.values())
    got = [(r["label"], r["probability"], r["cosine"]) for r in body["labels"]]
    assert [g[0] for g in got] == ["dog", "rain", "birds"]  # best first, ties in the order given
    for label, p, c in got:
        assert c == pytest.approx(cos[label]) and p == pytest.approx(math.exp(10 * cos[label]) / z)
    assert got[0][1] == pytest.approx(1 / (1 + 2 * math.exp(-10 * cos["rain"])))  # 0.768
    # the answer follows the sound: a 220 Hz tone is the rain on the roof
    top = classify(client, tone_bytes(220.0), "rain, dog, birds").json()["labels"][0]
    assert top["label"] == "rain"


def test_classify_without_labels_offers_the_library_tags(client):
    body = classify(client, tone_bytes(2000.0)).json()
    assert body["labels_from"] == "library tags"
    assert sorted(r["label"] for r in body["labels"]) == ["animal", "birds", "dog", "rain", "roof"]
    assert body["labels"][0]["label"] == "birds"


@pytest.mark.parametrize("data,labels,status,code,words", [
    (tone_bytes(440.0), "dog", 422, "bad_labels", ["at least two"]),
    (tone_bytes(440.0), ",".join(f"l{i}" for i in range(201)), 422, "bad_labels", ["limit is 200"]),
    (b"\x89PNG\r\n\x1a\n" + b"0" * 64, "dog, cat", 415, "unsupported_media_type", ["PNG image"]),
    (tone_bytes(440.0, seconds=6.0), "dog, cat", 413, "too_long", ["up to 5.00 s"]),
    (b"0" * 700_000, "dog, cat", 413, "too_large", ["limit is 0.6 MB"]),
    (b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x00" * 40, "dog, cat", 422, "bad_audio", []),
])
def test_classify_checks_the_upload_like_caption_does(client, data, labels, status, code, words):
    resp = classify(client, data, labels)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == code
    for w in words:
        assert w.lower() in resp.json()["detail"].lower(), resp.json()
    missing = client.post("/v1/classify", data={"labels": "dog, cat"}, files={"other": ("a.wav", b"x")})
    assert missing.status_code == 400 and missing.json()["error"] == "missing_file"


def test_classify_is_documented_and_needs_tags_or_labels(tmp_path):
    class Untagged(StandInBackend):
        def items(self):
            return [{**it, "tags": []} for it in super().items()]

    with TestClient(create_app(Untagged(tmp_path)), base_url="http://localhost") as c:
        spec = c.get("/openapi.json").json()["paths"]["/v1/classify"]["post"]
        fields = spec["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
        assert set(fields) == {"file", "labels"}
        resp = classify(c, tone_bytes(440.0))
        assert resp.status_code == 422 and resp.json()["error"] == "no_labels"
        assert "type at least two" in resp.json()["detail"]


# ---------------------------------------------------------------- audiocap classify (stand-in model)


@pytest.fixture
def standin_cli(tmp_path, monkeypatch):
    """The CLI with the stand-in in place of CLAP: classify_clips answers from the dominant frequency."""
    import audiocap.checkpoint
    import audiocap.zeroshot
    from audiocap.audio.io import load_audio

    (tmp_path / "lib").mkdir()
    backend = StandInBackend(tmp_path / "lib")
    monkeypatch.setattr(audiocap.checkpoint, "load_model", lambda *a, **k: "clap-standin")

    def classify_clips(model, items, labels, *, prompt):
        assert model == "clap-standin"
        return [backend.classify(load_audio(it, sr=SR), labels, prompt) for it in items]

    monkeypatch.setattr(audiocap.zeroshot, "classify_clips", classify_clips)
    return tmp_path


def test_cli_prints_a_table_and_json_and_skips_unreadable_files(standin_cli):
    d = standin_cli
    (d / "dog.wav").write_bytes(tone_bytes(330.0))
    (d / "rain.wav").write_bytes(tone_bytes(220.0))
    (d / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVE" + b"\x00" * 40)
    res = CliRunner().invoke(cli_app, ["classify", str(d / "dog.wav"), str(d / "corrupt.wav"), str(d / "rain.wav"),
                                       "--labels", "rain, dog, birds"])
    assert res.exit_code == 1, res.output  # some files classified, one skipped
    lines = res.stdout.splitlines()
    assert lines[0] == str(d / "dog.wav")
    assert lines[1].split()[:3] == ["76.8%", "###############", "dog"] and "cosine +0.378" in lines[1]
    assert lines[4] == str(d / "rain.wav") and lines[5].split()[2] == "rain"
    assert "1 of 3 file(s) could not be read" in res.stderr and "corrupt.wav" in res.stderr

    (d / "labels.txt").write_text("rain\ndog\n\nbirds\n", encoding="utf-8")
    res = CliRunner().invoke(cli_app, ["classify", str(d / "dog.wav"), "--labels-file", str(d / "labels.txt"),
                                       "--json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)
    assert row["file"] == str(d / "dog.wav") and [r["label"] for r in row["labels"]] == ["dog", "rain", "birds"]
    assert sum(r["probability"] for r in row["labels"]) == pytest.approx(1.0, abs=1e-5)

    res = CliRunner().invoke(cli_app, ["classify", str(d / "dog.wav"), "--top", "2"])  # default labels: 101
    assert res.exit_code == 0 and res.stdout.splitlines()[0].endswith("(2 of 101 labels)")


@pytest.mark.parametrize("args,words", [
    (["--labels", "dog"], "give at least two"),
    (["--labels", "a,b", "--labels-file", "x.txt"], "not both"),
    (["--labels-file", "missing.txt"], "missing.txt: labels file not found"),
    (["--labels", "a,b", "--prompt", "a sound"], "must contain '{}'"),
])
def test_cli_bad_labels_fail_in_one_line_with_exit_2(standin_cli, args, words):
    (standin_cli / "a.wav").write_bytes(tone_bytes(330.0))
    res = CliRunner().invoke(cli_app, ["classify", str(standin_cli / "a.wav"), *args])
    assert res.exit_code == 2 and words in res.stderr and "Traceback" not in res.output, res.output


def test_cli_exits_2_when_no_file_is_readable(standin_cli):
    (standin_cli / "bad.wav").write_bytes(b"not audio at all")
    res = CliRunner().invoke(cli_app, ["classify", str(standin_cli / "bad.wav"), "--labels", "a,b"])
    assert res.exit_code == 2 and "1 of 1 file(s) could not be read" in res.stderr and not res.stdout


# ---------------------------------------------------------------- the shipped CLAP on a real recording


def real_rooster() -> Path | None:
    from audiocap.data.foley.sources import DEFAULT_CACHE

    hits = sorted((DEFAULT_CACHE / "unpacked").glob(
        "tuxpaint-stamps-default_*/usr/share/tuxpaint/stamps/animals/birds/rooster.ogg"))
    return hits[0] if hits else None


@pytest.mark.skipif(real_rooster() is None, reason="the foley source cache holds no tuxpaint-stamps-default "
                    "(audiocap data build-foley --preset default unpacks it; `make demo` runs that)")
def test_shipped_clap_hears_the_rooster_the_same_way_everywhere(tmp_path):
    import audiocap
    from audiocap.audio.io import load_audio
    from audiocap.pretrained import default_model
    from audiocap.serve import wiring

    clip = real_rooster()
    labels = ["dog barking", "rooster crowing", "rain", "siren", "piano"]
    model = audiocap.load(default_model("clap"))
    got = audiocap.classify(str(clip), ", ".join(labels), model=model)
    assert got[0]["label"] == "rooster crowing" and got[0]["probability"] > 0.9, got
    assert sum(r["probability"] for r in got) == pytest.approx(1.0)
    # the numbers are softmax(logit scale x cosine) of the model's own embeddings
    a = audiocap.embed_audio(model, [str(clip)])
    t = audiocap.embed_text(model, [f"the sound of {lab}" for lab in labels])
    cos = (a @ t.T)[0]
    p = np.exp(float(model.scale().detach()) * cos)
    p /= p.sum()
    for r in got:
        j = labels.index(r["label"])
        assert r["cosine"] == pytest.approx(cos[j], abs=1e-5) and r["probability"] == pytest.approx(p[j], rel=1e-4)
    # the service's path (decoded wave) gives the same answer
    served = wiring.classify(model, load_audio(clip, sr=model.sample_rate), labels, DEFAULT_PROMPT)
    assert [r["label"] for r in served] == [r["label"] for r in got]
    assert served[0]["probability"] == pytest.approx(got[0]["probability"], rel=1e-4)
    # and so does the command line
    res = CliRunner().invoke(cli_app, ["classify", str(clip), "--labels", ", ".join(labels), "--json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)["labels"]
    assert [r["label"] for r in row] == [r["label"] for r in got]
    assert row[0]["probability"] == pytest.approx(got[0]["probability"], abs=1e-5)
