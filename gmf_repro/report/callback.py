"""A Hydra callback that ends a sweep with the report (``experiment=claims``).

The report runs in its own process: it composes fuser configs for paper-size complexity, which a
Hydra app that is still running cannot do in-process.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class ReportAtEnd(Callback):
    """After the last job: the report as markdown on the terminal and in ``<sweep dir>/report.md``, plus
    ``robustness.png``."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        cmd = [sys.executable, "-m", "gmf_repro.report", str(sweep), "--format", "markdown",
               "--plot", str(sweep / "robustness.png")]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.stdout:
            (sweep / "report.md").write_text(proc.stdout)
        print(proc.stdout, end="", flush=True)
        print(proc.stderr, end="", file=sys.stderr, flush=True)
        print(f"report: {sweep / 'report.md'}", flush=True)
