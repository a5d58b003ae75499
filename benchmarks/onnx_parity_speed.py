"""ONNX Runtime vs torch on the shipped models (issue 18): parity on the test clips, then speed.

One run, both backends side by side:

- export: ``audiocap export onnx`` of the shipped CLAP model and captioner (seconds, and each
  graph's difference from torch measured by the exporter);
- CLAP parity on every clip of ``--split``: audio embeddings through the long-audio policy
  (:func:`audiocap.search.embed_wave`) and the text embeddings of each clip's first caption:
  max / mean / 99th percentile of the max abs difference per vector (target <= 1e-4, fp32);
- caption parity: every clip captioned at beam 3 by the torch pipeline (fp32 tower: the same
  arithmetic as the export) and by the onnx pipeline; the share of identical captions (target
  >= 99 %), the disagreements listed, and BLEU-4 / ROUGE-L / CIDEr-D of both against the
  references;
- speed: one 10-s clip captioned end to end (tower + encoder + beam 3) by torch fp32, torch with
  ``--precision auto`` (the CLI default) and onnx, taking turns within each of ``--repeats``
  rounds after a warm-up; median wall and process-CPU seconds and RTF = wall / 10 s; then the
  feature cache (:func:`audiocap.features.cache.cache_window_frames`) over ``--cache-clips``
  clips into a fresh folder for each tower, in clips/s.

Threads: torch and ONNX Runtime both get ``torch.get_num_threads()`` (OMP_NUM_THREADS) for the
tower and one for decoding. The load average at the start and end is recorded: on a shared
machine wall times are inflated, CPU times less so. JSON on stdout and in ``--out``.

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/onnx_parity_speed.py \\
        --manifest data/foley-default/manifest.jsonl --split test --out benchmarks/results/onnx_parity_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch


def timeit(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, dict[str, float]]:
    """Median wall and process-CPU seconds of each function over ``repeats`` rounds after one
    warm-up; the functions take turns within a round, so a burst of load hits all alike."""
    for fn in fns.values():
        fn()
    wall: dict[str, list[float]] = {n: [] for n in fns}
    cpu: dict[str, list[float]] = {n: [] for n in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            w, c = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    return {n: {"wall_s": round(statistics.median(wall[n]), 4), "cpu_s": round(statistics.median(cpu[n]), 4)}
            for n in fns}


def diff_stats(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    per = np.abs(a - b).max(axis=1)  # max abs difference of each vector
    return {"max": float(per.max()), "mean": float(per.mean()), "p99": float(np.percentile(per, 99)),
            "n": int(len(per))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", default="data/foley-default/manifest.jsonl")
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=0, help="clips of the split for parity (0 = all)")
    ap.add_argument("--beam", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--cache-clips", type=int, default=48)
    ap.add_argument("--out", default="benchmarks/results/onnx_parity_speed.json")
    args = ap.parse_args()

    from audiocap.audio.io import load_audio
    from audiocap.captioning import CaptionPipeline, load_captioner
    from audiocap.data.manifest import audio_path, read_manifest
    from audiocap.evaluation.captioner import score_captions
    from audiocap.features.cache import cache_window_frames
    from audiocap.features.towers import load_frame_tower, resolve_precision
    from audiocap.onnx_backend import OnnxAudioTower, OnnxCaptionPipeline, OnnxClapEmbedder
    from audiocap.onnx_export import export_onnx, read_card
    from audiocap.pretrained import default_model
    from audiocap.search import embed_wave, load_embedder

    load_start = [round(x, 2) for x in os.getloadavg()]
    clips = [c for c in read_manifest(args.manifest) if c.split == args.split]
    clips = clips[: args.limit] if args.limit else clips
    tmp = Path(tempfile.mkdtemp(prefix="onnx-bench-"))
    report: dict[str, Any] = {"manifest": str(Path(args.manifest).resolve()), "split": args.split,
                              "clips": len(clips), "beam": args.beam, "threads": torch.get_num_threads(),
                              "load_average_start": load_start}

    t = time.perf_counter()
    clap_dir = export_onnx(default_model("clap"), tmp / "clap")
    cap_dir = export_onnx(default_model("captioner"), tmp / "captioner")
    report["export"] = {"seconds": round(time.perf_counter() - t, 1),
                        "max_abs_diff_vs_torch": {**read_card(clap_dir)["export_check"]["max_abs_diff_vs_torch"],
                                                  **read_card(cap_dir)["export_check"]["max_abs_diff_vs_torch"]},
                        "opset": read_card(clap_dir)["opset"]}

    # --- CLAP parity ---
    t_emb, o_emb = load_embedder(default_model("clap")), OnnxClapEmbedder(clap_dir)
    waves = [load_audio(audio_path(args.manifest, c), sr=44100) for c in clips]
    a = np.stack([embed_wave(t_emb, w)[0] for w in waves])
    b = np.stack([embed_wave(o_emb, w)[0] for w in waves])
    texts = [c.captions[0] for c in clips]
    report["clap_audio_embedding_diff"] = diff_stats(a, b)
    report["clap_text_embedding_diff"] = diff_stats(t_emb.embed_text(texts), o_emb.embed_text(texts))
    # retrieval on the split with each backend's vectors: does the ranking change?
    ta, tt = a @ t_emb.embed_text(texts).T, b @ o_emb.embed_text(texts).T
    report["clap_text_to_audio_top1_same"] = float(np.mean(ta.argmax(0) == tt.argmax(0)))

    # --- caption parity ---
    loaded = load_captioner(default_model("captioner"))
    t_pipe = CaptionPipeline([loaded], beam=args.beam, precision="fp32")
    o_pipe = OnnxCaptionPipeline(cap_dir, beam=args.beam)
    t_caps = [t_pipe.caption_wave(w, name=c.id)[0].text for w, c in zip(waves, clips)]
    o_caps = [o_pipe.caption_wave(w, name=c.id)[0].text for w, c in zip(waves, clips)]
    same = [x == y for x, y in zip(t_caps, o_caps)]
    refs = [list(c.captions) for c in clips]
    metrics = {}
    for name, caps in (("torch", t_caps), ("onnx", o_caps)):
        res = score_captions(caps, refs, metrics=["bleu_4", "rouge_l", "cider_d"])
        metrics[name] = {k: (round(float(v.score), 4) if v.available else None) for k, v in res.items()}
    report["captions"] = {"same": int(sum(same)), "of": len(same), "agreement": round(float(np.mean(same)), 4),
                          "differ": [{"id": c.id, "torch": x, "onnx": y}
                                     for c, x, y, s in zip(clips, t_caps, o_caps, same) if not s],
                          "metrics": metrics}

    # --- speed: one 10-s clip, end to end ---
    ten = next(w for w in waves if len(w) == 10 * 44100)
    auto = resolve_precision("auto")
    t_auto = CaptionPipeline([loaded], beam=args.beam, precision="auto")
    fns = {"torch_fp32": lambda: t_pipe.caption_wave(ten), f"torch_auto_{auto}": lambda: t_auto.caption_wave(ten),
           "onnx_fp32": lambda: o_pipe.caption_wave(ten)}
    speed = timeit(fns, args.repeats)
    towers = timeit({"torch_fp32": lambda: t_pipe.window_frames(ten),
                     f"torch_auto_{auto}": lambda: t_auto.window_frames(ten),
                     "onnx_fp32": lambda: o_pipe.window_frames(ten)}, args.repeats)
    report["caption_10s"] = {n: {**v, "rtf": round(v["wall_s"] / 10.0, 5), "tower_wall_s": towers[n]["wall_s"],
                                 "tower_cpu_s": towers[n]["cpu_s"]} for n, v in speed.items()}

    # --- feature cache throughput ---
    sub = clips[: args.cache_clips]
    cache = {}
    for name, tower in (("torch_fp32", load_frame_tower("aisfx", {"hop_frames": 100})),
                        ("onnx_fp32", OnnxAudioTower(cap_dir))):
        w, c = time.perf_counter(), time.process_time()
        cache_window_frames(tower, args.manifest, sub, args.split, t_pipe.policy, tmp / f"cache-{name}",
                            precision="fp32")
        wall, cpu = time.perf_counter() - w, time.process_time() - c
        cache[name] = {"clips": len(sub), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                       "clips_per_s": round(len(sub) / wall, 2), "clips_per_cpu_s": round(len(sub) / cpu, 2)}
    report["feature_cache"] = cache

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent).stdout.strip()  # this checkout's commit
    report.update({"commit": commit, "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                   "torch": torch.__version__, "onnxruntime": read_card(clap_dir)["versions"]["onnxruntime"],
                   "load_average_end": [round(x, 2) for x in os.getloadavg()]})
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        from audiocap.fileio import atomic_write_text

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
