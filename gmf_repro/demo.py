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


def main(argv: Sequence[str] | None = None) -> int:
    quiet_libraries()
    extra = list(sys.argv[1:] if argv is None else argv)
    sweep_dir = Path("outputs/demo") / time.strftime("%Y-%m-%d_%H-%M-%S")
    cmd = [sys.executable, "-m", "gmf_repro", "-m", "experiment=demo", f"hydra.sweep.dir={sweep_dir}", *extra]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    # W&B stays offline; its per-run banner would bury the one summary line each job prints
    env = {"WANDB_SILENT": "true", **os.environ}
    code = subprocess.call(cmd, env=env)
    seconds = time.perf_counter() - start
    from rich.console import Console

    from .report.aggregate import load_results
    from .report.render import to_rich

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
