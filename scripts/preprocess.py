"""Decode a media dataset once into the memory-mapped cache that training reads.

    python scripts/preprocess.py data=vggsound data.root=/data/vggsound [preset=tiny] [--workers 8]
    python scripts/preprocess.py data=vggsound data.root=/data/vggsound --shard $SLURM_ARRAY_TASK_ID --num-shards 40
    python scripts/preprocess.py data=vggsound data.root=/data/vggsound --rebuild-shard 3

Settings come from the same config as a run (any Hydra override), so the run finds this cache.
A rerun verifies finished shards and skips the sound ones; jobs may run at once on one cache (a
shard another job holds is waited for); the job that finishes the last shard writes the manifest.
Errors are one line and exit with code 2 (GMF_DEBUG=1 shows the traceback).
"""
from __future__ import annotations

import argparse
import os
import sys

from _compose import build_media_datamodule

from gmf_repro.errors import env_flag


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shard", type=int, default=None, help="decode only this shard (0-based)")
    p.add_argument("--num-shards", type=int, default=None, help="total shards (needed with --shard)")
    p.add_argument("--rebuild-shard", type=int, action="append", default=[], metavar="N",
                   help="decode shard N again even if it is finished (repeatable)")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="decoding processes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (batch jobs, log files)")
    p.usage = ("preprocess.py [key=value ...] [-h] [--shard N --num-shards M] [--rebuild-shard N] [--workers N] "
               "[--no-progress]")
    args, overrides = p.parse_known_args(argv)
    if args.shard is not None and args.num_shards is None:
        p.error("--shard needs --num-shards (the same for every job of the array)")
    from gmf_repro.data.cache import build_cache

    dm = build_media_datamodule(overrides)
    clips = dm.list_clips()
    manifest = build_cache(clips, dm.spec, dm.cache_dir, num_shards=args.num_shards or dm.num_shards,
                           shards=None if args.shard is None else [args.shard], workers=args.workers,
                           extra_meta=dm.extra_meta(), show_progress=not args.no_progress,
                           rebuild=args.rebuild_shard, root=dm.root)
    if manifest is None:
        print(f"shard {args.shard} done -> {dm.cache_dir}; the manifest is written when all shards are done")
    else:
        print(f"{dm.name}: {manifest['summary']} -> {dm.cache_dir}")
    return 0


def cli(argv: list[str] | None = None) -> int:
    """``main`` with the main command's error handling: one line on stderr and exit code 2."""
    try:
        return main(argv)
    except SystemExit as stop:
        if not isinstance(stop.code, str):  # argparse's own exits (--help: 0, usage errors: 2)
            raise
        print(stop.code, file=sys.stderr)
    except Exception as err:  # noqa: BLE001 - every failure is reported, one line unless debugging
        if env_flag("GMF_DEBUG") or env_flag("HYDRA_FULL_ERROR"):
            raise
        from gmf_repro.__main__ import fail

        fail(err)
    return 2


if __name__ == "__main__":
    sys.exit(cli())
