"""Decode a media dataset once into the memory-mapped cache that training reads.

    python scripts/preprocess.py data=vggsound data.root=/data/vggsound [preset=tiny] [--workers 8]
    python scripts/preprocess.py data=vggsound data.root=/data/vggsound --shard $SLURM_ARRAY_TASK_ID --num-shards 40

Settings come from the same config as a run (any Hydra override), so the run finds this cache.
A rerun skips finished shards; the job that finishes the last shard writes the manifest.
"""
from __future__ import annotations

import argparse
import os
import sys

from _compose import build_media_datamodule


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shard", type=int, default=None, help="decode only this shard (0-based)")
    p.add_argument("--num-shards", type=int, default=None, help="total shards (needed with --shard)")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="decoding processes")
    p.add_argument("--no-progress", action="store_true")
    args, overrides = p.parse_known_args(argv)
    if args.shard is not None and args.num_shards is None:
        p.error("--shard needs --num-shards (the same for every job of the array)")
    from gmf_repro.data.cache import build_cache, default_num_shards

    dm = build_media_datamodule(overrides)
    clips = dm.list_clips()
    n = args.num_shards or dm.num_shards or default_num_shards(len(clips))
    manifest = build_cache(clips, dm.spec, dm.cache_dir, num_shards=n,
                           shards=None if args.shard is None else [args.shard], workers=args.workers,
                           extra_meta=dm.extra_meta(), show_progress=not args.no_progress)
    if manifest is None:
        print(f"shard {args.shard} of {n} done -> {dm.cache_dir}; the manifest is written when all shards are done")
    else:
        print(f"{dm.name}: {manifest['summary']} -> {dm.cache_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
