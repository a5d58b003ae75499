"""CLAIP and CLAIP-TAG (issue 17 item 2): the image→text loss on hand-made similarity matrices,
the manifest's optional ``image`` field, image towers built from files a test writes, and a tiny
training run whose loss falls."""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from audiocap.data.manifest import Clip, ManifestError, image_path, read_manifest, write_manifest
from audiocap.encoders import build_image_encoder
from audiocap.losses import claip_loss, clip_loss, image_text_loss

REPO = Path(__file__).resolve().parents[1]

# image i and caption j: cosines [[0.6, 1.0], [0.8, 0.0]], scale 2 -> logits [[1.2, 2.0], [1.6, 0.0]]
IMG = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
TXT = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
ROW0 = math.log(math.exp(1.2) + math.exp(2.0)) - 1.2  # -log softmax of caption 0 for image 0 = 1.17110
ROW1 = math.log(math.exp(1.6) + math.exp(0.0)) - 0.0  # caption 1 for image 1 = 1.78390
COL0 = math.log(math.exp(1.2) + math.exp(1.6)) - 1.2  # the text->audio direction of clip_loss
COL1 = math.log(math.exp(2.0) + math.exp(0.0)) - 0.0


def test_image_text_loss_by_hand():
    assert ROW0 == pytest.approx(1.17110, abs=1e-5) and ROW1 == pytest.approx(1.78390, abs=1e-5)
    assert float(image_text_loss(IMG, TXT, 2.0)) == pytest.approx((ROW0 + ROW1) / 2, abs=1e-6)
    # only the rows whose item has a picture count
    assert float(image_text_loss(IMG, TXT, 2.0, has_image=torch.tensor([True, False]))) == pytest.approx(ROW0, abs=1e-6)
    assert float(image_text_loss(IMG, TXT, 2.0, has_image=torch.tensor([False, True]))) == pytest.approx(ROW1, abs=1e-6)
    # two captions of one clip: neither is the other's negative, so each row is certain
    assert float(image_text_loss(IMG, TXT, 2.0, dup_groups=torch.tensor([7, 7]))) == pytest.approx(0.0, abs=1e-6)
    # no picture in the batch: zero, and still differentiable
    emb = IMG.clone().requires_grad_(True)
    none = image_text_loss(emb, TXT, 2.0, has_image=torch.tensor([False, False]))
    none.backward()
    assert float(none.detach()) == 0.0 and float(emb.grad.abs().sum()) == 0.0


def test_image_text_loss_is_one_way():
    """L(image→text) is the row term only: it is not the symmetric clip_loss of the same pair."""
    sym = (ROW0 + ROW1) / 4 + (COL0 + COL1) / 4
    assert float(clip_loss(IMG, TXT, 2.0)) == pytest.approx(sym, abs=1e-6)
    assert abs(float(image_text_loss(IMG, TXT, 2.0)) - sym) > 0.02


def test_claip_and_claip_tag_totals_by_hand():
    audio = IMG  # the audio embeddings happen to equal the image ones: L_CLAP is `sym` above
    sym = (ROW0 + ROW1) / 4 + (COL0 + COL1) / 4
    i2t = (ROW0 + ROW1) / 2
    total, parts = claip_loss(audio, TXT, IMG, 2.0, image_weight=0.5)
    assert float(total) == pytest.approx(sym + 0.5 * i2t, abs=1e-6)
    assert float(parts["clap"]) == pytest.approx(sym, abs=1e-6) and float(parts["i2t"]) == pytest.approx(i2t, abs=1e-6)
    assert "tag_reg" not in parts
    # CLAIP-TAG: + λ·MSLE(trained, frozen); MSLE of 0.5 vs 0.25 = (log 1.5 − log 1.25)² = 0.0332412
    trained, frozen = torch.tensor([[0.5], [0.5]]), torch.tensor([[0.25], [0.25]])
    reg = (math.log(1.5) - math.log(1.25)) ** 2
    total, parts = claip_loss(audio, TXT, IMG, 2.0, image_weight=1.0, tag_scores=(trained, frozen), tag_weight=3.0)
    assert float(parts["tag_reg"]) == pytest.approx(reg, abs=1e-7)
    assert float(total) == pytest.approx(sym + 3.0 * reg + i2t, abs=1e-6)
    # MAE variant: |0.5 − 0.25| = 0.25
    total, parts = claip_loss(audio, TXT, IMG, 2.0, tag_scores=(trained, frozen), tag_weight=1.0, tag_kind="mae")
    assert float(parts["tag_reg"]) == pytest.approx(0.25) and float(total) == pytest.approx(sym + 0.25 + i2t, abs=1e-6)


# --- the manifest field ---

def test_manifest_image_field_round_trip(tmp_path):
    clips = [Clip(id="a", audio="a.wav", duration=1.0, captions=["a cat meows"], image="pics/a.png"),
             Clip(id="b", audio="b.wav", duration=1.0, captions=["a dog barks"])]
    m = write_manifest(tmp_path / "m.jsonl", clips)
    lines = [json.loads(x) for x in m.read_text().splitlines()]
    assert lines[0]["image"] == "pics/a.png" and "image" not in lines[1]  # old manifests stay byte-identical
    back = read_manifest(m)
    assert [c.image for c in back] == ["pics/a.png", ""]
    assert image_path(m, back[0]) == (tmp_path / "pics" / "a.png").resolve() and image_path(m, back[1]) is None
    assert write_manifest(tmp_path / "again.jsonl", back).read_text() == m.read_text()


def test_manifest_rejects_a_bad_image_field(tmp_path):
    line = {"id": "a", "audio": "a.wav", "duration": 1.0, "captions": ["x"], "tags": [], "split": "train",
            "source": "", "license": "", "image": 3}
    (tmp_path / "m.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(ManifestError, match=r"m.jsonl:1: field 'image' must be a string"):
        read_manifest(tmp_path / "m.jsonl")


# --- image towers from files the test writes ---

def write_png(path: Path, rgba: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgba.astype(np.uint8), "RGBA").save(path)
    return path


def test_load_image_pads_transparency_on_white(tmp_path):
    from audiocap.encoders.image import ImageError, load_image

    rgba = np.zeros((2, 4, 4), np.uint8)  # 4 wide, 2 high
    rgba[..., 0], rgba[..., 3] = 255, 255  # opaque red
    rgba[:, 3, 3] = 0  # one transparent pixel
    img = load_image(write_png(tmp_path / "r.png", rgba), 4)
    assert img.shape == (3, 4, 4) and img.dtype == torch.float32
    assert torch.allclose(img[:, 0, 0], torch.ones(3))  # padding rows above and below are white
    assert img[0, 1:3, 0:2].min() > 0.9 and img[1, 1:3, 0:2].max() < 0.1  # the red band in the middle
    with pytest.raises(ImageError, match=r"missing.png: picture not found"):
        load_image(tmp_path / "missing.png", 4)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ImageError, match=r"bad.png: not a readable picture"):
        load_image(tmp_path / "bad.png", 4)


def test_tiny_image_tower_from_the_tests_safetensors(tmp_path):
    from safetensors.torch import save_file

    from audiocap.encoders.image import ImageError, TinyImageTower

    src = TinyImageTower(width=4, image_size=16, seed=5)
    with torch.no_grad():
        for p in src.parameters():
            p.add_(0.1 * torch.randn_like(p))
    save_file(src.state_dict(), str(tmp_path / "tower.safetensors"))
    tower = build_image_encoder("tiny", width=4, image_size=16, weights=str(tmp_path / "tower.safetensors")).eval()
    x = torch.rand(3, 3, 16, 16)
    assert tower.dim == 32 and tower.image_size == 16
    assert torch.allclose(tower(x), src.eval()(x), atol=1e-6)
    assert not torch.allclose(tower(x), TinyImageTower(width=4, image_size=16, seed=5).eval()(x), atol=1e-3)
    with pytest.raises(ImageError, match=r"nope.safetensors: tiny image tower weights not found"):
        build_image_encoder("tiny", weights=str(tmp_path / "nope.safetensors"))
    with pytest.raises(ImageError, match=r"tower.safetensors: weights do not match"):
        build_image_encoder("tiny", width=8, weights=str(tmp_path / "tower.safetensors"))
    with pytest.raises(ValueError, match=r"unknown image encoder 'vit'; choose one of tiny, torchvision, hf_clip"):
        build_image_encoder("vit")


def test_hf_clip_vision_folder_written_by_the_test(tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from audiocap.encoders.image import CLIP_MEAN, CLIP_STD, ImageError

    torch.manual_seed(0)
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8)
    ref = CLIPVisionModel(cfg).eval()
    ref.save_pretrained(tmp_path / "clip")
    tower = build_image_encoder("hf_clip", folder=str(tmp_path / "clip")).eval()
    assert (tower.dim, tower.image_size) == (32, 32)
    x = torch.rand(2, 3, 32, 32)
    norm = (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(tower(x), ref(pixel_values=norm).pooler_output, atol=1e-5)
    with pytest.raises(ImageError, match=r"empty: not a Hugging Face CLIP folder"):
        build_image_encoder("hf_clip", folder=str(tmp_path / "empty"))


def test_torchvision_tower_says_what_is_missing():
    from audiocap.encoders.image import ImageError

    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(ImageError, match=r"needs torchvision installed"):
            build_image_encoder("torchvision", arch="resnet18", weights="w.safetensors")
    else:
        with pytest.raises(ImageError, match=r"unknown torchvision architecture 'nonet'"):
            build_image_encoder("torchvision", arch="nonet", weights="w.safetensors")


# --- training ---

COLORS = {"beep": (255, 0, 0), "hum": (0, 0, 255), "noise": (0, 160, 0), "click": (240, 200, 0)}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from clap_helpers import write_dataset, write_tiny_bert

    root = tmp_path_factory.mktemp("claipdata")
    manifest = write_dataset(root / "ds")
    clips = read_manifest(manifest)
    rng = np.random.default_rng(0)
    for c in clips:  # a picture per clip: its class's colour with noise; one train clip has none
        if c.id == "beep_0":
            continue
        name = c.id.split("_")[0]
        rgba = np.full((24, 24, 4), 255.0)
        rgba[4:20, 4:20, :3] = np.clip(np.array(COLORS[name]) + rng.normal(0, 20, (16, 16, 3)), 0, 255)
        write_png(root / "ds" / "pics" / f"{c.id}.png", rgba)
        c.image = f"pics/{c.id}.png"
    write_manifest(manifest, clips)
    return {"manifest": manifest, "bert": write_tiny_bert(root / "bert"), "root": root}


class LossLog(L.Callback):
    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        m = trainer.callback_metrics
        self.rows.append({"loss": float(outputs["loss"]), **{k: float(m[k]) for k in ("loss/i2t", "loss/clap") if k in m}})


def claip_recipe(data, out: Path, *extra: str):
    from audiocap.config import load_recipe
    from audiocap.train.clap import ClapRecipe

    return load_recipe(ClapRecipe, REPO / "configs" / "clap" / "debug.yaml", [
        f"out={out}", f"data.manifest={data['manifest']}", "model.text=hf", f"model.text_kw={{folder: {data['bert']}}}",
        f"data.cache_dir={data['root'] / 'cache'}", "trainer.progress_bar=false", "model.image=tiny",
        "model.image_kw={width: 4, image_size: 16}", "trainer.max_epochs=8", *extra])


def test_claip_training_loss_falls_and_checkpoint_loads(data, tmp_path):
    from audiocap.checkpoint import read_extra
    from audiocap.models.clap import load_clap
    from audiocap.train.clap import train_clap

    log = LossLog()
    out = train_clap(claip_recipe(data, tmp_path / "claip"), callbacks=[log])
    steps = [r for r in log.rows if "loss/i2t" in r]
    assert len(steps) == 8 * (16 * 2 // 8)  # 8 epochs × 4 steps
    first, last = steps[:4], steps[-4:]
    mean = lambda rows, k: sum(r[k] for r in rows) / len(rows)  # noqa: E731
    assert mean(last, "loss/i2t") < 0.7 * mean(first, "loss/i2t")
    assert mean(last, "loss") < mean(first, "loss")
    for r in steps:  # total = L_CLAP + 1·L(image→text)
        assert r["loss"] == pytest.approx(r["loss/clap"] + r["loss/i2t"], rel=1e-4)
    assert "loss/i2t" in read_extra(out, "train")["final_metrics"]
    model = load_clap(out)
    assert model.image_tower is not None and model.cfg.image == "tiny"
    from audiocap.encoders.image import load_image

    pics = torch.stack([load_image(data["root"] / "ds" / "pics" / f"{n}_5.png", 16) for n in COLORS])
    with torch.no_grad():
        emb = model.encode_image(pics)
    assert emb.shape == (4, 32) and torch.allclose(emb.norm(dim=1), torch.ones(4), atol=1e-5)


def test_claip_tag_trains_and_logs_all_three_terms(data, tmp_path):
    from audiocap.checkpoint import read_extra
    from audiocap.train.clap import train_clap

    out = train_clap(claip_recipe(data, tmp_path / "claip_tag", "model.freeze_audio=true", "model.adapter=true",
                                  "model.adapter_hidden=16", "tag.enabled=true", f"tag.tagger={tmp_path / 'tagger'}",
                                  "trainer.max_epochs=1", "loss.image_weight=0.5"))
    metrics = read_extra(out, "train")["final_metrics"]
    assert {"loss/clap", "loss/tag_reg", "loss/i2t"} <= set(metrics)


def test_claip_without_pictures_is_a_clear_error(tmp_path):
    from clap_helpers import write_dataset

    from audiocap.train.clap import train_clap

    d = {"manifest": write_dataset(tmp_path / "ds"), "bert": "unused", "root": tmp_path}
    with pytest.raises(ValueError, match=r"manifest.jsonl: model.image is set \(CLAIP\) but no 'train' clip has an 'image'"):
        train_clap(claip_recipe(d, tmp_path / "x", "model.text=minilm", "model.text_kw={}"))


def test_tuxpaint_triplets_pairs_picture_sound_and_english_description(tmp_path):
    """scripts/tuxpaint_triplets.py keeps stamps with a PNG, the plain OGG (not the spoken ``_desc``
    ones) and a description, and takes the description's first (English) line."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tuxpaint_triplets", REPO / "scripts" / "tuxpaint_triplets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    d = tmp_path / "animals" / "mammals"
    d.mkdir(parents=True)
    for stem in ("badger", "cat", "dog"):
        (d / f"{stem}.png").write_bytes(b"png")
    (d / "badger.ogg").write_bytes(b"ogg")
    (d / "badger.txt").write_text("A badger.\nfr.utf8=Un blaireau.\n", encoding="utf-8")
    (d / "cat_desc.ogg").write_bytes(b"spoken")  # only the spoken description: no sound effect
    (d / "cat.txt").write_text("A cat.\n", encoding="utf-8")
    (d / "dog.ogg").write_bytes(b"ogg")  # no description
    assert mod.triplets(tmp_path) == [(d / "badger.ogg", d / "badger.png", "A badger.", "animals")]
