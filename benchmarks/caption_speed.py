"""Caption latency of one 10 s clip at beam 3: batched incremental beam vs a naive loop.

The naive baseline is how beam search is often first written: every hypothesis is scored on
its own, re-running the decoder over its whole prefix (no key/value cache, no batching). The
batched search scores all k hypotheses in one call per step and feeds only the new token.
Both decode the same model and audio; the script reports whether they return the same caption.

Timings (median of ``--repeats`` after one warm-up) on ``--threads`` CPU threads:
tower (frozen frame embeddings), encode+batched beam, encode+naive beam, and the real-time
factor RTF = seconds of compute / seconds of audio, end to end (tower + batched beam) and for
decoding alone. Output: JSON on stdout and in ``--out``.

    nice -n 10 python benchmarks/caption_speed.py --model runs/captioner/foley_ce/checkpoint \
        --out benchmarks/results/caption_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

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


def timeit(fn, repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="captioner checkpoint folder (default: random d=256 model, vocab 1500)")
    ap.add_argument("--tower", default="aisfx", help="frozen tower when --model is not given")
    ap.add_argument("--beam", type=int, default=3)
    ap.add_argument("--max-len", type=int, default=25)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results/caption_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from audiocap.captioning import CaptionPipeline, LoadedCaptioner, load_captioner
    from audiocap.models.captioner import Captioner, CaptionerConfig
    from audiocap.text.vocab import SPECIALS, Vocab
    from audiocap.train.captioner_data import load_frame_tower, pad_frames

    if args.model:
        member = load_captioner(args.model)
        tower = load_frame_tower(member.recipe["tower"]["name"], member.recipe["tower"].get("options"))
    else:
        tower = load_frame_tower(args.tower)
        torch.manual_seed(0)
        vocab = Vocab(list(SPECIALS) + [f"w{i}" for i in range(1496)])
        model = Captioner(CaptionerConfig(vocab_size=len(vocab), frame_dim=int(tower.frame_dim), max_len=27)).eval()
        member = LoadedCaptioner(model, vocab, {"tower": {"name": args.tower}, "clip_seconds": 10.0}, Path("."))
    pipe = CaptionPipeline([member], beam=args.beam, max_len=args.max_len, tower=tower)
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(int(args.seconds * tower.sample_rate))).astype(np.float32)
    model, v = member.model, member.vocab

    with torch.no_grad():
        t_tower, frames = timeit(lambda: pipe.window_frames(wave)[0], args.repeats)
        x, mask = pad_frames([torch.cat(frames, 0)])
        t_batched, hyp = timeit(lambda: pipe.caption_frames([x[0]])[0], args.repeats)
        t_naive, naive = timeit(lambda: naive_beam(model, model.encode(x, mask), mask, k=args.beam,
                                                   max_len=pipe.max_len, bos=v.bos_id, eos=v.eos_id), args.repeats)
    report = {
        "model": args.model or f"random d=256 vocab={len(v)}", "tower": member.recipe["tower"]["name"],
        "audio_seconds": args.seconds, "beam": args.beam, "max_len": pipe.max_len, "threads": args.threads,
        "tower_s": round(t_tower, 4), "batched_beam_s": round(t_batched, 4), "naive_beam_s": round(t_naive, 4),
        "speedup_batched_vs_naive": round(t_naive / t_batched, 2),
        "rtf_end_to_end": round((t_tower + t_batched) / args.seconds, 5),
        "rtf_decoding_only": round(t_batched / args.seconds, 5),
        "rtf_goal": 0.01, "caption_tokens": len(hyp.tokens),
        "same_caption_as_naive": hyp.tokens == naive, "caption": v.decode(hyp.tokens),
        "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
        "load_average_1min": round(os.getloadavg()[0], 2),  # other jobs sharing the CPU skew the timings
    }
    from audiocap.fileio import atomic_write_json

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
