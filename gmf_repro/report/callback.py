"""A Hydra callback that ends a sweep with the report (``experiment=claims``).

It runs the report's own command in this process: the report reads the jobs' results.json files only.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class ReportAtEnd(Callback):
    """After the last job: the report as markdown on the terminal and in ``<sweep dir>/report.md``, plus
    ``robustness.png``."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from .__main__ import main

        sweep = Path(config.hydra.sweep.dir)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main([str(sweep), "--format", "markdown", "--plot", str(sweep / "robustness.png")])
        if out.getvalue():
            (sweep / "report.md").write_text(out.getvalue())
        print(out.getvalue(), end="", flush=True)
        print(f"report: {sweep / 'report.md'}", flush=True)
