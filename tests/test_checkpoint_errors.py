"""Every way a checkpoint folder can be wrong ends in one CheckpointError (issue 20 item 3).

Each case writes a tiny, valid checkpoint (a captioner with the debug tower, a CLAP with a tiny
BERT text tower) and breaks one thing in a copy, the way a bad download, a hand edit or a hostile
folder would. The Python loaders must raise :class:`audiocap.checkpoint.CheckpointError` (never
a safetensors, YAML, JSON or torch error) whose one-line message names the file and a fix; the
CLI prints it as one ``error:`` line with exit code 2. The hostile cases carry payloads that
would create a marker file if any of their code ran; the marker must never appear.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from clap_helpers import write_tiny_bert
from typer.testing import CliRunner

import audiocap
from audiocap.captioning import load_captioner
from audiocap.checkpoint import CheckpointError, save_checkpoint
from audiocap.cli import app
from audiocap.models.clap import load_clap


def captioner_config(d_model: int = 32):
    from audiocap.models.captioner import CaptionerConfig

    return CaptionerConfig(vocab_size=9, frame_dim=64, d_model=d_model, encoder_layers=1, decoder_layers=1,
                           heads=2, ff_dim=2 * d_model, max_len=12, proj_dim=16)


def save_captioner(folder: Path, d_model: int = 32) -> Path:
    """A tiny untrained captioner on the debug ('tiny') tower, saved as training saves it."""
    from audiocap.models.captioner import Captioner
    from audiocap.text.vocab import Vocab

    torch.manual_seed(0)
    vocab = Vocab.build([["a", "dog", "barks"], ["rain", "falls"]])
    cfg = captioner_config(d_model)
    assert cfg.vocab_size == len(vocab)
    return save_checkpoint(folder, Captioner(cfg).state_dict(), kind="captioner",
                           recipe={"model_config": dataclasses.asdict(cfg), "clip_seconds": 10.0,
                                   "tower": {"name": "tiny", "options": {}}, "decode": {"max_len": 12}},
                           extras={"vocab": vocab.to_json()})


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """Valid folders: a captioner, a CLAP (tiny audio tower + tiny BERT), its index and a tone."""
    from audiocap.config import recipe_to_dict
    from audiocap.index import VectorIndex
    from audiocap.models.clap import ClapConfig, build_clap

    root = tmp_path_factory.mktemp("good")
    bert = write_tiny_bert(root / "bert")
    torch.manual_seed(0)
    cfg = ClapConfig(audio="tiny", text="hf", text_kw={"folder": str(bert)}, embed_dim=32, head_hidden=64,
                     adapter_hidden=64)
    save_checkpoint(root / "clap", build_clap(cfg, pretrained=False).state_dict(), kind="clap",
                    recipe={"model": recipe_to_dict(cfg)})
    wav = root / "tone.wav"
    sf.write(wav, 0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000), 16000)
    vectors = np.eye(2, 32, dtype=np.float32)
    VectorIndex.build(vectors, [{"id": "a", "path": str(wav)}, {"id": "b", "path": str(wav)}]).save(root / "index")
    return {"captioner": save_captioner(root / "captioner"), "clap": root / "clap", "bert": bert,
            "index": root / "index", "wav": wav}


def broken(good: dict, name: str, tmp_path: Path, kind: str = "captioner") -> Path:
    """A copy of the good ``kind`` folder to break."""
    return Path(shutil.copytree(good[kind], tmp_path / name))


def raises_one_line(load, folder: Path, *needles: str) -> str:
    """``load(folder)`` raises CheckpointError with one line naming the folder and ``needles``."""
    with pytest.raises(CheckpointError) as info:
        load(folder)
    message = str(info.value)
    assert type(info.value) is CheckpointError and "\n" not in message, message
    assert str(folder) in message, message
    for needle in needles:
        assert needle in message, message
    return message


def cli_error(args: list[str], *needles: str) -> str:
    """The CLI exits 2 with exactly one ``error:`` line containing ``needles`` and no traceback."""
    result = CliRunner().invoke(app, args)
    out = result.output
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert result.exit_code == 2, out
    assert isinstance(result.exception, SystemExit) and "Traceback" not in out, (result.exception, out)
    assert len(errors) == 1, out
    for needle in needles:
        assert needle in errors[0], out
    return errors[0]


def caption_cli(good: dict, folder: Path, *needles: str) -> str:
    return cli_error(["caption", str(good["wav"]), "--model", str(folder)], *needles)


def search_cli(good: dict, folder: Path, *needles: str) -> str:
    return cli_error(["search", "a dog barks", "--model", str(folder), "--index", str(good["index"])], *needles)


def test_the_intact_folders_load(good):
    assert audiocap.load(good["captioner"]).vocab.words[4:] == ["a", "barks", "dog", "falls", "rain"]
    assert load_clap(good["clap"]).cfg.embed_dim == 32


# --- missing parts ---------------------------------------------------------------------------

def test_missing_folder(good, tmp_path):
    folder = tmp_path / "nowhere"
    raises_one_line(audiocap.load, folder, "not found", "recipe.yaml")
    caption_cli(good, folder, str(folder), "not found")


def test_missing_recipe(good, tmp_path):
    folder = broken(good, "no-recipe", tmp_path)
    (folder / "recipe.yaml").unlink()
    raises_one_line(load_captioner, folder, "no recipe.yaml", "again")
    search_cli(good, folder, "no recipe.yaml")


def test_missing_weights(good, tmp_path):
    folder = broken(good, "no-weights", tmp_path)
    (folder / "model.safetensors").unlink()
    raises_one_line(load_captioner, folder, "model.safetensors: missing", "copy")
    (folder / "model.safetensors").mkdir()  # a folder where the file should be
    raises_one_line(audiocap.load, folder, "model.safetensors: missing or not a file")


# --- damaged or hostile weights --------------------------------------------------------------

def test_truncated_safetensors(good, tmp_path):
    folder = broken(good, "truncated", tmp_path)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    raises_one_line(load_captioner, folder, "model.safetensors", "safetensors", "copy")
    caption_cli(good, folder, "model.safetensors")
    (folder / "model.safetensors").write_bytes(data[:5])  # not even a header length
    raises_one_line(audiocap.load, folder, "model.safetensors: 5 bytes, too short")


def test_oversized_safetensors_header(good, tmp_path):
    folder = broken(good, "huge-header", tmp_path)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", 2**62) + data[8:])
    message = raises_one_line(load_captioner, folder, "model.safetensors", f"claims {2**62} bytes")
    assert f"holds {len(data) - 8}" in message
    caption_cli(good, folder, "header claims")
    clap = broken(good, "clap-huge-header", tmp_path, "clap")
    data = (clap / "model.safetensors").read_bytes()
    (clap / "model.safetensors").write_bytes(struct.pack("<Q", 200_000_000) + data[8:])  # past the 100 MB cap
    raises_one_line(load_clap, clap, "header claims 200000000 bytes")
    search_cli(good, clap, "model.safetensors", "header claims")


class Payload:
    """Unpickling this object calls ``open(marker, "w")``: the marker file proves code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_pickle_in_place_of_safetensors_is_refused_unrun(good, tmp_path, writer):
    folder = broken(good, "pickled", tmp_path)
    marker = tmp_path / "code-ran"
    weights = folder / "model.safetensors"
    if writer == "torch.save":
        torch.save({"encoder.inp.0.weight": torch.zeros(2), "x": Payload(marker)}, weights)
    else:
        weights.write_bytes(pickle.dumps({"x": Payload(marker)}, protocol=4))
    live = tmp_path / "live-check"  # the payload is real: a plain unpickler runs it
    pickle.loads(pickle.dumps(Payload(live)))
    assert live.exists()
    raises_one_line(load_captioner, folder, "model.safetensors: a PyTorch pickle", "never unpickles",
                    "weights_only=True")
    raises_one_line(audiocap.load, folder, "PyTorch pickle")
    caption_cli(good, folder, "PyTorch pickle")
    assert not marker.exists()


# --- wrong kind ------------------------------------------------------------------------------

def test_wrong_kind(good):
    raises_one_line(load_clap, good["captioner"], "recipe.yaml", "'captioner' checkpoint, expected 'clap'",
                    "pass a 'clap' checkpoint folder")
    raises_one_line(load_captioner, good["clap"], "'clap' checkpoint, expected 'captioner'")
    search_cli(good, good["captioner"], "recipe.yaml", "'captioner' checkpoint; expected kind 'clap'")
    caption_cli(good, good["clap"], "'clap' checkpoint; expected kind 'captioner' or 'wsac'")


# --- bad vocabulary --------------------------------------------------------------------------

@pytest.mark.parametrize("content, needle", [
    (b'{"format": "audiocap-vocab-1", "words": [', "invalid JSON"),
    (b'["<pad>", "<bos>", "<eos>", "<unk>", "a"]', "not an audiocap vocabulary"),
    (b'{"format": "audiocap-vocab-1", "words": 9}', "'words': a list of strings"),
    (b'{"format": "audiocap-vocab-1", "words": ["<pad>", "<bos>", "<eos>", "<unk>", 1, 2, 3, 4, 5]}',
     "'words': a list of strings"),
    (b'{"format": "audiocap-vocab-1", "words": ["<pad>", "<bos>", "<eos>", "<unk>", "caf\xe9"]}', "not UTF-8"),
    (b'{"format": "audiocap-vocab-1", "words": ["<pad>", "<bos>", "<eos>", "<unk>", "a"]}', "5 words"),
], ids=["not-json", "a-list", "words-not-a-list", "words-not-strings", "latin-1", "wrong-size"])
def test_bad_vocab(good, tmp_path, content, needle):
    folder = broken(good, "vocab", tmp_path)
    (folder / "vocab.json").write_bytes(content)
    raises_one_line(load_captioner, folder, "vocab.json", needle, "again")
    if needle == "invalid JSON":
        caption_cli(good, folder, "vocab.json: invalid JSON")


def test_missing_vocab(good, tmp_path):
    folder = broken(good, "no-vocab", tmp_path)
    (folder / "vocab.json").unlink()
    raises_one_line(audiocap.load, folder, "vocab.json: missing")


# --- bad recipe.yaml -------------------------------------------------------------------------

def test_yaml_python_tag_is_refused_unrun(good, tmp_path):
    folder = broken(good, "yaml-tag", tmp_path)
    marker = tmp_path / "code-ran"
    recipe = (folder / "recipe.yaml").read_text()
    (folder / "recipe.yaml").write_text(recipe + f"hook: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(yaml.YAMLError):  # the tag is live for a full loader; safe_load refuses it
        yaml.safe_load((folder / "recipe.yaml").read_text())
    raises_one_line(load_captioner, folder, "recipe.yaml: line ", "YAML tag '!!python/object/apply:os.system'",
                    "refused")
    caption_cli(good, folder, "YAML tag")
    assert not marker.exists()


@pytest.mark.parametrize("text, needle", [
    ("kind: [captioner\nmodel_config: {}\n", "invalid YAML (line "),
    ("kind: captioner\n\tbad: indent\n", "invalid YAML"),
    ("- kind\n- captioner\n", "not a YAML mapping (got list)"),
    ("just a string\n", "not a YAML mapping (got str)"),
    ("model_config: {}\n", "no 'kind'"),
    ("kind: [captioner]\n", "no 'kind'"),
], ids=["unclosed", "tab", "list", "scalar", "no-kind", "kind-list"])
def test_bad_recipe_yaml(good, tmp_path, text, needle):
    folder = broken(good, "recipe", tmp_path)
    (folder / "recipe.yaml").write_text(text)
    raises_one_line(audiocap.load, folder, "recipe.yaml", needle)
    raises_one_line(load_captioner, folder, "recipe.yaml", needle)


def test_recipe_not_utf8(good, tmp_path):
    folder = broken(good, "recipe-latin1", tmp_path)
    (folder / "recipe.yaml").write_bytes(b"kind: captioner\nnote: caf\xe9\n")
    raises_one_line(load_captioner, folder, "recipe.yaml: not UTF-8")


@pytest.mark.parametrize("edit, needle", [
    (lambda r: r["model_config"].update(bogus=1), "'model_config' does not describe a model"),
    (lambda r: r.update(model_config="d_model=32"), "'model_config' is str"),
    (lambda r: r["model_config"].update(d_model="wide"), "'model_config' does not describe a model"),
    (lambda r: r.update(tower=None), "'tower'"),
    (lambda r: r.update(audio_policy={"clip_seconds": "long"}), "audio_policy"),
], ids=["unknown-key", "not-a-mapping", "not-a-number", "no-tower", "policy"])
def test_recipe_that_does_not_describe_a_model(good, tmp_path, edit, needle):
    folder = broken(good, "recipe-values", tmp_path)
    recipe = yaml.safe_load((folder / "recipe.yaml").read_text())
    edit(recipe)
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    raises_one_line(load_captioner, folder, "recipe.yaml", needle)


# --- weights of another model ----------------------------------------------------------------

def test_mismatched_tensor_shapes(good, tmp_path):
    from audiocap.models.captioner import Captioner

    folder = broken(good, "shapes", tmp_path)
    other = save_captioner(tmp_path / "wider", d_model=48)
    shutil.copy(other / "model.safetensors", folder / "model.safetensors")
    raises_one_line(load_captioner, folder, "model.safetensors: tensors do not fit",
                    "audio_proj.weight (16, 48) != (16, 32)",
                    "same training run")
    caption_cli(good, folder, "tensors do not fit")
    state = Captioner(captioner_config()).state_dict()
    state.pop("encoder.inp.0.weight")
    state["surprise"] = torch.zeros(1)
    save_checkpoint(folder, state, kind="captioner", recipe=yaml.safe_load((good["captioner"] / "recipe.yaml")
                                                                           .read_text()))
    raises_one_line(load_captioner, folder, "missing encoder.inp.0.weight", "unexpected surprise")
    clap = broken(good, "clap-shapes", tmp_path, "clap")
    recipe = yaml.safe_load((clap / "recipe.yaml").read_text())
    recipe["model"]["embed_dim"] = 16
    (clap / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    raises_one_line(load_clap, clap, "tensors do not fit", "(32, 64) != (16, 64)")
    search_cli(good, clap, "tensors do not fit")


# --- a text tower that asks to run its own code ----------------------------------------------

@pytest.mark.parametrize("config_file, key", [("config.json", "auto_map"), ("tokenizer_config.json", "auto_map"),
                                              ("config.json", "trust_remote_code")])
def test_text_tower_with_remote_code_is_refused_unrun(good, tmp_path, config_file, key):
    bert = Path(shutil.copytree(good["bert"], tmp_path / "evil-bert"))
    marker = tmp_path / "code-ran"
    (bert / "modeling_evil.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "from transformers import BertConfig, BertModel\n"
        "class EvilConfig(BertConfig):\n    model_type = 'evil-bert'\n"
        "class EvilModel(BertModel):\n    config_class = EvilConfig\n")
    config = json.loads((bert / config_file).read_text())
    if key == "auto_map":
        config["auto_map"] = {"AutoConfig": "modeling_evil.EvilConfig", "AutoModel": "modeling_evil.EvilModel",
                              "AutoTokenizer": ["modeling_evil.EvilTokenizer", None]}
    else:
        config["trust_remote_code"] = True
    if config_file == "config.json":
        config["model_type"] = "evil-bert"
    (bert / config_file).write_text(json.dumps(config))
    clap = broken(good, "clap-remote-code", tmp_path, "clap")
    recipe = yaml.safe_load((clap / "recipe.yaml").read_text())
    recipe["model"]["text_kw"]["folder"] = str(bert)
    (clap / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    needles = ("recipe.yaml: 'model' names a tower that cannot be loaded", f"{bert / config_file}", key,
               "plain BERT-style folder")
    raises_one_line(audiocap.load, clap, *needles)
    raises_one_line(load_clap, clap, *needles)
    search_cli(good, clap, f"{bert / config_file}", key)
    assert not marker.exists()


# --- WSAC: extras that do not fit ------------------------------------------------------------

def save_wsac(folder: Path) -> Path:
    """A tiny untrained WSAC checkpoint reading the MiniLM space (nothing is embedded to load it)."""
    from audiocap.models.prefix_decoder import PrefixDecoder, PrefixDecoderConfig
    from audiocap.text.vocab import Vocab

    torch.manual_seed(0)
    vocab = Vocab.build([["a", "dog", "barks"]])
    cfg = PrefixDecoderConfig(vocab_size=len(vocab), emb_dim=8, prefix_len=2, d_model=16, n_layers=1, n_heads=2,
                              mlp_hidden=32, max_len=8, dropout=0.0)
    state = {f"model.{k}": v.clone() for k, v in PrefixDecoder(cfg).state_dict().items()}
    state["memory.embeddings"] = torch.randn(2, 8)
    return save_checkpoint(folder, state, kind="wsac", recipe={"data": {"space": "minilm"}},
                           extras={"vocab": vocab.to_json(), "memory_captions": ["a dog barks", "a dog"],
                                   "gap": {"mode": "noise", "noise_std": 0.0}, "decoder": dataclasses.asdict(cfg)})


@pytest.mark.parametrize("edit, needle", [
    (lambda f: (f / "decoder.json").write_text('{"vocab_size": 7, "depth": 3}'), "decoder.json: malformed"),
    (lambda f: (f / "decoder.json").write_text(json.dumps({**json.loads((f / "decoder.json").read_text()),
                                                           "d_model": 32})), "tensors do not fit"),
    (lambda f: (f / "memory_captions.json").write_text('["only one"]'), "memory_captions.json: malformed"),
    (lambda f: (f / "gap.json").write_text('"noise"'), "gap.json: malformed"),
    (lambda f: (f / "recipe.yaml").write_text("kind: wsac\ndata: {space: 'http://x'}\n"), "data.space"),
], ids=["decoder-keys", "decoder-shapes", "memory", "gap", "space"])
def test_wsac_extras_that_do_not_fit(tmp_path, edit, needle):
    from audiocap.decoding.wsac import load_wsac

    folder = save_wsac(tmp_path / "wsac")
    assert load_wsac(folder).space == "minilm"
    edit(folder)
    raises_one_line(load_wsac, folder, needle)
    raises_one_line(audiocap.load, folder, needle)
