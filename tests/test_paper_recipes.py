"""Every recipe in configs/ loads and validates with its trainer's recipe class (issue 17 item 3),
and the paper recipes keep the settings their header says they follow."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiocap.config import load_recipe
from audiocap.train.captioner import CaptionerRecipe
from audiocap.train.clap import ClapRecipe
from audiocap.train.wsac import WSACRecipe

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
BY_FOLDER = {"clap": ClapRecipe, "captioner": CaptionerRecipe, "wsac": WSACRecipe}
PAPERS = {  # configs/papers/<name>.yaml -> the trainer whose recipe it is
    "xiaomi_clap_pretrain": ClapRecipe, "xiaomi_clap_finetune": ClapRecipe, "xiaomi_clap_tag": ClapRecipe,
    "xiaomi_claip": ClapRecipe,
    "frozen_clap_captioner": CaptionerRecipe, "dcase2024_ntxent": CaptionerRecipe, "cl4ac": CaptionerRecipe,
    "wsac_clotho": WSACRecipe, "wsac_audiocaps": WSACRecipe,
}


def recipe_class(path: Path) -> type:
    folder = path.parent.name
    if folder == "papers":
        assert path.stem in PAPERS, f"{path}: add it to PAPERS with its recipe class"
        return PAPERS[path.stem]
    assert folder in BY_FOLDER, f"{path}: unknown recipe folder {folder!r}"
    return BY_FOLDER[folder]


ALL = sorted(CONFIGS.glob("*/*.yaml"))


def test_every_paper_recipe_is_present():
    assert sorted(p.stem for p in (CONFIGS / "papers").glob("*.yaml")) == sorted(PAPERS)


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_loads_and_validates(path: Path):
    recipe = load_recipe(recipe_class(path), path, validate=True)
    assert type(recipe) is recipe_class(path)


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_paper_recipe_header_names_paper_data_and_gaps(name: str):
    head = [ln for ln in (CONFIGS / "papers" / f"{name}.yaml").read_text().splitlines() if ln.startswith("#")]
    text = "\n".join(head)
    for part in ("# Paper:", "# Table to compare with:", "# Figure to reach:", "# Data it expects:", "# Followed:",
                 "# Not followed:"):
        assert part in text, f"{name}.yaml: header lacks {part!r}"


@pytest.mark.parametrize("name,lr", [("xiaomi_clap_pretrain", 1e-4), ("xiaomi_clap_finetune", 2e-5),
                                     ("xiaomi_clap_tag", 1e-4), ("xiaomi_claip", 1e-4)])
def test_xiaomi_recipes_follow_the_report(name: str, lr: float):
    r = load_recipe(ClapRecipe, CONFIGS / "papers" / f"{name}.yaml")
    assert (r.trainer.max_epochs, r.trainer.batch_size, r.optim.lr) == (20, 128, lr)
    assert r.optim.weight_decay == 0.0 and r.optim.warmup_steps > 0  # Adam, warm-up then cosine
    assert r.trainer.accelerator == "auto"
    assert r.tag.enabled is (name == "xiaomi_clap_tag") and (not r.tag.enabled or r.tag.reg == "msle")
    assert (r.model.image == "hf_clip" and r.loss.image_weight == 1.0) is (name == "xiaomi_claip")


def test_captioner_recipes_follow_their_papers():
    load = lambda n: load_recipe(CaptionerRecipe, CONFIGS / "papers" / f"{n}.yaml")  # noqa: E731
    frozen = load("frozen_clap_captioner")
    assert (frozen.model.encoder, frozen.model.encoder_layers, frozen.model.decoder_layers) == ("gru", 3, 2)
    assert (frozen.train.batch_size, frozen.train.lr, frozen.train.epochs, frozen.decode.beam) == (32, 5e-4, 10, 3)
    assert frozen.loss.aux == "none"
    nt = load("dcase2024_ntxent")
    assert (nt.loss.aux, nt.loss.weight) == ("ntxent", 0.1)
    cl = load("cl4ac")
    assert (cl.loss.aux, cl.loss.weight) == ("cl4ac", 1.0)


@pytest.mark.parametrize("name", ["wsac_clotho", "wsac_audiocaps"])
def test_wsac_recipes_inject_the_papers_noise(name: str):
    r = load_recipe(WSACRecipe, CONFIGS / "papers" / f"{name}.yaml")
    assert r.gap.mode == "noise" and r.gap.noise_std**2 == pytest.approx(0.013, abs=5e-4)
    assert r.model.n_layers == 4
