"""FakeAVCeleb's protocol end to end on generated talking heads, with the checks its per-stream labels must pass.

    python scripts/fakeavceleb_stream_check.py /tmp/fakeavceleb_check            # A:B:C:D = 16:16:144:144
    python scripts/fakeavceleb_stream_check.py /tmp/ratios --counts 10,10,190,190  # the real data's ratios
    python scripts/fakeavceleb_stream_check.py /tmp/small --counts 6,6,54,54 --small  # the test's set

Writes a FakeAVCeleb-layout set (gmf_repro/fixtures.py: fake audio carries a hiss at 2.5-5 kHz, fake video a
blocky face; by default audio fake:real 1:1 and video 1:9, the real data's 1:19 with ``--counts 10,10,190,190``,
where the test set holds only 3 real clips and AUCs saturate), runs the two unimodal
baselines with the paper's protocol (each learns its own stream's label, docs/paper.md §2.7; Adam 0.005, 5
epochs, batch 16), then GMF on their frozen features (SGD 0.01, 20 epochs, batch 64, the clip's label), and
checks:

1. the audio baseline's accuracy exceeds the test set's share of fake clips (what calling every clip fake
   scores; only a baseline on audio labels with sound BatchNorm statistics can beat it, since the fake-video
   clips' audio is real);
2. its AUC is well above chance (at least 0.8);
3. GMF's AUC with both modalities exceeds its AUC with audio alone and with video alone.

Sizes are reduced for a CPU (frames 4 x 24 x 32 where the paper has 8 x 224 x 224; ``--small`` also takes a
129-bin, 30-frame log-STFT where the paper has 513 x 60); everything else is the experiments' own config.
Prints each run's numbers and a verdict per check; exit code 1 when a check fails.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import open_dict

from gmf_repro.config import compose
from gmf_repro.fixtures import make_fakeavceleb
from gmf_repro.run import run

QUIET = ["logger=none", "progress=none", "print_config=false", "trainer=cpu", "checkpoint=none", "data.num_workers=0",
         "data.preprocess_workers=1", "data.show_progress=false", "eval.latency_repeats=1",
         "eval.mutual_information=false"]
FRAMES = ["data.num_frames=4", "data.frame_size=[24,32]"]
SMALL = ["data.num_frames=2", "data.frame_size=[24,32]", "data.spectrogram.n_fft=256",
         "data.spectrogram.win_length=256", "data.audio_samples=7680", "data.spectrogram.frames=30"]
CHECKS = ("audio accuracy above the share of fake clips", "audio AUC at least 0.8",
          "GMF AUC(AV) above AUC(A) and AUC(V)")


def job(out: Path, *overrides: str) -> dict[str, Any]:
    """One run (``python -m gmf_repro <overrides>``) into ``out``; its results.json content."""
    cfg = compose([*QUIET, *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    return run(cfg)


def fake_share(res: dict[str, Any]) -> float:
    """The test set's share of fake clips (any category but RealVideo-RealAudio), from the run's data_summary."""
    counts = res["data_summary"]["test"]["category"]
    return 1 - counts["RealVideo-RealAudio"] / sum(counts.values())


def checks(audio: dict[str, Any], gmf: dict[str, Any]) -> dict[str, bool]:
    """The three checks (``CHECKS``) on the audio baseline's and GMF's results."""
    a, g = audio["metrics"]["A"], {c: m["auroc"] for c, m in gmf["metrics"].items()}
    # metrics are float32: an accuracy equal to the share may read a little above it in double precision
    beats = a["acc"] > fake_share(audio) + 1e-6
    return dict(zip(CHECKS, (beats, a["auroc"] >= 0.8, g["AV"] > max(g["A"], g["V"]))))


def stream_check(out: Path, counts: dict[str, int], overrides: list[str], seconds: float = 0.4,
                 size: tuple[int, int] = (24, 32), threads: int = 1) -> dict[str, Any]:
    """The data, the two baselines and GMF under ``out``; their results and the checks."""
    root = make_fakeavceleb(out / "data", counts=counts, seconds=seconds, size=size, damaged=False)
    common = [f"data.root={root}", f"threads={threads}", *overrides]
    runs = {m: job(out / m, "experiment=fakeavceleb_unimodal", f"modality={m}", *common) for m in ("audio", "video")}
    runs["gmf"] = job(out / "gmf", "experiment=fakeavceleb", "fuser=gmf", *common)
    return {**runs, "checks": checks(runs["audio"], runs["gmf"])}


def report(found: dict[str, Any]) -> str:
    audio, video, gmf = found["audio"], found["video"], found["gmf"]
    summary = audio["data_summary"]["test"]
    lines = [f"test set: {summary['clips']} clips, by category {summary['category']}; share of fake clips "
             f"{fake_share(audio):.3f}"]
    for name, res, cond in (("audio baseline (audio labels)", audio, "A"), ("video baseline (video labels)", video,
                                                                           "V")):
        m = res["metrics"][cond]
        lines.append(f"{name}: ACC {m['acc']:.3f} AUC {m['auroc']:.3f}; against the clip's labels ACC "
                     f"{m['acc_clip_label']:.3f} AUC {m['auroc_clip_label']:.3f}; BatchNorm gap "
                     f"{res['bn_recalibration'].get('eval_vs_train_gap_before')} -> "
                     f"{res['bn_recalibration'].get('eval_vs_train_gap_after')}")
    lines.append("GMF (clip labels): " + "; ".join(f"{c} ACC {m['acc']:.3f} AUC {m['auroc']:.3f}"
                                                    for c, m in gmf["metrics"].items()))
    lines += [f"{'holds' if ok else 'FAILS'}: {name}" for name, ok in found["checks"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="an empty folder for the data and the three runs")
    p.add_argument("--counts", default="16,16,144,144", help="clips of categories A,B,C,D")
    p.add_argument("--seconds", type=float, default=0.6)
    p.add_argument("--small", action="store_true", help="the test's sizes: 2 frames, a 129 x 30 log-STFT")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    counts = dict(zip("ABCD", (int(n) for n in a.counts.split(","))))
    start = time.perf_counter()
    found = stream_check(a.out, counts, SMALL if a.small else FRAMES, seconds=a.seconds, threads=a.threads)
    print(report(found))
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0 if all(found["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
