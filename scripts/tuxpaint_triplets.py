"""(sound, picture, description) triplets from Debian's tuxpaint-stamps-default, for CLAIP (issue 17).

Every Tux Paint stamp ships a picture (PNG; the few SVG-only stamps are skipped: Pillow cannot
read SVG), a sound effect (OGG, the file without ``_desc``) and a description whose first line is
English ("A badger."). This writes a manifest with one caption per clip, the stamp's category as
its tag, the picture in the optional ``image`` field and a seeded train/val/test split.

    python scripts/tuxpaint_triplets.py --out data/tuxpaint [--deb PATH] [--seed 0]

The .deb is the one the foley builder downloaded (``~/.cache/audiocap/foley/downloads``); it is
unpacked with ``dpkg-deb -x`` into ``OUT/unpacked`` (nothing is downloaded here).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from pathlib import Path

import soundfile as sf

from audiocap.data.manifest import Clip, relative_audio, write_manifest

DOWNLOADS = Path.home() / ".cache" / "audiocap" / "foley" / "downloads"


def triplets(stamps: Path) -> list[tuple[Path, Path, str, str]]:
    """(sound, picture, English description, category) of every stamp with all three, sorted."""
    out = []
    for png in sorted(stamps.rglob("*.png")):
        ogg, txt = png.with_suffix(".ogg"), png.with_suffix(".txt")
        if not (ogg.is_file() and txt.is_file()):
            continue
        desc = txt.read_text(encoding="utf-8", errors="replace").splitlines()[0].strip()
        if desc:
            out.append((ogg, png, desc, png.relative_to(stamps).parts[0]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--deb", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val", type=float, default=0.15)
    ap.add_argument("--test", type=float, default=0.25)
    a = ap.parse_args()
    deb = a.deb or next(iter(sorted(DOWNLOADS.glob("tuxpaint-stamps-default_*.deb"))), None)
    if deb is None or not deb.is_file():
        print(f"error: {deb or DOWNLOADS}: tuxpaint-stamps-default .deb not found; run `audiocap data build-foley` "
              "first or pass --deb", file=sys.stderr)
        return 2
    unpacked = a.out / "unpacked"
    if not (unpacked / ".complete").exists():
        unpacked.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
        (unpacked / ".complete").touch()
    found = triplets(unpacked / "usr" / "share" / "tuxpaint" / "stamps")
    order = list(range(len(found)))
    random.Random(a.seed).shuffle(order)
    n_test, n_val = round(a.test * len(found)), round(a.val * len(found))
    split = {i: "test" if k < n_test else "val" if k < n_test + n_val else "train" for k, i in enumerate(order)}
    manifest = a.out / "manifest.jsonl"
    clips = [Clip(id=f"{cat}/{ogg.stem}", audio=relative_audio(manifest, ogg), duration=round(sf.info(str(ogg)).duration, 3),
                  captions=[desc], tags=[cat], split=split[i], source="tuxpaint-stamps-default", license="GPL-2",
                  image=relative_audio(manifest, png))
             for i, (ogg, png, desc, cat) in enumerate(found)]
    write_manifest(manifest, clips)
    counts = {s: sum(c.split == s for c in clips) for s in ("train", "val", "test")}
    print(f"{manifest}: {len(clips)} triplets from {deb.name} ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
