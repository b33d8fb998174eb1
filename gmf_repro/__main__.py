"""`python -m gmf_repro [overrides]`: one Hydra job (or a multirun sweep with -m) per call to run(cfg)."""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import NamedTuple

import hydra
from omegaconf import DictConfig

from .config import CONF_DIR, check_command_line, group_options, overrides_of
from .errors import RunFolderError, UserError, env_flag
from .quiet import quiet_libraries


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_main(cfg: DictConfig) -> float | None:
    quiet_libraries()  # every job of a sweep, before Lightning is imported
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from .results import write_json_atomic
    from .run import run

    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    job = Job(HydraConfig.get().job.num if multirun else 0, tuple(HydraConfig.get().overrides.task))
    try:
        results = run(cfg)
    except Exception as err:  # noqa: BLE001 - every failure is reported, one line unless debugging
        if env_flag("GMF_DEBUG") or env_flag("HYDRA_FULL_ERROR"):
            raise
        if not multirun:
            fail(err)
        # in a sweep, one failed job is recorded and the others go on; main() sums them up at the end
        print(f"error: job failed: {err}", file=sys.stderr)
        SWEEP_JOBS.append(job._replace(error=one_line(err)))
        if records_failure(Path(cfg.paths.output_dir), err):
            write_json_atomic(Path(cfg.paths.output_dir) / "results.json", failed_results(cfg, err))
        return None
    if multirun:
        SWEEP_JOBS.append(job)
    av = results["metrics"].get("AV", {})
    return av.get("acc")


def failed_results(cfg: DictConfig, err: Exception) -> dict:
    from .results import setting_digest
    from .utils import labels_of, report_place

    return {
        **labels_of(cfg), **report_place(cfg),
        "experiment": cfg.experiment_name, "group": cfg.group, "tags": list(cfg.tags), "seed": int(cfg.seed),
        "status": "failed", "error": f"{type(err).__name__}: {err}", "metrics": {},
        "setting_digest": setting_digest(cfg),  # the report counts the failure in its setting's row
    }


def records_failure(out_dir: Path, err: Exception) -> bool:
    """Whether a failed job may write its record: never into another run's folder or over finished results."""
    if isinstance(err, RunFolderError):
        return False
    try:
        return json.loads((out_dir / "results.json").read_text()).get("status") != "ok"
    except (OSError, ValueError, AttributeError):
        return True


class Job(NamedTuple):
    """One job of a sweep that ran in this process, and its error (None when it succeeded)."""

    num: int
    overrides: tuple[str, ...]
    error: str | None = None


# the jobs of this process's sweep, in order (Hydra's local launcher runs them here; a remote launcher's
# jobs run elsewhere and are counted by their own processes)
SWEEP_JOBS: list[Job] = []


def one_line(err: Exception) -> str:
    """What a job's failure prints: a user's mistake as its message, anything else with its type."""
    text = str(err).strip().splitlines()
    text = text[0] if text else ""
    return text if isinstance(err, (UserError, FileNotFoundError)) else f"{type(err).__name__}: {text}"


def sweep_failures(jobs: list[Job]) -> list[str]:
    """``k of n jobs failed:`` and one line per failed job, named by what sets it apart (the overrides the
    sweep's jobs do not share); [] when every job succeeded."""
    failed = [j for j in jobs if j.error is not None]
    if not failed:
        return []
    shared = set.intersection(*(set(j.overrides) for j in jobs))
    own = {j.num: " ".join(o for o in j.overrides if o not in shared) for j in failed}
    return [f"error: {len(failed)} of {len(jobs)} jobs failed:",
            *(f"  job {j.num}{f' ({own[j.num]})' if own[j.num] else ''}: {j.error}" for j in failed)]


def fail(err: Exception) -> None:
    """One line for mistakes a user can fix; the traceback's last frame otherwise (GMF_DEBUG=1 for all)."""
    if isinstance(err, (UserError, FileNotFoundError)):
        print(f"error: {err}", file=sys.stderr)
    else:
        frame = traceback.extract_tb(err.__traceback__)[-1]
        print(f"error: {type(err).__name__}: {err} (at {frame.filename}:{frame.lineno}; "
              f"GMF_DEBUG=1 shows the full traceback)", file=sys.stderr)
    sys.exit(2)


def flags_first(argv: list[str]) -> list[str]:
    """Hydra's flags (``-m``, ``--cfg job``, ...) anywhere on the line, as in ``python -m gmf_repro data=x -m
    fuser=a,b``: Hydra's parser accepts them only before the overrides."""
    overrides = overrides_of(argv[1:])
    rest = list(argv[1:])
    for word in overrides:
        rest.remove(word)
    return [argv[0], *rest, *overrides]


HELP = """usage: python -m gmf_repro [-m] [key=value ...]

Train one fuser on one dataset, test it with every modality given and with each one missing (AV, A, V), and
write results.json (accuracy per condition, params, FLOPs, CPU latency, timings) into the run folder,
outputs/<date>/<time>/ (multirun/<date>/<time>/<job>/ for a sweep). It prints one summary line per job.
Without arguments: GMF on the embedded avsynth data, 20 epochs, W&B offline (about 1 minute on 2 CPU cores).

Main options (group=option; an experiment is a paper table or recipe; `--cfg job` prints every setting):
  experiment=NAME       {experiment}
  fuser=NAME            {fuser}; demo/NAME: demo size
  data=NAME             {data}
  trainer=NAME          default (GPU if there is one) | cpu | gpu (16-mixed) | ddp (trainer.devices=4)
  logger=NAME           wandb (offline; logger.offline=false after `wandb login`) | csv | none
  progress=NAME         rich | tqdm | none          checkpoint=NAME   default (checkpoints/last.ckpt) | none
  trainer.max_epochs=N  seed=N  threads=auto|N  resume=true  print_config=true  hydra.run.dir=DIR
  -m                    a sweep: one job per combination of the comma lists (fuser=concat,gmf seed=1,2,3)

Examples:
  python -m gmf_repro fuser=mbt trainer.max_epochs=5
  python -m gmf_repro -m fuser=concat,gmf seed=1,2,3
  python -m gmf_repro data=features data.path=$PWD/mydata.npz 'data.modalities={{text:T,image:I,audio:A}}'
  python -m gmf_repro experiment=vggsound_frozen data.root=/data/vggsound trainer=gpu

Then `python -m gmf_repro.report <run or sweep folder>`. Other commands, each with --help: python -m
gmf_repro.demo, gmf_repro.report, gmf_repro.complexity, gmf_repro.bench. Hydra's own flags: --hydra-help.
More: README.md and docs/usage.md."""


def help_text() -> str:
    """``--help``: what the command does, its main options (the groups' options read from conf/), examples."""
    import textwrap

    def options(group: str) -> str:
        text = textwrap.fill(" | ".join(group_options(group, nested=False)), width=88, break_on_hyphens=False)
        return text.replace("\n", "\n" + " " * 24)

    return HELP.format(experiment=options("experiment"), fuser=options("fuser"), data=options("data"))


def main() -> None:
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        print(help_text())
        sys.exit(0)
    sys.argv = flags_first(sys.argv)
    try:
        check_command_line(sys.argv[1:])
    except UserError as err:
        fail(err)
    hydra_main()
    # a sweep with failed jobs is no success: after the report, every failure again, and exit code 1
    if lines := sweep_failures(SWEEP_JOBS):
        print("\n".join(lines), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
