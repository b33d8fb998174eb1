"""Write tiny real mp4 datasets (H.264 + AAC via PyAV) in VGGSound's or FakeAVCeleb's layout.

    python scripts/make_fixtures.py vggsound /tmp/vgg_smoke --clips 600 --seconds 3
    python scripts/make_fixtures.py fakeavceleb /tmp/fakeavceleb_fx --per-category 8
    python scripts/make_fixtures.py fakeavceleb /tmp/fakeavceleb_fx --counts 10,10,190,190

VGGSound classes are tone x colour (``--audio-classes`` x ``--video-classes``), so audio or video
alone cannot tell every class and audio + video can. FakeAVCeleb clips are talking heads whose fake
audio (a hiss) and fake video (a blocky face) each carry an artefact of their own stream. Unless
``--no-damage``, the lists include a missing file, a truncated file and a clip without audio stream.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gmf_repro.fixtures import make_fakeavceleb, make_vggsound


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=["vggsound", "fakeavceleb"])
    p.add_argument("out", type=Path)
    p.add_argument("--clips", type=int, default=24, help="vggsound: number of listed clips")
    p.add_argument("--per-category", type=int, default=6, help="fakeavceleb: clips per category")
    p.add_argument("--counts", default=None, help="fakeavceleb: clips of categories A,B,C,D (e.g. 10,10,190,190: "
                                                  "the real data's 1:1 audio and 1:19 video ratios)")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--size", default="48x64", help="frame height x width of the written mp4s")
    p.add_argument("--fps", type=int, default=None, help="frame rate (vggsound 10, fakeavceleb 25)")
    p.add_argument("--audio-classes", type=int, default=2)
    p.add_argument("--video-classes", type=int, default=2)
    p.add_argument("--template", default="{ytid}_{start:06d}.mp4", help="vggsound clip file name template")
    p.add_argument("--no-damage", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    h, w = (int(v) for v in a.size.lower().split("x"))
    t = time.perf_counter()
    if a.dataset == "vggsound":
        make_vggsound(a.out, a.clips, n_audio=a.audio_classes, n_video=a.video_classes, seconds=a.seconds,
                      size=(h, w), fps=a.fps or 10, template=a.template, damaged=not a.no_damage, seed=a.seed)
    else:
        counts = dict(zip("ABCD", (int(n) for n in a.counts.split(",")))) if a.counts else None
        make_fakeavceleb(a.out, a.per_category, counts=counts, seconds=a.seconds, size=(h, w), fps=a.fps or 25,
                         damaged=not a.no_damage, seed=a.seed)
    print(f"wrote {a.dataset} fixtures to {a.out} in {time.perf_counter() - t:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
