"""`make demo`: a multirun of every fuser on the embedded data, then a Table 2-style summary.

Runs ``python -m gmf_repro -m experiment=demo`` (so what you see is exactly what a user's sweep does),
then reads each job's results.json and prints A, V, AV accuracy with params, FLOPs and CPU latency.
Extra arguments are passed to the sweep, e.g. ``python -m gmf_repro.demo trainer.max_epochs=2``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .quiet import quiet_libraries


def load_results(sweep_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(sweep_dir.rglob("results.json"))]


def print_summary(rows: list[dict[str, Any]], title: str) -> None:
    """One line per job: A, V, AV, the drops AV-A and AV-V, complexity and fit time.

    Not the report's renderer (``report/render.py``): its columns are metrics or complexity keys shown as
    ``ours ± interval (n) / paper (diff)``; the drops (a difference of two conditions) and ``timings.fit_s``
    would each be a new kind of column, and the demo's single-seed runs on avsynth have no paper numbers.
    ``python -m gmf_repro.report <sweep dir>`` gives the report's tables of the same runs.
    """
    from rich.console import Console
    from rich.table import Table

    from .ui import human

    table = Table(title=title)
    for col in ("fuser", "A", "V", "AV", "AV-A", "AV-V", "params", "FLOPs", "CPU s/sample", "fit s"):
        table.add_column(col, justify="left" if col == "fuser" else "right")
    for r in rows:
        if r.get("status") != "ok":
            table.add_row(r["fuser"], "[red]FAILED", "", "", "", "", "", "", "", r.get("error", "")[:40])
            continue
        acc = {c: 100 * r["metrics"][c]["acc"] for c in ("A", "V", "AV")}
        cx = r["complexity"]
        table.add_row(
            r["fuser"], f"{acc['A']:.2f}", f"{acc['V']:.2f}", f"{acc['AV']:.2f}",
            f"{acc['AV'] - acc['A']:.2f}", f"{acc['AV'] - acc['V']:.2f}",
            human(cx["params"]), human(cx["flops"]), f"{cx['cpu_latency_s']:.5f}", f"{r['timings']['fit_s']:.1f}",
        )
    Console(width=140).print(table)


def print_first_config(extra: list[str]) -> None:
    """The composed config of the sweep's first job, once (each job would print the same tree)."""
    from omegaconf import open_dict

    from .config import compose
    from .ui import print_config_tree

    cfg = compose(["experiment=demo", *[o for o in extra if not o.startswith("hydra")]])
    with open_dict(cfg):
        cfg.pop("paths")  # the run directory is only known inside the job
    print_config_tree(cfg)


def main(argv: Sequence[str] | None = None) -> int:
    quiet_libraries()
    extra = list(sys.argv[1:] if argv is None else argv)
    sweep_dir = Path("outputs/demo") / time.strftime("%Y-%m-%d_%H-%M-%S")
    cmd = [sys.executable, "-m", "gmf_repro", "-m", "experiment=demo", f"hydra.sweep.dir={sweep_dir}", *extra]
    print_first_config(extra)
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    # W&B stays offline; its per-run banner would bury the one summary line each job prints
    env = {"WANDB_SILENT": "true", **os.environ}
    code = subprocess.call(cmd, env=env)
    rows = load_results(sweep_dir)
    if not rows:
        print(f"error: the sweep wrote no results.json under {sweep_dir} (exit code {code})", file=sys.stderr)
        return code or 1
    print_summary(rows, f"avsynth, frozen-extractor setting (accuracy %, demo-size fusers), "
                        f"{time.perf_counter() - start:.0f} s in all")
    print(f"results: {sweep_dir}   paper-size complexity: python -m gmf_repro.complexity fuser=all   "
          f"report: python -m gmf_repro.report {sweep_dir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
