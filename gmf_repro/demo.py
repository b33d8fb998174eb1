"""`make demo`: a multirun of every fuser on the embedded data, then a Table 2-style summary.

Runs ``python -m gmf_repro -m experiment=demo`` (so what you see is exactly what a user's sweep does),
then prints the report's ``demo`` table of the jobs' results.json (``report/specs.py``): A, V, AV
accuracy, the drops AV-A and AV-V, params, FLOPs, CPU latency and fit time, a failed job as a FAILED
row with its error. Extra arguments are passed to the sweep, e.g.
``python -m gmf_repro.demo trainer.max_epochs=2``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .quiet import quiet_libraries

if TYPE_CHECKING:
    from .report.aggregate import Table


def summary_table(results: Sequence[dict[str, Any]], seconds: float) -> Table:
    """The report's ``demo`` table of the sweep's runs (paper row order, then any other fuser)."""
    from .report.aggregate import build_table

    table = build_table(results, "demo")
    table.notes_above.append(f"{seconds:.0f} s in all.")
    return table


HELP = """usage: python -m gmf_repro.demo [key=value ...]

Train every demo-size fuser (conf/fuser/demo/: the paper's architectures with fewer and narrower layers) on
the embedded avsynth data as one sweep, `python -m gmf_repro -m experiment=demo`, then print a Table 2-style
block: accuracy in % with both modalities (AV) and with one zeroed (A, V), the drops AV-A and AV-V, params,
FLOPs, CPU latency and fit time per fuser; a failed job is a FAILED row with its error. About 2.5 minutes on
2 CPU cores; nothing is downloaded. Results: outputs/demo/<date>_<time>/ (one folder per job, results.json).

Options: any setting of a run (`python -m gmf_repro --help`), given to every job of the sweep.

Examples:
  python -m gmf_repro.demo                              # what `make demo` runs
  python -m gmf_repro.demo trainer.max_epochs=2         # a quicker look
  python -m gmf_repro.demo seed=2 logger=csv

Then: python -m gmf_repro.report outputs/demo/<date>_<time> --plot robustness.png"""


def main(argv: Sequence[str] | None = None) -> int:
    extra = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in extra):
        print(HELP)
        return 0
    quiet_libraries()
    from .config import check_command_line
    from .errors import UserError

    try:  # a wrong setting is one line before the sweep starts, not one failure per job
        check_command_line(["-m", "experiment=demo", *extra])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sweep_dir = Path("outputs/demo") / time.strftime("%Y-%m-%d_%H-%M-%S")
    cmd = [sys.executable, "-m", "gmf_repro", "-m", "experiment=demo", f"hydra.sweep.dir={sweep_dir}", *extra]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    # W&B stays offline; its per-run banner would bury the one summary line each job prints
    env = {"WANDB_SILENT": "true", **os.environ}
    code = subprocess.call(cmd, env=env)
    seconds = time.perf_counter() - start
    from rich.console import Console

    from .report.render import to_rich
    from .report.runs import load_results

    results = load_results([sweep_dir]) if sweep_dir.is_dir() else []
    if not results:
        print(f"error: the sweep wrote no results.json under {sweep_dir} (exit code {code})", file=sys.stderr)
        return code or 1
    Console(width=140).print(to_rich(summary_table(results, seconds)))
    print(f"results: {sweep_dir}   paper-size complexity: python -m gmf_repro.complexity fuser=all   "
          f"report: python -m gmf_repro.report {sweep_dir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
