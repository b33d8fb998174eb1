"""The sweep's own view in W&B: at the end of a multirun, one more run with the report's table and chart.

Registered in conf/config.yaml under ``hydra.callbacks``. Hydra calls ``on_multirun_end`` in the
launching process once every job has returned; the run lands in the sweep's W&B group with job type
``report``, offline or online like the jobs' runs (``wandb sync`` uploads it with them).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .loggers import is_wandb, wandb_group


def report_tables(sweep_dir: Path, plot_path: Path) -> tuple[dict[str, dict[str, Any]], Path | None]:
    """The report of a sweep folder as plain tables, and its robustness chart (None when no table has A/V).

    The one place that calls into ``gmf_repro.report``: ``{table: {"columns": [...], "rows": [[...], ...]}}``,
    one row per report row (per fuser), and per paper column the cells ours, paper and difference.
    """
    from .report import build_tables, load_results
    from .report.plots import plot_robustness
    from .report.tables import row_label

    tables = build_tables(load_results([sweep_dir]))
    plain = {}
    for table in tables:
        columns = ["row", "method", "status", "runs"]
        for col in table.spec.columns:
            columns += [f"{col.name} ours", f"{col.name} paper", f"{col.name} diff"]
        rows = []
        for row in table.rows:
            cells = [row.cells[col.name] for col in table.spec.columns]
            rows.append([row.key, row_label(row), row.status, row.n_runs,
                         *[v for c in cells for v in (c.ours, c.paper, c.diff)]])
        plain[table.spec.name] = {"title": table.spec.title, "columns": columns, "rows": rows}
    try:
        chart = plot_robustness(tables, plot_path)
    except ValueError:  # no table with A/V columns and a successful run
        chart = None
    return plain, chart


def log_report_run(config: DictConfig) -> str | None:
    """One W&B run (job type ``report``) with each report table as a ``wandb.Table`` and the chart as an image."""
    import wandb

    sweep_dir = Path(str(config.hydra.sweep.dir))
    if not any(sweep_dir.rglob("results.json")):
        return None
    tables, chart = report_tables(sweep_dir, sweep_dir / "robustness.png")
    group = wandb_group(config.get("group"), str(config.hydra.sweep.dir))
    logger = config.logger
    run = wandb.init(
        project=logger.get("project"), entity=logger.get("entity"), group=group, job_type="report",
        name=f"report-{group}", dir=str(sweep_dir), tags=[*config.get("tags", []), "report"],
        mode="offline" if logger.get("offline", False) else "online",
        config={"sweep_dir": str(sweep_dir), "overrides": list(config.hydra.overrides.task)},
    )
    try:
        for name, table in tables.items():
            run.log({f"report/{name}": wandb.Table(columns=table["columns"], data=table["rows"])})
            run.summary[f"report/{name}/failed_rows"] = sum(r[2] == "failed" for r in table["rows"])
        if chart is not None:
            run.log({"report/robustness": wandb.Image(str(chart))})
    except BaseException:
        wandb.finish(exit_code=1)
        raise
    wandb.finish()
    return run.dir


class WandbSweepReport(Callback):
    """``on_multirun_end``: the report run, when the sweep logs to W&B. Its failure warns; the jobs' results stay."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not is_wandb(config.get("logger")):
            return
        try:
            log_report_run(config)
        except Exception as err:  # noqa: BLE001 - the jobs are done and written; say what went wrong
            print(f"warning: the sweep's W&B report run was not written: {type(err).__name__}: {err}",
                  file=sys.stderr)
