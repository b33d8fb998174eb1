"""Convert ActivityNet's released feature pickles to .npz, once: later runs read the .npz and unpickle nothing.

    python scripts/convert_activitynet.py /data/activitynet                   # train and test
    python scripts/convert_activitynet.py /data/activitynet --splits val --overwrite

Writes ``{split}_{v,i,label}.npz`` beside each ``{split}_{v,i,label}.pkl`` in the folder (``data.root`` of
``data=activitynet``), which the datamodule then reads instead of the pickle. The pickles are read with
the restricted unpickler (numpy arrays, lists, dicts, numbers and strings only), so a file that would run
code is refused here as in a run. Each .npz appears whole or not at all. Keep the .pkl files: the
datamodule still looks for them by name. Prints one line per file written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", type=Path, help="the folder with {split}_v.pkl, {split}_i.pkl, {split}_label.pkl")
    p.add_argument("--splits", nargs="+", default=["train", "test"],
                   help="split names, as data.train_split / data.test_split (default: train test)")
    p.add_argument("--overwrite", action="store_true", help="convert again where a .npz already exists")
    args = p.parse_args(argv)

    from gmf_repro.data.safe_pickle import convert_activitynet
    from gmf_repro.errors import UserError

    try:
        written = convert_activitynet(args.root, args.splits, overwrite=args.overwrite)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"nothing to convert: every .npz in {args.root} exists (--overwrite converts again)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
