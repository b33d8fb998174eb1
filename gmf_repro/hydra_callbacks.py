"""Hydra callbacks (registered in conf/config.yaml under ``hydra.callbacks``).

``RunFolderGuard`` checks a job's folder (lock, results, checkpoints, the setting a resume continues)
before anything is written into it, then writes the job's ``.hydra/`` files itself.
``WandbSweepReport`` gives a sweep its own view in W&B: Hydra calls
``on_multirun_end`` in the launching process once every job has returned, and one more run, job type
``report``, lands in the sweep's W&B group with the report's table and chart, offline or online
like the jobs' runs (``wandb sync`` uploads it with them).
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from .errors import RunFolderError, UserError
from .results import check_run_folder, check_writable, in_use, lock_holder


class RunFolderGuard(Callback):
    """A job's folder is checked before anything is written into it, and its provenance is written only then.

    ``hydra.output_subdir`` is null (conf/config.yaml), so Hydra writes no ``.hydra/`` of its own; in
    ``on_job_start`` (run and sweep alike) the guard refuses a folder that a running run holds, that holds
    another run's results or checkpoints, or whose checkpoint another setting made (``resume=true``), and
    only then writes the job's ``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml``. A resumed run's
    go to ``.hydra/resume-<k>/``, beside those of the run it continues. ``run()`` makes the same checks under
    the folder's lock. A single run that is refused stops with one line (exit 2); a sweep's job fails in
    ``run()`` with the same line, and the sweep goes on.

    ``config_name``: the command whose jobs it guards (``config``: ``python -m gmf_repro``); another command
    that composes conf/config.yaml (``python -m gmf_repro.bench``) writes no run folder and is left alone.
    """

    def __init__(self, config_name: str = "config") -> None:
        self.config_name = config_name

    def guards(self, config: DictConfig) -> bool:
        return str(config.hydra.job.get("config_name")) == self.config_name

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.guards(config):
            return
        try:  # before Hydra creates the folder: a read-only or impossible hydra.run.dir is one line, not a traceback
            check_writable(Path(str(config.hydra.run.dir)).resolve())
        except RunFolderError as err:
            refuse(err)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.guards(config):
            return
        sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        try:
            check_writable(sweep_dir, "sweep folder", "hydra.sweep.dir")
        except RunFolderError as err:
            refuse(err)
        earlier = next(iter(sorted(sweep_dir.glob("**/results.json"))), None) or next(
            iter(sorted(sweep_dir.glob("**/*.ckpt"))), None)
        if earlier is not None and config.get("resume") is not True:
            refuse(RunFolderError(
                f"sweep folder {sweep_dir} already holds an earlier sweep's results ({earlier}); give this sweep "
                f"its own hydra.sweep.dir=<folder>, or set resume=true to continue those runs"))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
        from pytorch_lightning.utilities.rank_zero import rank_zero_only

        if not self.guards(config) or getattr(rank_zero_only, "rank", 0) != 0:  # DDP: rank 0 holds the folder
            return
        out_dir = Path(str(config.hydra.runtime.output_dir)).resolve()
        job = job_config(config)
        try:
            holder = lock_holder(out_dir)
            if holder is not None:
                raise in_use(out_dir, holder)
            check_run_folder(out_dir, job)
        except UserError as err:
            if HydraConfig.get().mode != RunMode.MULTIRUN:
                refuse(err)
            return  # the job fails in run() with the same error, and writes nothing into the folder
        if config.hydra.output_subdir is None:  # a hydra.output_subdir of the user's: Hydra has written it
            save_provenance(config, job, out_dir)


def job_config(config: DictConfig) -> DictConfig:
    """The job's config as ``run()`` gets it: without the ``hydra`` node (as Hydra's ``run_job`` makes it)."""
    job = copy.deepcopy(config)
    with read_write(job), open_dict(job):
        del job["hydra"]
    return job


def save_provenance(config: DictConfig, job: DictConfig, out_dir: Path) -> Path:
    """Hydra's three files, as Hydra writes them, into ``.hydra/`` (``.hydra/resume-<k>/`` for a resumed run)."""
    from hydra.core.hydra_config import HydraConfig

    folder = out_dir / ".hydra"
    if job.get("resume") and (folder / "config.yaml").exists():
        folder = folder / f"resume-{1 + sum(1 for _ in folder.glob('resume-*'))}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, node in (("config.yaml", job), ("hydra.yaml", HydraConfig.instance().cfg),
                       ("overrides.yaml", config.hydra.overrides.task)):
        (folder / name).write_text(OmegaConf.to_yaml(node), encoding="utf-8")
    return folder


def refuse(err: UserError) -> None:
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
        # as quiet as the jobs' runs (conf/logger/wandb.yaml's silent, loggers.WandbLogger)
        settings=wandb.Settings(silent=bool(logger.get("silent", True))),
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
