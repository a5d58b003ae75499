"""Caption latency of one 10 s clip at beam 3: tower precision, batched beam vs a naive loop.

The naive baseline is how beam search is often first written: every hypothesis is scored on
its own, re-running the decoder over its whole prefix (no key/value cache, no batching). The
batched search scores all k hypotheses in one call per step and feeds only the new token.
Both decode the same model and frames in the same run; the script says whether they agree.

For each tower precision (fp32, bf16 = ``torch.autocast`` bfloat16) it times, as the median of
``--repeats`` after one warm-up, wall clock and this process's CPU time: the frozen tower
(windows -> frame embeddings), and end to end ``CaptionPipeline.caption_wave`` (tower + audio
encoder + batched beam), giving the real-time factor RTF = wall seconds / audio seconds (goal
<= 0.01). Decoding (fp32 in both) is timed once: encoder + batched beam and encoder + naive
beam. The machine's load average is recorded at the start and the end (other jobs sharing
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


def timeit(fn: Callable[[], Any], repeats: int) -> tuple[dict[str, float], Any]:
    """Median wall and process-CPU seconds of ``fn`` over ``repeats`` runs after one warm-up."""
    out = fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return {"wall_s": round(statistics.median(wall), 4), "cpu_s": round(statistics.median(cpu), 4)}, out


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
        batched, hyp = timeit(lambda: pipe["fp32"].caption_frames([x[0]])[0], args.repeats)
        naive, naive_tokens = timeit(lambda: naive_beam(model, model.encode(x, mask), mask, k=args.beam,
                                                        max_len=pipe["fp32"].max_len, bos=v.bos_id, eos=v.eos_id),
                                     args.repeats)
        report["decoding"] = {
            "frames": int(x.shape[1]), "batched_beam": batched, "naive_beam": naive,
            "speedup_wall": round(naive["wall_s"] / batched["wall_s"], 2),
            "same_caption": hyp.tokens == naive_tokens, "caption_tokens": len(hyp.tokens),
        }
        for p, pl in pipe.items():
            tower_t, low = timeit(lambda: pl.window_frames(wave)[0], args.repeats)
            e2e, caps = timeit(lambda: pl.caption_wave(wave), args.repeats)
            cos = torch.nn.functional.cosine_similarity(torch.cat(low), torch.cat(frames), dim=-1)
            report[p] = {"tower": tower_t, "end_to_end": e2e,
                         "rtf_end_to_end": round(e2e["wall_s"] / args.seconds, 5),
                         "rtf_cpu": round(e2e["cpu_s"] / args.seconds, 5),
                         "min_frame_cosine_to_fp32": round(float(cos.min()), 6), "caption": caps[0].text}
    report.update({"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                   "load_average_end": [round(x, 2) for x in os.getloadavg()]})
    from audiocap.fileio import atomic_write_json

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
