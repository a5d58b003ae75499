"""Caption latency of one 10 s clip at beam 3: tower precision, batched beam vs a naive loop.

The naive baseline is how beam search is often first written: every hypothesis is scored on
its own, re-running the decoder over its whole prefix (no key/value cache, no batching). The
batched search scores all k hypotheses in one call per step and feeds only the new token.
Both decode the same model and frames in the same run; the script says whether they agree.

For each tower precision (fp32, bf16 = ``torch.autocast`` bfloat16) it times, as the median of
``--repeats`` after one warm-up, wall clock and this process's CPU time: the frozen tower
(windows -> frame embeddings), and end to end ``CaptionPipeline.caption_wave`` (tower + audio
encoder + batched beam), giving the real-time factor RTF = wall seconds / audio seconds (goal
<= 0.01). Decoding (fp32 in both, on one thread as the pipeline does) is timed once: encoder +
batched beam and encoder + naive beam. The machine's load average is recorded at the start and the end (other jobs sharing
the cores inflate wall time; CPU time is less affected). JSON on stdout and in ``--out``.

    nice -n 10 python benchmarks/caption_speed.py --model runs/captioner/foley_ce/checkpoint
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch


def naive_beam(model, memory, mask, *, k: int, max_len: int, bos: int, eos: int) -> list[int]:
    """Beam search one hypothesis at a time, recomputing each full prefix every step."""
    beams, finished = [([bos], 0.0)], []
    for _ in range(max_len):
        cands = []
        for seq, score in beams:
            logits, _, _ = model.decode(torch.tensor([seq]), model.start(memory, mask))  # whole prefix
            logp = torch.log_softmax(logits[0, -1], dim=-1)
            top = logp.topk(k)
            cands += [(seq + [int(t)], score + float(v)) for v, t in zip(top.values, top.indices)]
        cands.sort(key=lambda c: -c[1])
        beams = []
        for seq, score in cands:
            if seq[-1] == eos:
                finished.append((seq, score))
            else:
                beams.append((seq, score))
            if len(beams) == k:
                break
        finished.sort(key=lambda c: -c[1])
        if len(finished) >= k and (not beams or finished[k - 1][1] >= beams[0][1]):
            break
    pool = finished or beams
    best = max(pool, key=lambda c: c[1])[0][1:]
    return best[:-1] if best and best[-1] == eos else best


def naive_one_thread(*args: Any, **kw: Any) -> list[int]:
    """:func:`naive_beam` on one thread, as the pipeline decodes, so the comparison is the search alone."""
    from audiocap.captioning import one_thread

    with one_thread():
        return naive_beam(*args, **kw)


def timeit(fns: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Median wall and process-CPU seconds of each function over ``repeats`` rounds after one
    warm-up round; the functions take turns within a round, so a burst of load from other jobs
    hits all of them alike instead of whichever happened to run then."""
    outs = {name: fn() for name, fn in fns.items()}
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            w, c = time.perf_counter(), time.process_time()
            outs[name] = fn()
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    return {name: {"wall_s": round(statistics.median(wall[name]), 4), "cpu_s": round(statistics.median(cpu[name]), 4)}
            for name in fns}, outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="captioner checkpoint folder (default: random d=256 model, vocab 1500)")
    ap.add_argument("--tower", default="aisfx", help="frozen tower when --model is not given (hop_frames=100)")
    ap.add_argument("--beam", type=int, default=3)
    ap.add_argument("--max-len", type=int, default=25)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", default="benchmarks/results/caption_speed.json")
    args = ap.parse_args()
    load_start = [round(x, 2) for x in os.getloadavg()]
    torch.set_num_threads(args.threads)
    from audiocap.captioning import CaptionPipeline, LoadedCaptioner, load_captioner, resolve_precision
    from audiocap.models.captioner import Captioner, CaptionerConfig
    from audiocap.text.vocab import SPECIALS, Vocab
    from audiocap.train.captioner_data import load_frame_tower, pad_frames

    if args.model:
        member = load_captioner(args.model)
        tower = load_frame_tower(member.recipe["tower"]["name"], member.recipe["tower"].get("options"))
    else:
        tower = load_frame_tower(args.tower, {"hop_frames": 100} if args.tower == "aisfx" else None)
        torch.manual_seed(0)
        vocab = Vocab(list(SPECIALS) + [f"w{i}" for i in range(1496)])
        model = Captioner(CaptionerConfig(vocab_size=len(vocab), frame_dim=int(tower.frame_dim), max_len=27)).eval()
        member = LoadedCaptioner(model, vocab, {"tower": {"name": args.tower}, "clip_seconds": 10.0}, Path("."))
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(int(args.seconds * tower.sample_rate))).astype(np.float32)
    model, v = member.model, member.vocab
    report: dict[str, Any] = {
        "model": args.model or f"random d=256 vocab={len(v)}", "tower": member.recipe["tower"],
        "audio_seconds": args.seconds, "beam": args.beam, "max_len": args.max_len, "threads": args.threads,
        "repeats": args.repeats, "auto_precision_here": resolve_precision("auto"), "rtf_goal": 0.01,
        "load_average_start": load_start,
    }
    pipe = {p: CaptionPipeline([member], beam=args.beam, max_len=args.max_len, tower=tower, precision=p)
            for p in ("fp32", "bf16")}
    with torch.inference_mode():
        frames = pipe["fp32"].window_frames(wave)[0]
        x, mask = pad_frames([torch.cat(frames, 0)])
        fns = {
            "batched_beam": lambda: pipe["fp32"].caption_frames([x[0]])[0].tokens,
            "naive_beam": lambda: naive_one_thread(model, model.encode(x, mask), mask, k=args.beam,
                                                   max_len=pipe["fp32"].max_len, bos=v.bos_id, eos=v.eos_id),
        }
        for p, pl in pipe.items():
            fns[f"tower_{p}"] = lambda pl=pl: pl.window_frames(wave)[0]
            fns[f"end_to_end_{p}"] = lambda pl=pl: pl.caption_wave(wave)[0].text
        times, outs = timeit(fns, args.repeats)
    report["decoding"] = {
        "frames": int(x.shape[1]), "batched_beam": times["batched_beam"], "naive_beam": times["naive_beam"],
        "speedup_wall": round(times["naive_beam"]["wall_s"] / times["batched_beam"]["wall_s"], 2),
        "speedup_cpu": round(times["naive_beam"]["cpu_s"] / times["batched_beam"]["cpu_s"], 2),
        "same_caption": outs["batched_beam"] == outs["naive_beam"], "caption_tokens": len(outs["batched_beam"]),
    }
    for p in pipe:
        e2e = times[f"end_to_end_{p}"]
        cos = torch.nn.functional.cosine_similarity(torch.cat(outs[f"tower_{p}"]), torch.cat(frames), dim=-1)
        report[p] = {"tower": times[f"tower_{p}"], "end_to_end": e2e,
                     "rtf_end_to_end": round(e2e["wall_s"] / args.seconds, 5),
                     "rtf_cpu": round(e2e["cpu_s"] / args.seconds, 5),
                     "min_frame_cosine_to_fp32": round(float(cos.min()), 6), "caption": outs[f"end_to_end_{p}"]}
    report.update({"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                   "load_average_end": [round(x, 2) for x in os.getloadavg()]})
    from audiocap.fileio import atomic_write_json

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
