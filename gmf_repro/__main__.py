"""`python -m gmf_repro [overrides]`: one Hydra job (or a multirun sweep with -m) per call to run(cfg)."""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import NamedTuple

import hydra
from omegaconf import DictConfig

from .config import CONF_DIR, check_overrides, check_setting_keys
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
    """``-m`` / ``--multirun`` anywhere on the line, as in ``python -m gmf_repro data=x -m fuser=a,b``:
    Hydra's parser accepts it only before the overrides."""
    flags = [a for a in argv[1:] if a in ("-m", "--multirun")]
    return [argv[0], *flags, *(a for a in argv[1:] if a not in ("-m", "--multirun"))]


def main() -> None:
    sys.argv = flags_first(sys.argv)
    try:
        check_overrides(sys.argv[1:])
        check_setting_keys(sys.argv[1:])
    except UserError as err:
        fail(err)
    hydra_main()
    # a sweep with failed jobs is no success: after the report, every failure again, and exit code 1
    if lines := sweep_failures(SWEEP_JOBS):
        print("\n".join(lines), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
