"""What the report reads: unfinished jobs named, bad values named and left out, data never mixed, and runs
named by the settings that set them apart (the report's rows, the job's summary line, the W&B run name)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from gmf_repro.naming import job_label
from gmf_repro.report.build import build_report, render
from gmf_repro.report.labels import setting_variants
from gmf_repro.report.tables import load_results


def job(sweep: Path, num: int, overrides: list[str], results: dict[str, Any] | None,
        config: str = "") -> Path:
    """A sweep's job folder as Hydra leaves it (``.hydra/``), with its results.json unless None."""
    folder = sweep / str(num)
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if config:
        (folder / ".hydra" / "config.yaml").write_text(config)
    if results is not None:
        (folder / "results.json").write_text(json.dumps(results))
    return folder


def record(fuser: str = "gmf", seed: int = 1, setting: str = "s", av: float = 0.6, **fields: Any) -> dict[str, Any]:
    return {"fuser": fuser, "row": fuser, "table": None, "data": "avsynth", "seed": seed, "status": "ok",
            "setting_digest": setting, "metrics": {"AV": {"acc": av}, "A": {"acc": 0.4}, "V": {"acc": 0.3}}, **fields}


def test_unfinished_jobs_are_named(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for num, (n, seed) in enumerate(((2, 1), (2, 2), (4, 1), (4, 2))):
        done = num not in (1, 3)
        job(sweep, num, ["fuser=demo/gmf", f"fuser.n={n}", f"seed={seed}", "threads=1"],
            record(seed=seed, setting=f"n{n}") if done else None)
    report = build_report([sweep])
    assert report.notes[0] == (
        "2 of 4 jobs have no results.json (unfinished: still running, killed, or stopped before writing it), so no "
        "row counts them: 1 (fuser.n=2 seed=2), 3 (fuser.n=4 seed=2)")
    assert render(report, "markdown").startswith("**About the runs read:**\n\n- 2 of 4 jobs have no results.json")
    # every job finished: nothing to say about it
    (sweep / "1" / "results.json").write_text(json.dumps(record(seed=2, setting="n2")))
    (sweep / "3" / "results.json").write_text(json.dumps(record(seed=2, setting="n4")))
    assert not any("jobs have no results.json" in n for n in build_report([sweep]).notes)


def test_metrics_outside_0_1_or_nan_are_named_and_left_out(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    job(sweep, 0, ["seed=1"], record(seed=1, av=1.7))
    job(sweep, 1, ["seed=2"], record(seed=2, av=float("nan")))
    job(sweep, 2, ["seed=3"], record(seed=3, av=-0.2, complexity={"params": float("inf")}))
    job(sweep, 3, ["seed=4"], record(seed=4, av=0.6))
    job(sweep, 4, ["seed=5"], record(seed=5, av=0.7))
    notes: list[str] = []
    runs = load_results([sweep], notes)
    assert notes == ["0: metrics.AV.acc = 1.7 is outside [0, 1]: left out",
                     "1: metrics.AV.acc = nan is not a finite number: left out",
                     "2: metrics.AV.acc = -0.2 is outside [0, 1]; complexity.params = inf is not a finite number: "
                     "left out"]
    report = build_report([sweep])
    (table,) = report.tables
    av = table.row("gmf").cells["AV"]
    assert av.n == 2 and av.ours == pytest.approx(65.0) and not math.isnan(av.ours)  # 0.6 and 0.7 alone
    assert table.row("gmf").cells["A"].n == 5  # the rest of each run stays
    assert all(n in report.notes for n in notes) and "A" in runs[0]["metrics"] and "AV" not in runs[0]["metrics"]


def test_runs_on_different_data_are_never_one_table(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    job(sweep, 0, ["seed=1"], record(table="table2_frozen", data="vggsound_features"))
    job(sweep, 1, ["seed=1", "data=avsynth"], record(table="table2_frozen", data="avsynth", av=0.9))
    job(sweep, 2, ["seed=1", "data=features"], record(table="table2_frozen", data="features",
                                                      metrics={"TIA": {"acc": 0.8}, "T": {"acc": 0.5}}))
    tables = build_report([sweep]).tables
    assert [(t.name, t.vs_paper) for t in tables] == [("table2_frozen", True), ("table2_frozen@avsynth", False),
                                                     ("own_features", False)]
    assert tables[0].row("gmf").cells["AV"].diff == pytest.approx(60.0 - 31.64)
    assert tables[1].row("gmf").cells["AV"].diff is None and tables[1].row("gmf").cells["AV"].ours == 90.0


# ------------------------------------------------------------------ names
def test_a_jobs_label_is_its_fuser_and_its_fuser_settings() -> None:
    typed = ["fuser=demo/gmf", "fuser.n=4", "+fuser.beta=0.5", "seed=3", "trainer.max_epochs=1", "logger=csv",
             "hydra.sweep.dir=/tmp/x"]
    assert job_label("gmf", typed) == "gmf n=4 beta=0.5"
    assert job_label("gmf", ["fuser.n=2", "fuser.backend.n=8"]) == "gmf fuser.n=2 fuser.backend.n=8"  # shared names
    assert job_label("gmf", ["+claims_row=gmf_init", "seed=1"]) == "gmf claims_row=gmf_init"
    assert job_label("gmf", ["+claims_row=gmf"]) == "gmf" and job_label("concat", []) == "concat"


def test_a_setting_kept_at_its_default_is_named_by_its_value(tmp_path: Path) -> None:
    # fuser.n=2 typed for one setting only: the other's n is read from its composed config (.hydra/config.yaml)
    sweep = tmp_path / "sweep"
    job(sweep, 0, ["fuser=demo/gmf", "fuser.n=2", "seed=1"], record(setting="a"), config="fuser:\n  n: 2\n")
    job(sweep, 1, ["fuser=demo/gmf", "seed=1"], record(setting="b"), config="fuser:\n  n: 4\n")
    runs = load_results([sweep])
    variants, clear = setting_variants({"a": [runs[0]], "b": [runs[1]]})
    assert (variants, clear) == ({"a": "n=2", "b": "n=4"}, True)
    (table,) = build_report([sweep]).tables
    assert [r.label for r in table.rows] == ["GMF n=2", "GMF n=4"]


def test_the_job_line_and_the_wandb_run_name_carry_the_label(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from gmf_repro.config import compose, with_hydra_config
    from gmf_repro.ui import run_summary_line

    cfg = compose(["logger=wandb", "fuser=demo/gmf", "fuser.n=2", "seed=3", "threads=1"], return_hydra_config=True)
    results = {"fuser": "gmf", "data": "avsynth", "seed": 3, "metrics": {"AV": {"acc": 0.5}},
               "complexity": {"params": 10, "flops": 20}, "timings": {"fit_s": 1.0}}
    with with_hydra_config(cfg):  # as in a Hydra job: its task overrides are the job's command line
        name = OmegaConf.to_container(cfg.logger, resolve=True)["name"]
        line = run_summary_line(results)
        folder = compose(["logger=csv", "fuser=demo/gmf", "fuser.n=2"]).logger.name
    assert name == "gmf n=2 | avsynth | seed 3" and line.startswith(name + " | AV acc 0.500")
    assert folder == "gmf_n=2-avsynth-s1"
