"""The command line as a user meets it: one-line errors, a multirun with W&B offline runs, the complexity CLI."""
import json
import os
from pathlib import Path

import pytest
from conftest import TINY, cli
from wandb_offline import config as wandb_config
from wandb_offline import history as wandb_history
from wandb_offline import run_info, summary
from wandb_offline import table as wandb_table


@pytest.mark.parametrize(
    "override, message",
    [
        ("fuser=nope", "unknown fuser 'nope': choose one of"),
        ("data=imagenet", "unknown data 'imagenet': choose one of"),
        ("eval.conditions=[AV,Q]", "invalid eval condition 'Q'"),
        ("data.dims=[64]", "avsynth has 2 modalities"),
        ("trainer.max_epochs=abc", "trainer.max_epochs='abc' must be an integer >= 1"),
        ("trainer.max_epoch=3", "unknown setting 'trainer.max_epoch': did you mean trainer.max_epochs?"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(tmp_path, override, message):
    proc = cli("gmf_repro", *TINY, override, f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr[-2000:]


def test_debug_switches_set_to_0_are_off(tmp_path, monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    monkeypatch.setenv("GMF_DEBUG", "0")
    proc = cli("gmf_repro", *TINY, "data.num_classes=1", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and lines == ["error: avsynth needs data.num_classes >= 2, got 1"], proc.stderr[-2000:]


def test_second_run_in_a_finished_folder_is_refused(tmp_path):
    from conftest import make_cfg

    from gmf_repro.run import run

    first = run(make_cfg(tmp_path, ["fuser=concat", "trainer.max_epochs=1", "data.n_train=200", "data.n_test=100"]))
    before = (tmp_path / "results.json").read_bytes()
    proc = cli("gmf_repro", *TINY, "fuser=gmf", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0] == (f"error: run folder {tmp_path.resolve()} already holds a run's results.json; give this run "
                        f"its own hydra.run.dir=<folder>, or set resume=true to continue that run")
    assert (tmp_path / "results.json").read_bytes() == before and first["status"] == "ok"
    assert not (tmp_path / ".hydra").exists()  # refused before Hydra wrote the new job's config


def test_a_running_runs_folder_is_refused_before_anything_is_written(tmp_path):
    from gmf_repro.results import claim_run_folder

    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("the running run's config\n")
    with claim_run_folder(run_dir):  # the running run holds its folder
        proc = cli("gmf_repro", *TINY, "fuser=concat", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and lines == [
        f"error: run folder {run_dir} is in use by another run (pid {os.getpid()}); give this run its own "
        f"hydra.run.dir=<folder>"], proc.stderr[-2000:]
    assert (run_dir / ".hydra" / "config.yaml").read_text() == "the running run's config\n"
    assert sorted(p.name for p in (run_dir / ".hydra").iterdir()) == ["config.yaml"]


def test_a_run_folder_that_cannot_be_written_is_one_line(tmp_path):
    (tmp_path / "a_file").write_text("")
    run_dir = tmp_path / "a_file" / "run"  # cannot be created, as on a read-only file system
    proc = cli("gmf_repro", *TINY, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and lines == [
        f"error: cannot write the run folder {run_dir} (Not a directory); give this run a writable "
        f"hydra.run.dir=<folder>"], proc.stderr[-2000:]


def test_a_read_only_file_system_is_named_before_hydra_creates_the_folder(tmp_path, monkeypatch, capsys):
    import errno

    from omegaconf import OmegaConf

    from gmf_repro.hydra_callbacks import RunFolderGuard

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    config = OmegaConf.create({"hydra": {"run": {"dir": str(tmp_path / "run")}, "job": {"config_name": "config"}}})
    with pytest.raises(SystemExit) as exit_:
        RunFolderGuard().on_run_start(config)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (f"error: cannot write the run folder {tmp_path / 'run'} (Read-only file "
                                       f"system); give this run a writable hydra.run.dir=<folder>\n")
    # python -m gmf_repro.bench composes the same callbacks but writes no run folder: left alone
    config.hydra.job.config_name = "bench"
    RunFolderGuard().on_run_start(config)
    assert capsys.readouterr().err == ""


def test_a_resumed_sweep_refuses_the_job_whose_folder_another_seed_trained_and_keeps_its_provenance(tmp_path):
    sweep = tmp_path / "sweep"
    quick = [*TINY, "fuser=concat", "trainer.max_epochs=1", "data.n_train=200", "data.n_test=100",
             f"hydra.sweep.dir={sweep}"]
    first = cli("gmf_repro", "-m", "seed=1,2", *quick, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    kept = {p: p.read_bytes() for p in (sweep / "1").rglob("*") if p.is_file() and p.suffix != ".log"}
    again = cli("gmf_repro", "-m", "seed=1,3", "resume=true", *quick, cwd=tmp_path)
    last = sweep / "1" / "checkpoints" / "last.ckpt"
    assert again.returncode == 1 and again.stderr.rstrip().splitlines()[-2:] == [
        "error: 1 of 2 jobs failed:",
        f"  job 1 (seed=3): resume=true continues {last} only with the settings that trained it: it was trained "
        f"with seed=2, this run has seed=3; resume with seed=2, or give this run its own hydra.run.dir=<folder>",
    ], again.stderr[-2000:]
    # the refused job's folder as it was; the other job resumed its own run, its first .hydra/ kept beside
    assert {p: p.read_bytes() for p in (sweep / "1").rglob("*") if p.is_file() and p.suffix != ".log"} == kept
    assert (sweep / "0" / ".hydra" / "resume-1" / "overrides.yaml").is_file()
    assert "resume=true" not in (sweep / "0" / ".hydra" / "overrides.yaml").read_text()


def test_sweep_failures_name_what_sets_each_failed_job_apart():
    from gmf_repro.__main__ import Job, sweep_failures

    ok = Job(0, ("fuser=gmf", "seed=1", "data.root=/x"))
    assert sweep_failures([ok, ok._replace(num=1, overrides=("fuser=mbt", "seed=1", "data.root=/x"))]) == []
    bad = Job(1, ("fuser=concat", "seed=1", "data.root=/x"), "folder /x does not exist")
    assert sweep_failures([ok, bad]) == ["error: 1 of 2 jobs failed:",
                                         "  job 1 (fuser=concat): folder /x does not exist"]
    alone = Job(0, ("data.root=/x",), "folder /x does not exist")
    assert sweep_failures([alone]) == ["error: 1 of 1 jobs failed:", "  job 0: folder /x does not exist"]


def the_run(folder: Path) -> Path:
    """The one offline W&B run log under a folder's wandb/ (fails if there are none or several)."""
    (run,) = folder.glob("wandb/offline-run-*/run-*.wandb")
    return run


def test_multirun_one_wandb_run_per_job_with_its_config_and_a_report_run(tmp_path):
    sweep = tmp_path / "sweep"
    # run from another directory: the config tree is found from the package, not the cwd
    proc = cli("gmf_repro", "-m", "fuser=concat,gmf", *TINY, "logger=wandb", "trainer.max_epochs=1",
               "data.num_classes=1,10", "task.optimizer.lr=0.02", f"hydra.sweep.dir={sweep}", "print_config=auto",
               cwd=tmp_path)
    # two jobs failed: no silent success, each failure named again at the end (after the report), exit code 1
    assert proc.returncode == 1, proc.stderr[-3000:]
    failed = "avsynth needs data.num_classes >= 2, got 1"
    assert proc.stderr.rstrip().splitlines()[-3:] == [
        "error: 2 of 4 jobs failed:",
        f"  job 0 (fuser=concat data.num_classes=1): {failed}",
        f"  job 2 (fuser=gmf data.num_classes=1): {failed}"], proc.stderr[-3000:]
    # print_config=auto: the config tree once per sweep (the first job), not once per job
    assert proc.stdout.count("── experiment_name") == 1
    # quiet: nothing from W&B (its runs are written all the same, below), no "anonymous" warning
    assert "wandb:" not in proc.stdout + proc.stderr and "anonymous" not in proc.stderr
    jobs = {int(p.parent.name): json.loads(p.read_text()) for p in sweep.glob("*/results.json")}
    # the first job (concat, num_classes=1) and the third fail when the datamodule is built; the sweep goes on
    assert {j: (r["fuser"], r["status"]) for j, r in jobs.items()} == {
        0: ("concat", "failed"), 1: ("concat", "ok"), 2: ("gmf", "failed"), 3: ("gmf", "ok")}
    assert all("num_classes" in jobs[j]["error"] for j in (0, 2))
    group = None
    for j, res in jobs.items():
        log = the_run(sweep / str(j))  # exactly one W&B run per job, failed or not
        info, config, history = run_info(log), wandb_config(log), [k for row in wandb_history(log) for k in row]
        group = group or info["group"]
        assert info["group"] == group == f"{tmp_path.name}/sweep" and info["job_type"] == "train"
        # the job's own resolved config, flattened with '/', with its overrides and digest
        # labels from the chosen options, resolved by Hydra in the job; the run's place in the report
        assert config["labels/fuser"] == res["fuser"] and config["task/optimizer/lr"] == 0.02
        assert info["name"] == f"{res['fuser']} | avsynth | seed 1"  # no fuser setting overridden: the fuser alone
        assert (res["table"], res["row"]) == (None, res["fuser"])
        assert config["data/num_classes"] == (1 if j in (0, 2) else 10)
        assert config.get("fuser/n") == (4 if res["fuser"] == "gmf" else None)
        assert config["data/dims"] == [64, 64] and config["trainer/max_epochs"] == 1
        assert f"data.num_classes={config['data/num_classes']}" in config["overrides"]
        assert config["config_digest"] == res.get("config_digest", config["config_digest"])
        test_keys = {k for k in history if k.startswith("test/")}
        if res["status"] == "failed":
            assert info["exit_code"] == 1 and not history
            assert summary(log)["status"] == "failed" and "num_classes" in summary(log)["error"]
        else:  # its own metrics only: one value per condition, the summary mirrors results.json
            conditions_metrics = {f"test/{c}/{m}" for c in ("AV", "A", "V") for m in ("acc", "ce")}
            assert info["exit_code"] == 0 and test_keys == conditions_metrics
            assert history.count("test/AV/acc") == 1
            s = summary(log)
            assert s["metrics/AV/acc"] == pytest.approx(res["metrics"]["AV"]["acc"])
            assert s["test/AV/acc"]["last"] == pytest.approx(res["metrics"]["AV"]["acc"])
            assert set(s["train/loss_epoch"]) == set(s["train/loss_step"]) == {"min", "last"}
            assert set(s["train/acc"]) == {"last"}
            assert s["complexity/params"] == res["complexity"]["params"]
    # the sweep's report run: same group; the report's own table of these runs (they recorded no paper table),
    # one row per setting named by what sets it apart (num_classes=1 and =10), the failed setting's row marked
    # failed, ours alone (avsynth is not the paper's data); the robustness chart, the whole report as text
    report = the_run(sweep)
    assert run_info(report) == {"group": group, "job_type": "report", "name": f"report-{group}", "exit_code": 0}
    table = wandb_table(report, "report/own_avsynth")
    rows = [dict(zip(table["columns"], r, strict=True)) for r in table["data"]]
    assert sorted((r["row"], r["status"]) for r in rows) == [
        ("concat num_classes=1", "failed"), ("concat num_classes=10", "ok"), ("gmf num_classes=1", "failed"),
        ("gmf num_classes=10", "ok")]
    assert not any(c.endswith((" paper", " diff")) for c in table["columns"])
    for row in (r for r in rows if r["status"] == "ok"):
        fuser = row["row"].split(" ")[0]
        ours = next(r for r in jobs.values() if r["fuser"] == fuser and r["status"] == "ok")["metrics"]["AV"]["acc"]
        assert row["AV ours"] == pytest.approx(100 * ours)
    history = wandb_history(report)
    assert any("report/robustness/path" in row for row in history) and any("report/text/path" in r for r in history)
    assert any(n.startswith("4 of 4 runs recorded no paper table") for n in summary(report)["report/notes"])
    # the same sweep folder again: refused before Hydra writes into it
    before = (sweep / "0" / ".hydra" / "config.yaml").read_bytes()
    again = cli("gmf_repro", "-m", "fuser=gmf", *TINY, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    lines = [line for line in again.stderr.splitlines() if line.strip()]
    assert again.returncode == 2 and len(lines) == 1, again.stderr[-2000:]
    assert lines[0].startswith(f"error: sweep folder {sweep.resolve()} already holds an earlier sweep's results")
    assert (sweep / "0" / ".hydra" / "config.yaml").read_bytes() == before


def test_complexity_cli_json(tmp_path):
    proc = cli("gmf_repro.complexity", "fuser=gmf,concat", "dims=[512,512]", "format=json", "repeats=3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["fuser"] for r in rows] == ["gmf", "concat"]
    assert rows[0]["params"] == 5_250_048 and rows[0]["flops"] == 2 * 5_242_880
    assert rows[0]["cpu_latency_s"] > 0 and rows[1]["params"] == 0
    assert {"fuser", "params", "flops", "cpu_latency_s"} <= set(rows[0])


def test_complexity_cli_rejects_unknown_fuser(tmp_path):
    proc = cli("gmf_repro.complexity", "fuser=nope", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown fuser 'nope'" in proc.stderr
