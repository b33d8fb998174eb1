"""Hydra callbacks (registered in conf/config.yaml under ``hydra.callbacks``).

``RunFolderGuard`` refuses a finished run's (or sweep's) folder before Hydra writes the new job's
``.hydra/`` files over the old ones. ``WandbSweepReport`` gives a sweep its own view in W&B: Hydra calls
``on_multirun_end`` in the launching process once every job has returned, and one more run, job type
``report``, lands in the sweep's W&B group with the report's table and chart, offline or online
like the jobs' runs (``wandb sync`` uploads it with them).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .errors import RunFolderError
from .results import check_run_folder, last_checkpoint


class RunFolderGuard(Callback):
    """A run or sweep into a folder with results.json is refused before Hydra writes into the folder.

    ``run()`` makes the same check under the run folder's lock; this one keeps a finished run's
    ``.hydra/config.yaml`` (its provenance) from being replaced by the refused job's.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(str(config.hydra.run.dir)).resolve()  # paths.output_dir, which Hydra sets only after this
        try:
            check_run_folder(run_dir, resume=config.get("resume") is True, last=last_checkpoint(config, run_dir))
        except RunFolderError as err:
            refuse(err)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        earlier = next(iter(sorted(sweep_dir.glob("**/results.json"))), None)
        if earlier is not None and config.get("resume") is not True:
            refuse(RunFolderError(
                f"sweep folder {sweep_dir} already holds an earlier sweep's results ({earlier}); give this sweep "
                f"its own hydra.sweep.dir=<folder>, or set resume=true to continue those runs"))


def refuse(err: RunFolderError) -> None:
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)


def report_tables(sweep_dir: Path, plot_path: Path) -> tuple[Any, dict[str, dict[str, Any]], Path | None]:
    """The sweep folder's report (``gmf_repro.report.build_report``, what ``python -m gmf_repro.report`` prints),
    its tables as plain rows, and its robustness chart (None when no table has condition columns to draw).

    The one place that calls into ``gmf_repro.report``: ``{table: {"columns": [...], "rows": [[...], ...]}}``,
    one row per report row, and per column ours, then the paper's number and the difference only where the
    runs are on the paper's dataset."""
    from .report import build_report
    from .report.plots import plot_robustness
    from .report.tables import row_label

    report = build_report([sweep_dir])
    plain = {}
    for table in report.tables:
        columns = ["row", "method", "status", "runs"]
        for col in table.spec.columns:
            columns += [f"{col.name} ours", f"{col.name} paper", f"{col.name} diff"] if table.vs_paper else [
                f"{col.name} ours"]
        rows = []
        for row in table.rows:
            cells = [row.cells[col.name] for col in table.spec.columns]
            values = [v for c in cells for v in ((c.ours, c.paper, c.diff) if table.vs_paper else (c.ours,))]
            rows.append([row.key, row_label(row), row.status, row.n_runs, *values])
        plain[table.name] = {"title": table.spec.title, "columns": columns, "rows": rows}
    try:
        chart = plot_robustness(report.tables, plot_path)
    except ValueError:  # no table with condition columns and a successful run
        chart = None
    return report, plain, chart


def log_report_run(config: DictConfig) -> str | None:
    """One W&B run (job type ``report``): each report table as a ``wandb.Table``, the chart as an image, the
    whole report (notes, tables, claims) as text, and the notes on what is missing or wrong in its summary."""
    import html

    import wandb

    from .loggers import wandb_group
    from .report.build import render

    sweep_dir = Path(str(config.hydra.sweep.dir))
    if not any(sweep_dir.rglob("results.json")):
        return None
    report, tables, chart = report_tables(sweep_dir, sweep_dir / "robustness.png")
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
        run.log({"report/text": wandb.Html(f"<pre>{html.escape(render(report, 'markdown'))}</pre>")})
        run.summary["report/notes"] = list(report.notes)
    except BaseException:
        wandb.finish(exit_code=1)
        raise
    wandb.finish()
    return run.dir


class WandbSweepReport(Callback):
    """``on_multirun_end``: the report run, when the sweep logs to W&B. Its failure warns; the jobs' results stay."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from .loggers import is_wandb

        if not is_wandb(config.get("logger")):
            return
        try:
            log_report_run(config)
        except Exception as err:  # noqa: BLE001 - the jobs are done and written; say what went wrong
            print(f"warning: the sweep's W&B report run was not written: {type(err).__name__}: {err}",
                  file=sys.stderr)
