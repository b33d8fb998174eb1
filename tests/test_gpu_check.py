"""`make gpu-check` (scripts/gpu_check.py): the no-CUDA answer CI sees, every step's command composed as a run
composes it, the verdicts against planted figures, the per-step time limit, and a CPU dry run of two steps
that goes through the same commands and parsing as on a GPU."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from gmf_repro.config import compose

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import _gpu_check_report as report  # noqa: E402
import check_gpu_wheels  # noqa: E402
import gpu_check  # noqa: E402

STEPS = {s.name: s for s in gpu_check.STEPS}


# --- without a GPU ------------------------------------------------------------------------------------------

@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_without_a_gpu_it_says_so_and_exits_0(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPTS / "gpu_check.py"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(gpu_check.NO_CUDA)
    assert not (tmp_path / "out").exists()  # nothing ran, nothing written


def test_a_gpu_this_python_cannot_use_is_an_error(monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "cuda_device", lambda: (False, "torch 2.x, CUDA build none (a CPU build)"))
    monkeypatch.setattr(gpu_check, "nvidia_smi", lambda *q: None)
    assert gpu_check.main([]) == 0
    assert capsys.readouterr().out.startswith("no CUDA device: nothing to check")
    monkeypatch.setattr(gpu_check, "nvidia_smi", lambda *q: "GPU 0: NVIDIA H200 (UUID: GPU-1)")
    assert gpu_check.main([]) == 1
    assert "nvidia-smi lists 'GPU 0: NVIDIA H200" in capsys.readouterr().err


# --- the steps' commands ------------------------------------------------------------------------------------

def composed(step: gpu_check.Step, dry_run: bool):
    name = "bench" if step.kind == "bench" else "config"
    return compose(config_name=name, overrides=gpu_check.overrides_of(step, dry_run))


def test_gpu_steps_compose_to_the_figures_asked_for():
    t16, tbf = composed(STEPS["trainable_16"], False), composed(STEPS["trainable_bf16"], False)
    for cfg, precision in ((t16, "16-mixed"), (tbf, "bf16-mixed")):
        assert cfg.experiment_name == "vggsound_trainable" and cfg.fuser._target_.endswith("GMF")
        assert cfg.data.batch_size == 64 and cfg.trainer.precision == precision and cfg.trainer.accelerator == "gpu"
    for name, fuser in (("frozen_gmf", "GMF"), ("frozen_perceiver", "Perceiver")):
        cfg = composed(STEPS[name], False)
        assert cfg.experiment_name == "vggsound_frozen" and cfg.fuser._target_.endswith(fuser)
        assert cfg.bench.clips == 147000 and cfg.trainer.accelerator == "gpu" and cfg.data.device_resident
    fake = composed(STEPS["fakeavceleb"], False)
    assert fake.experiment_name == "fakeavceleb_trainable"
    assert fake.data.num_frames == 8 and list(fake.data.frame_size) == [224, 224]
    e2e, ddp = composed(STEPS["e2e_gpu"], False), composed(STEPS["e2e_ddp"], False)
    assert e2e.trainer.accelerator == "gpu" and e2e.logger._target_ is None and e2e.labels.data == "avsynth"
    assert ddp.trainer.strategy == "ddp" and ddp.trainer.devices == 1 and ddp.trainer.accelerator == "gpu"
    assert ddp.logger._target_ is None


def test_dry_run_steps_compose_on_the_cpu_at_tiny_size():
    for step in gpu_check.STEPS:
        if step.kind == "pytest":
            continue
        cfg = composed(step, True)
        assert cfg.trainer.accelerator == "cpu" and cfg.threads == 1, step.name
        assert "fp16" not in str(cfg.trainer.precision) and cfg.trainer.precision != "16-mixed", step.name
        if step.kind == "bench":
            assert cfg.bench.clips <= 1024 and cfg.bench.steps <= 10, step.name


def test_limits_fit_the_budget_and_the_tests_step_finds_its_files():
    assert sum(s.limit_s for s in gpu_check.STEPS) <= gpu_check.BUDGET_S - 10  # room for the preflight
    files = gpu_check.cuda_test_files()
    assert "tests/test_bench.py" in files and "tests/test_determinism.py" in files
    assert "tests/test_gpu_check.py" not in files  # no test here is named for CUDA: on a GPU each would skip or rerun
    cmd = gpu_check.command(STEPS["cuda_tests"], "python", Path("/w"), False)
    assert cmd[cmd.index("-k") + 1] == "cuda" and "--junitxml=/w/cuda_tests.xml" in cmd


def test_set_and_limit_options_reach_the_command(capsys):
    assert gpu_check.main(["--list", "--only", "frozen_gmf", "--set", "frozen_gmf:bench.steps=7",
                           "--limit", "frozen_gmf=33"]) == 0
    out = capsys.readouterr().out
    assert "frozen_gmf (33 s)" in out and "bench.steps=7" in out and "bench.steps=300" not in out
    assert "e2e_gpu" not in out
    with pytest.raises(SystemExit, match="no step 'nope'"):
        gpu_check.main(["--list", "--only", "nope"])
    with pytest.raises(SystemExit, match="STEP:KEY=VALUE"):
        gpu_check.main(["--list", "--set", "cuda_tests:k=x"])


def test_budget_gives_each_step_what_is_left():
    assert gpu_check.step_limit(60, deadline=130.0, now=100.0) == 30.0
    assert gpu_check.step_limit(20, deadline=130.0, now=100.0) == 20.0
    assert gpu_check.step_limit(60, deadline=105.0, now=100.0) is None


def test_a_missing_module_names_its_wheel():
    assert gpu_check.missing_package("ModuleNotFoundError: No module named 'hydra'") == "hydra-core"
    assert gpu_check.missing_package("No module named 'antlr4.error'") == "antlr4-python3-runtime"
    assert gpu_check.missing_package("RuntimeError: CUDA error") is None
    wheels = {line.split("==")[0].lower() for line in (SCRIPTS / "gpu_wheels.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    for module, dist in gpu_check.MODULES.items():  # every module the preflight imports has a source
        assert dist.lower() in wheels | check_gpu_wheels.PREINSTALLED, module


# --- running a step with a time limit -----------------------------------------------------------------------

def test_a_step_past_its_limit_is_ended_with_its_children(tmp_path):
    pid_file = tmp_path / "child.pid"
    code = ("import subprocess, sys, time; "
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
            f"open({str(pid_file)!r}, 'w').write(str(c.pid)); time.sleep(120)")
    start = time.monotonic()
    status, rc = gpu_check.run_limited([sys.executable, "-c", code], 3, tmp_path / "out", tmp_path, dict(os.environ))
    assert (status, rc) == ("timeout", None) and time.monotonic() - start < 60
    child = int(pid_file.read_text())
    for _ in range(50):  # the orphan is reaped by init once killed
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the step's child process survived its time limit")
    assert gpu_check.run_limited([sys.executable, "-c", "print('x'); raise SystemExit(3)"], 60, tmp_path / "o2",
                                 tmp_path, dict(os.environ)) == ("failed", 3)
    assert gpu_check.run_limited([sys.executable, "-c", "pass"], 60, tmp_path / "o3", tmp_path,
                                 dict(os.environ)) == ("ok", 0)
    assert gpu_check.last_error("x\nTraceback\nValueError: bad size\nwrapped up") == "ValueError: bad size"


# --- figures and verdicts -----------------------------------------------------------------------------------

def bench_json(mfu=0.45, wait=0.5e-3, ratio=0.95, run_hours=1.5 / 60, experiment="vggsound_trainable",
               table="2 trainable", device="cuda") -> dict:
    """bench's JSON as gmf_repro/bench.py writes it, with the figures planted."""
    step = 0.060
    return {"experiment": experiment, "fuser": "gmf", "precision": "16-mixed", "device": device,
            "device_name": "NVIDIA H200", "plain": {
                "clips_per_s": 64 / step, "step_s": step, "data_wait_s": wait, "h2d_s": 1e-3,
                "compute_s": step - wait - 1e-3, "clips_per_step": 64.0, "flops_per_step": 1.7e13,
                "final_loss": 5.7},
            "lightning": {"clips_per_s": ratio * 64 / step, "step_s": step / ratio, "final_loss": 5.7,
                          "ratio_to_plain": ratio},
            "peak_memory_gib": 21.3, "flops_per_step": 1.7e13, "achieved_tflops": (mfu or 0.02) * 989,
            "peak_tflops": 989.0, "mfu": mfu,
            "projections": [{"table": table, "experiment": experiment, "train_clips": 147000, "epochs": 20, "runs": 10,
                             "hours": 10 * run_hours, "hours_per_run": run_hours}]}


def record(good: bool) -> dict:
    """A check's record whose every target is met (good) or missed."""
    def bench_step(name, **kw):
        table = gpu_check.STEPS[[s.name for s in gpu_check.STEPS].index(name)].table
        return {"title": name, "kind": "bench", "status": "ok",
                "figures": report.bench_figures(bench_json(table=table, **kw), table)}

    tests = {"passed": 7, "failed": 0 if good else 1, "errors": 0, "skipped": 0, "failing": [] if good else ["t.x"]}
    run = {"status": "ok", "av_acc": 0.7 if good else 0.1, "fit_s": 10.0, "backend": "nccl" if good else "gloo"}
    return {"dry_run": False, "steps": {
        "cuda_tests": {"title": "CUDA tests", "kind": "pytest", "status": "ok", "figures": tests},
        "trainable_16": bench_step("trainable_16", mfu=0.45 if good else 0.30, wait=0.5e-3 if good else 6e-3,
                                   ratio=0.95 if good else 0.85),
        "frozen_gmf": bench_step("frozen_gmf", run_hours=(1.5 if good else 2.5) / 60, ratio=0.92 if good else 0.8,
                                 experiment="vggsound_frozen"),
        "e2e_gpu": {"title": "e2e", "kind": "run", "status": "ok", "figures": {**run, "backend": None}},
        "e2e_ddp": {"title": "ddp", "kind": "run", "status": "ok", "figures": run},
    }}


def test_every_target_met_and_every_target_missed():
    good, bad = report.summary_rows(record(True)), report.summary_rows(record(False))
    targets = [r for r in good if r.target != report.NONE]
    assert len(targets) == 8  # tests, MFU, data wait, Lightning x2, frozen run time, two end-to-end runs
    assert all(r.met == "yes" for r in targets) and report.all_met(good)
    assert all(r.met == "no" for r in bad if r.target != report.NONE) and not report.all_met(bad)
    by_figure = {r.figure: r for r in good}
    mfu = next(r for f, r in by_figure.items() if f.endswith(": MFU"))
    assert mfu.measured.startswith("45.0%") and mfu.target == ">= 40%"
    frozen = next(r for f, r in by_figure.items() if "20-epoch run of 147,000 clips" in f)
    assert frozen.measured == "90.0 s" and frozen.target == "< 2.0 min"


def test_a_failed_step_misses_its_targets_and_markdown_escapes():
    rec = record(True)
    rec["steps"]["trainable_16"] = {"title": "VGGSound trainable, 16-mixed", "kind": "bench", "status": "timeout",
                                    "error": "timeout: ended at its 65 s limit"}
    rows = report.summary_rows(rec)
    missed = [r for r in rows if r.met == "no"]
    assert [r.figure for r in missed] == ["VGGSound trainable, 16-mixed", "VGGSound trainable, 16-mixed: mfu",
                                          "VGGSound trainable, 16-mixed: data wait",
                                          "VGGSound trainable, 16-mixed: lightning"]
    md = report.markdown_table([report.Row("a | b", "—", "x", "yes")])
    assert md.splitlines()[0] == "| figure | target | measured | met |" and "a \\| b" in md


def test_cpu_figures_are_not_applicable_not_missed():
    f = report.bench_figures({**bench_json(mfu=None, device="cpu"), "peak_tflops": None, "peak_memory_gib": None})
    row = report.mfu_row("t", f)
    assert row.met == "n/a" and row.measured == "n/a (CPU)"
    with pytest.raises(ValueError, match="no run of table '2 frozen'"):
        report.bench_figures(bench_json(), "2 frozen")


def test_junit_and_ddp_backend_are_read(tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text('<testsuites><testsuite tests="4" failures="1" errors="0" skipped="1">'
                   '<testcase classname="tests.test_bench" name="test_cuda_a"/>'
                   '<testcase classname="tests.test_bench" name="test_cuda_b"><failure message="x"/></testcase>'
                   '<testcase classname="tests.test_x" name="test_cuda_c"><skipped/></testcase>'
                   '<testcase classname="tests.test_x" name="test_cuda_d"/></testsuite></testsuites>')
    assert report.pytest_figures(xml) == {"passed": 2, "failed": 1, "errors": 0, "skipped": 1,
                                          "failing": ["tests.test_bench.test_cuda_b"]}
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"status": "ok", "metrics": {"AV": {"acc": 0.75}}, "timings": {"fit_s": 3.0}}))
    out = "Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/1\n----\ndistributed_backend=nccl\nAll distributed"
    f = report.run_figures(results, out)
    assert (f["status"], f["av_acc"], f["backend"]) == ("ok", 0.75, "nccl")
    assert report.e2e_row("ddp", f, "nccl").met == "yes" and report.e2e_row("ddp", f, "gloo").met == "no"


# --- the wheels for a machine with only torch ---------------------------------------------------------------

def wheel(folder: Path, name: str, version: str, tag: str = "py3-none-any", requires: tuple[str, ...] = ()) -> None:
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(folder / f"{name}-{version}-{tag}.whl", "w") as z:
        z.writestr(f"{name}-{version}.dist-info/METADATA", meta)


def test_wheel_check_finds_what_is_missing(tmp_path):
    wheel(tmp_path, "alpha", "1.0", requires=("beta>=2", "numpy>=1.26", "winonly; sys_platform == 'win32'",
                                              "extra_dep; extra == 'doc'"))
    wheel(tmp_path, "beta", "2.1", tag="cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64")
    problems, left, sizes = check_gpu_wheels.check(tmp_path, "3.12")
    assert problems == [] and left == ["numpy>=1.26 (for alpha)"] and len(sizes) == 2
    problems, *_ = check_gpu_wheels.check(tmp_path, "3.11")  # beta is built for 3.12 only
    assert problems == ["beta-2.1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl does not install on "
                        "CPython 3.11 for Linux x86-64"]
    (tmp_path / "beta-2.1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl").unlink()
    wheel(tmp_path, "beta", "1.0", tag="cp311-abi3-manylinux_2_34_x86_64")
    wheel(tmp_path, "gamma", "1.0", requires=("delta",))
    problems, *_ = check_gpu_wheels.check(tmp_path, "3.12")
    assert problems == ["beta-1.0-cp311-abi3-manylinux_2_34_x86_64.whl does not install on CPython 3.12 for Linux "
                        "x86-64", "alpha needs beta>=2, the folder has beta 1.0",
                        "gamma needs delta: neither in the folder nor installed with torch or Lightning"]


# --- the dry run --------------------------------------------------------------------------------------------

def test_dry_run_on_the_cpu_writes_json_log_and_summary(tmp_path, capsys):
    """Two steps of the real check (a bench and an end-to-end run) at tiny size, through the same commands
    and parsing as on a GPU; then the summary again from the JSON, as Markdown."""
    out = tmp_path / "check"
    proc = subprocess.run([sys.executable, str(SCRIPTS / "gpu_check.py"), "--dry-run-cpu", "--out", str(out),
                           "--only", "frozen_gmf,e2e_gpu", "--set", "frozen_gmf:bench.clips=512"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rec = json.loads((out / "gpu_check.json").read_text())
    assert rec["dry_run"] and list(rec["steps"]) == ["frozen_gmf", "e2e_gpu"]
    assert all(s["status"] == "ok" for s in rec["steps"].values())
    frozen, e2e = rec["steps"]["frozen_gmf"]["figures"], rec["steps"]["e2e_gpu"]["figures"]
    assert frozen["experiment"] == "vggsound_frozen" and frozen["fuser"] == "gmf" and frozen["batch"] == 64
    assert frozen["run_epochs"] == 20 and frozen["run_clips"] == 147000
    assert frozen["run_s"] == pytest.approx(147000 * 20 / frozen["clips_per_s"])
    assert frozen["final_loss_plain"] == frozen["final_loss_lightning"]  # same steps from the same weights
    assert frozen["raw"]["source"].startswith("generated") and frozen["mfu"] is None
    assert e2e["status"] == "ok" and e2e["av_acc"] > report.E2E_ACC_MIN
    assert rec["environment"]["gmf_repro"].startswith(str(SCRIPTS.parent))  # this checkout's code
    log = (out / "gpu_check.log").read_text()
    assert "gmf_repro.bench experiment=vggsound_frozen" in log and "trainer=cpu" in log
    assert "== e2e_gpu: ok" in log
    assert "figure" in proc.stdout and "20-epoch run of 147,000 clips" in proc.stdout
    assert [r["figure"] for r in rec["summary"]] == [r.figure for r in report.summary_rows(rec)]
    assert gpu_check.main(["--summary", str(out / "gpu_check.json"), "--markdown"]) == 0
    md = capsys.readouterr().out
    assert "| figure | target | measured | met |" in md and "| status ok, AV acc > 0.3 |" in md
