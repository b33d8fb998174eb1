"""Clips per second: decoding mp4s on the fly vs reading the decode-once cache, same DataLoader settings.

Any run setting (key=value: data=, data.root=, preset=, ...) chooses the data and its media settings, so the
cache it reads is the one a run reads. Examples:

    python scripts/bench_data.py data=vggsound data.root=/data/vggsound --clips 200 --workers 0
    python scripts/bench_data.py data=vggsound data.root=/data/vggsound preset=tiny --decode-clips 20
    python scripts/bench_data.py data=fakeavceleb data.root=/data/FakeAVCeleb_v1.2 --workers 4

``--workers 0`` loads in the main process, so the numbers are per core. Builds the cache first if
it is missing. Also times the spectrogram on the CPU, the cost the device-side spectrogram avoids.
"""
from __future__ import annotations

import argparse
import sys
import time

from _compose import build_media_datamodule


def rate(loader, limit: int) -> tuple[float, int]:
    """Clips per second over the first ``limit`` clips (after one warm-up batch)."""
    it = iter(loader)
    first = next(it)
    n, start = 0, time.perf_counter()
    seen = len(first["label"])
    for batch in it:
        n += len(batch["label"])
        seen += len(batch["label"])
        if seen >= limit:
            break
    return n / max(time.perf_counter() - start, 1e-9), n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=200, help="clips to time on the cache path")
    p.add_argument("--decode-clips", type=int, default=40, help="clips to time on the (slow) decode path")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers for both paths (0 = per core)")
    p.add_argument("--batch-size", type=int, default=16, help="clips per batch on both paths (default 16)")
    p.usage = "bench_data.py [key=value ...] [-h] [--clips N] [--decode-clips N] [--workers N] [--batch-size N]"
    args, overrides = p.parse_known_args(argv)
    import torch
    from torch.utils.data import DataLoader

    from gmf_repro.data.cache import CacheReader
    from gmf_repro.data.clip_base import ClipDataset

    torch.set_num_threads(1)
    dm = build_media_datamodule(overrides)
    dm.build_cache_if_missing = True
    dm.show_progress = False
    dm.ensure_cache()
    reader = CacheReader(dm.cache_dir, "train")
    by_key = {c.key: c for c in dm.list_clips()}
    refs = [by_key[k] for k in reader.keys]  # the same clips, as mp4 paths
    settings = dict(batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                    generator=torch.Generator().manual_seed(0))
    decode_rate, n1 = rate(DataLoader(ClipDataset(refs, dm.modalities, dm.spec), **settings),
                           min(args.decode_clips, len(refs)))
    settings["generator"] = torch.Generator().manual_seed(0)
    cache_rate, n2 = rate(DataLoader(ClipDataset(reader, dm.modalities), **settings), min(args.clips, len(refs)))
    wave = torch.zeros(args.batch_size, dm.spec.audio_samples)
    dm.spectrogram(wave)
    start = time.perf_counter()
    for _ in range(3):
        dm.spectrogram(wave)
    spec_rate = 3 * args.batch_size / (time.perf_counter() - start)
    per = "per core" if args.workers == 0 else f"with {args.workers} workers"
    print(f"{dm.name} {dm.cache_tag}, batch {args.batch_size}, {per}:")
    print(f"  decode mp4 on the fly : {decode_rate:9.1f} clips/s ({n1} clips)")
    print(f"  read the cache        : {cache_rate:9.1f} clips/s ({n2} clips)")
    print(f"  ratio cache / decode  : {cache_rate / decode_rate:9.1f}x")
    print(f"  spectrogram on 1 CPU core: {spec_rate:9.1f} clips/s (done on the training device instead)")
    return 0


def cli(argv: list[str] | None = None) -> int:
    """``main`` with one line on stderr and exit code 2 for a mistake the user can fix (GMF_DEBUG=1: traceback)."""
    from gmf_repro.errors import UserError, env_flag

    try:
        return main(argv)
    except (UserError, FileNotFoundError) as err:
        if env_flag("GMF_DEBUG"):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(cli())
