"""`make gpu-check`: every GPU figure the project promises, measured in one command (docs/gpu.md).

    python scripts/gpu_check.py                      # on a CUDA machine: at most 8 minutes
    python scripts/gpu_check.py --markdown           # the summary as a Markdown table, ready to paste
    python scripts/gpu_check.py --dry-run-cpu        # every step on the CPU at tiny sizes (the same commands)
    python scripts/gpu_check.py --list               # the steps and their command lines, nothing run
    python scripts/gpu_check.py --summary outputs/gpu_check/<date>/gpu_check.json --markdown

Each step is a subprocess with a time limit of its own (its whole process group is ended at the limit), all
within one wall-time budget: the CUDA tests (``pytest -k cuda``); ``python -m gmf_repro.bench`` for trainable
VGGSound GMF at batch 64 in 16-mixed (the paper's O1) and bf16-mixed, frozen GMF and frozen Perceiver on
VGGSound-size features (147,000 clips; the time of a 20-epoch run), and FakeAVCeleb trainable (8 frames of
224 x 224); one end-to-end ``python -m gmf_repro trainer=gpu`` run on the embedded data, and the same through
``trainer=ddp trainer.devices=1`` (NCCL). Figures come from each step's machine-readable output (bench.out,
results.json, JUnit XML). It writes gpu_check.json and gpu_check.log into the folder it names, prints the
summary table (figure, target, measured, met) and exits 1 if a step failed or a target was missed.

Without a CUDA device it prints "no CUDA device: nothing to check" and exits 0. Nothing is installed or
downloaded: the project's dependencies must be importable (docs/gpu.md: a machine with only torch).
This file and _gpu_check_report.py use the standard library only; torch is imported to look for the GPU.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _gpu_check_report import (  # noqa: E402
    all_met,
    bench_figures,
    header,
    markdown_table,
    plain_table,
    pytest_figures,
    run_figures,
    summary_rows,
)

ROOT = Path(__file__).resolve().parents[1]
NO_CUDA = "no CUDA device: nothing to check"
BUDGET_S = 480  # 8 minutes, all steps together
DRY_RUN_BUDGET_S = 2400  # the CPU is slower, and shared
DRY_RUN_LIMIT_S = 400
MIN_STEP_S = 10  # a step with less time left than this is not started
# what the steps import, and the wheel that brings each (scripts/gpu_wheels.txt)
MODULES = {"hydra": "hydra-core", "omegaconf": "omegaconf", "antlr4": "antlr4-python3-runtime", "av": "av",
           "scipy": "scipy", "rich": "rich", "pytest": "pytest", "yaml": "PyYAML",
           "pytorch_lightning": "pytorch-lightning", "torchmetrics": "torchmetrics", "torchvision": "torchvision",
           "torchaudio": "torchaudio", "numpy": "numpy"}

# Hydra overrides shared by the steps; the CPU dry run replaces the sizes (same code paths, tiny data).
# Media benches generate more clips than they time (2048 = 32 batches of 64, 1.7 GB): the loader's persistent
# workers pause at each epoch's end, which a real epoch (2,300 batches) amortises and 8 generated batches would not.
TRAINABLE = {"fuser": "gmf", "trainer": "gpu", "data.batch_size": "64", "bench.clips": "2048", "bench.warmup": "5",
             "bench.split_steps": "15", "bench.steps": "40", "bench.test_batches": "0"}
TINY_MEDIA = {"trainer": "cpu", "threads": "1", "preset": "tiny", "data.batch_size": "4", "data.num_workers": "0",
              "data.num_frames": "2", "bench.clips": "16", "bench.warmup": "1", "bench.split_steps": "1",
              "bench.steps": "2"}
FROZEN = {"experiment": "vggsound_frozen", "trainer": "gpu", "bench.clips": "147000", "bench.warmup": "20",
          "bench.split_steps": "20", "bench.steps": "300", "bench.test_batches": "0"}
TINY_FROZEN = {"trainer": "cpu", "threads": "1", "bench.clips": "1024", "bench.warmup": "2", "bench.split_steps": "2",
               "bench.steps": "10"}
E2E = {"logger": "none", "progress": "none", "print_config": "false", "trainer.max_epochs": "5",
       "eval.latency_repeats": "5"}
TINY_E2E = {"threads": "1", "trainer.max_epochs": "1", "data.n_train": "1000", "data.n_test": "500",
            "eval.latency_repeats": "3"}


@dataclass
class Step:
    name: str
    kind: str  # pytest | bench | run
    title: str
    overrides: dict[str, str] = field(default_factory=dict)  # Hydra overrides on a GPU
    cpu: dict[str, str | None] = field(default_factory=dict)  # replaced or added by --dry-run-cpu (None: dropped)
    limit_s: int = 60
    table: str | None = None  # bench: the projection row that gives the time of one run


STEPS = [
    Step("cuda_tests", "pytest", "CUDA tests (pytest -k cuda)", limit_s=100),
    Step("trainable_16", "bench", "VGGSound trainable, 16-mixed",
         {"experiment": "vggsound_trainable", **TRAINABLE, "trainer.precision": "16-mixed"},
         # Lightning has no fp16 autocast on the CPU (it switches to bf16): 32-true there
         {**TINY_MEDIA, "trainer.precision": "32-true"}, limit_s=75, table="2 trainable"),
    Step("trainable_bf16", "bench", "VGGSound trainable, bf16-mixed",
         {"experiment": "vggsound_trainable", **TRAINABLE, "trainer.precision": "bf16-mixed", "bench.steps": "30"},
         TINY_MEDIA, limit_s=60, table="2 trainable"),
    Step("frozen_gmf", "bench", "Frozen GMF at VGGSound size", {**FROZEN, "fuser": "gmf"}, TINY_FROZEN,
         limit_s=50, table="2 frozen"),
    Step("frozen_perceiver", "bench", "Frozen Perceiver at VGGSound size",
         {**FROZEN, "fuser": "perceiver", "bench.warmup": "10", "bench.split_steps": "10", "bench.steps": "100"},
         {**TINY_FROZEN, "fuser.depth": "1", "fuser.num_latents": "16", "data.batch_size": "16", "bench.steps": "3",
          "bench.warmup": "1", "bench.split_steps": "1", "bench.clips": "256"},
         limit_s=45, table="2 frozen"),
    Step("fakeavceleb", "bench", "FakeAVCeleb trainable, 8 x 224 x 224",
         {"experiment": "fakeavceleb_trainable", "fuser": "gmf", "trainer": "gpu", "bench.clips": "768",
          "bench.warmup": "5", "bench.split_steps": "10", "bench.steps": "30", "bench.test_batches": "0"},
         {**TINY_MEDIA, "trainer.precision": "32-true"}, limit_s=45, table="4"),
    Step("e2e_gpu", "run", "python -m gmf_repro trainer=gpu (embedded data)", {"trainer": "gpu", **E2E},
         {**TINY_E2E, "trainer": "cpu"}, limit_s=45),
    Step("e2e_ddp", "run", "python -m gmf_repro trainer=ddp trainer.devices=1 (NCCL)",
         {"trainer": "ddp", "trainer.devices": "1", **E2E},
         {**TINY_E2E, "trainer.accelerator": "cpu", "trainer.precision": "32-true", "trainer.sync_batchnorm": "false"},
         limit_s=45),
]


def cuda_test_files() -> list[str]:
    """The test files that hold a test with 'cuda' in its name (what ``-k cuda`` selects), relative to the root."""
    pattern = re.compile(r"^\s*def test_\w*cuda", re.M)
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py") if pattern.search(p.read_text()))


def overrides_of(step: Step, dry_run: bool, extra: dict[str, str] | None = None) -> list[str]:
    ov: dict[str, str | None] = {**step.overrides, **(step.cpu if dry_run else {}), **(extra or {})}
    return [f"{k}={v}" for k, v in ov.items() if v is not None]


def command(step: Step, python: str, work: Path, dry_run: bool, extra: dict[str, str] | None = None) -> list[str]:
    """The step's command line; its output files go to ``work``."""
    if step.kind == "pytest":
        files = cuda_test_files()
        if not files:  # pytest with no file would run the whole suite
            raise SystemExit("error: no test file under tests/ has a test with 'cuda' in its name")
        return [python, "-m", "pytest", "-p", "no:cacheprovider", *files, "-k", "cuda",
                f"--junitxml={work / step.name}.xml", f"--basetemp={work / step.name}_tmp"]
    if step.kind == "bench":
        return [python, "-m", "gmf_repro.bench", *overrides_of(step, dry_run, extra),
                f"bench.out={work / step.name}.json", f"bench.work_dir={work}"]
    return [python, "-m", "gmf_repro", *overrides_of(step, dry_run, extra), f"hydra.run.dir={work / step.name}"]


def figures(step: Step, work: Path, output: str) -> dict[str, Any]:
    """The step's figures from its machine-readable output; a bench's whole JSON goes along as ``raw``."""
    if step.kind == "pytest":
        return pytest_figures(work / f"{step.name}.xml")
    if step.kind == "bench":
        raw = json.loads((work / f"{step.name}.json").read_text())
        return {**bench_figures(raw, step.table), "raw": raw}
    return run_figures(work / step.name / "results.json", output)


# --- running a step with a time limit ---------------------------------------------------------------------------

def end_group(proc: subprocess.Popen) -> None:
    """End the step's whole process group (loader workers, DDP processes): TERM, then KILL after 5 s."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:  # the leader is gone; its workers may not be
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return


def run_limited(cmd: list[str], limit_s: float, output: Path, cwd: Path, env: dict[str, str]) -> tuple[str, int | None]:
    """Run ``cmd`` with stdout and stderr into ``output``; ("ok" | "failed" | "timeout", exit status)."""
    with open(output, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd, env=env,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            end_group(proc)
            return "timeout", None
        except BaseException:
            end_group(proc)
            raise
        end_group(proc)  # strays of a finished step
    return ("ok" if rc == 0 else "failed"), rc


def last_error(text: str) -> str:
    """The line that says what went wrong: the last error/exception line, else the last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("error:") or re.match(r"^[\w.]*(Error|Exception)\b", line) or " FAILED " in f" {line} ":
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def step_limit(limit_s: float, deadline: float, now: float) -> float | None:
    """The step's time limit within the budget; None when too little is left to start it."""
    left = deadline - now
    return None if left < MIN_STEP_S else min(float(limit_s), left)


# --- the environment ----------------------------------------------------------------------------------------

def cuda_device() -> tuple[bool, str]:
    """Whether torch sees a CUDA device, and its name or why not."""
    try:
        import torch
    except ImportError as err:
        return False, f"{sys.executable} cannot import torch: {err}"
    if torch.cuda.is_available():
        return True, torch.cuda.get_device_name(0)
    return False, f"torch {torch.__version__}, CUDA build {torch.version.cuda or 'none (a CPU build)'}, sees no GPU"


def nvidia_smi(*query: str) -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, *query], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


PREFLIGHT = """
import json, platform, sys
import torch, torchvision, torchaudio, pytorch_lightning, torchmetrics, numpy, yaml
import hydra, omegaconf, antlr4, av, scipy, rich, pytest
import gmf_repro.bench, gmf_repro.run
print(json.dumps({
    "python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
    "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    "torchvision": torchvision.__version__, "torchaudio": torchaudio.__version__,
    "pytorch_lightning": pytorch_lightning.__version__, "torchmetrics": torchmetrics.__version__,
    "hydra": hydra.__version__, "omegaconf": omegaconf.__version__, "av": av.__version__, "numpy": numpy.__version__,
    "gmf_repro": gmf_repro.__file__,
    "device_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    "capability": ".".join(map(str, torch.cuda.get_device_capability(0))) if torch.cuda.is_available() else None,
    "gpu_count": torch.cuda.device_count(), "cpu_count": __import__("os").cpu_count()}))
"""


def missing_package(text: str) -> str | None:
    """The wheel to bring for the first module the preflight could not import."""
    found = re.search(r"No module named '([\w.]+)'", text)
    if not found:
        return None
    top = found.group(1).split(".")[0]
    return MODULES.get(top, top)


def commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


# --- the check ------------------------------------------------------------------------------------------------

def step_env() -> dict[str, str]:
    """This checkout's code first on the path; full tracebacks; unbuffered output; no W&B; no pytest plugins of
    the machine's own (a carried pytest may not match them, and the tests need none)."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else ""), "PYTHONUNBUFFERED": "1",
            "GMF_DEBUG": "1", "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def parse_pairs(items: list[str], sep: str, what: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        if sep not in item:
            raise SystemExit(f"error: {what} takes {item!r}; write it as {what.split()[0]} STEP{sep}...")
        pairs.append(tuple(item.split(sep, 1)))
    return pairs


def select(args: argparse.Namespace) -> list[Step]:
    names = [s.name for s in STEPS]
    only = [n for n in (args.only or "").split(",") if n]
    skip = [n for n in (args.skip or "").split(",") if n]
    for n in only + skip:
        if n not in names:
            raise SystemExit(f"error: no step {n!r}; the steps are {', '.join(names)}")
    return [s for s in STEPS if (not only or s.name in only) and s.name not in skip]


def step_options(args: argparse.Namespace, steps: list[Step]) -> tuple[dict[str, dict[str, str]], dict[str, float]]:
    """--set STEP:KEY=VALUE and --limit STEP=SECONDS, checked against the steps."""
    by_name = {s.name: s for s in STEPS}
    extra: dict[str, dict[str, str]] = {}
    for name, kv in parse_pairs(args.set or [], ":", "--set STEP:KEY=VALUE"):
        if name not in by_name or by_name[name].kind == "pytest" or "=" not in kv:
            raise SystemExit(f"error: --set {name}:{kv}: give STEP:KEY=VALUE for a bench or run step "
                             f"({', '.join(s.name for s in STEPS if s.kind != 'pytest')})")
        key, value = kv.split("=", 1)
        extra.setdefault(name, {})[key] = value
    limits: dict[str, float] = {}
    for name, seconds in parse_pairs(args.limit or [], "=", "--limit STEP=SECONDS"):
        if name not in by_name:
            raise SystemExit(f"error: --limit {name}={seconds}: no step {name!r}")
        limits[name] = float(seconds)
    return extra, limits


def out_folder(args: argparse.Namespace) -> Path:
    if args.out:
        return Path(args.out)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return ROOT / "outputs" / "gpu_check" / (stamp + ("_cpu_dry_run" if args.dry_run_cpu else ""))


def print_summary(record: dict[str, Any], markdown: bool) -> bool:
    rows = summary_rows(record)
    print(header(record))
    print(markdown_table(rows) if markdown else plain_table(rows))
    return all_met(rows)


def preflight(python: str, env: dict[str, str], work: Path, limit_s: float, log) -> tuple[dict | None, str]:
    """Every dependency importable (else the wheel to bring), and the versions for the record."""
    out = work / "preflight.out"
    status, _ = run_limited([python, "-c", PREFLIGHT], limit_s, out, ROOT, env)
    text = out.read_text(errors="replace")
    log.write(f"== preflight ({python}): {status}\n{text}\n")
    if status != "ok":
        wheel = missing_package(text)
        if wheel:
            return None, (f"this Python lacks {wheel} ({last_error(text)}): bring the wheels of "
                          f"scripts/gpu_wheels.txt (docs/gpu.md, 'A machine with only torch')")
        return None, f"preflight {status}: {last_error(text)}"
    driver = nvidia_smi("--query-gpu=driver_version", "--format=csv,noheader")
    return {**json.loads(text.strip().splitlines()[-1]), "commit": commit(), "driver": driver, "executable": python}, ""


def run_step(step: Step, cmd: list[str], limit: float, work: Path, env: dict[str, str], log) -> dict[str, Any]:
    """One step, its output into the log; its record: status (ok | failed | timeout), wall time, figures or error."""
    start = time.monotonic()
    out = work / f"{step.name}.out"
    status, rc = run_limited(cmd, limit, out, ROOT, env)
    entry: dict[str, Any] = {"wall_s": round(time.monotonic() - start, 1), "returncode": rc}
    text = out.read_text(errors="replace")
    log.write(text)
    if status == "ok":
        try:
            entry["figures"] = figures(step, work, text)
        except (OSError, ValueError, KeyError, TypeError) as err:
            status, entry["error"] = "failed", f"unreadable output: {type(err).__name__}: {err}"
    elif status == "timeout":
        entry["error"] = f"timeout: ended at its {limit:.0f} s limit"
    else:
        entry["error"] = f"exit {rc}: {last_error(text)}"
    entry["status"] = status
    log.write(f"\n== {step.name}: {status} in {entry['wall_s']} s\n")
    log.flush()
    return entry


def check(args: argparse.Namespace) -> int:
    """Run the steps within the budget; write gpu_check.json and gpu_check.log; print the summary."""
    t0 = time.monotonic()
    dry = args.dry_run_cpu
    budget = args.budget or (DRY_RUN_BUDGET_S if dry else BUDGET_S)
    deadline = t0 + budget
    steps = select(args)
    extra, limits = step_options(args, steps)
    folder = out_folder(args)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, log_path = folder / "gpu_check.json", folder / "gpu_check.log"
    env, python = step_env(), args.python or sys.executable
    record: dict[str, Any] = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "dry_run": dry,
                              "budget_s": budget, "folder": str(folder), "steps": {}}
    print(f"gpu-check: {len(steps)} steps within {budget:.0f} s; writing {json_path} and {log_path}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="gmf_gpu_check_"))
    try:
        with open(log_path, "w") as log:
            record["environment"], why = preflight(python, env, work, min(120.0, budget), log)
            if record["environment"] is None:
                record.update(error=why, wall_s=round(time.monotonic() - t0, 1))
                json_path.write_text(json.dumps(record, indent=1))
                print(f"error: {why}", file=sys.stderr)
                return 1
            for i, step in enumerate(steps, 1):
                cmd = command(step, python, work, dry, extra.get(step.name))
                default = DRY_RUN_LIMIT_S if dry else step.limit_s
                limit = step_limit(limits.get(step.name, default), deadline, time.monotonic())
                log.write(f"\n== {step.name}: {shlex.join(cmd)}\n== limit {limit} s\n")
                entry = {"title": step.title, "kind": step.kind, "command": shlex.join(cmd), "limit_s": limit}
                if limit is None:
                    entry.update(status="not run", error=f"not run: the {budget:.0f} s budget was spent")
                    print(f"[{i}/{len(steps)}] {step.name}: not run (budget spent)", flush=True)
                else:
                    print(f"[{i}/{len(steps)}] {step.name} (at most {limit:.0f} s) ...", end=" ", flush=True)
                    entry.update(run_step(step, cmd, limit, work, env, log))
                    print(f"{entry['status']} ({entry['wall_s']:.0f} s)" +
                          (f": {entry['error']}" if entry["status"] != "ok" else ""), flush=True)
                record["steps"][step.name] = entry
            record["wall_s"] = round(time.monotonic() - t0, 1)
            rows = summary_rows(record)
            record.update(summary=[vars(r) for r in rows], all_met=all_met(rows))
            json_path.write_text(json.dumps(record, indent=1))
            log.write("\n" + header(record) + "\n" + plain_table(rows) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    met = print_summary(record, args.markdown)
    print(f"results: {json_path}\nlog:     {log_path}")
    ran = all(s["status"] == "ok" for s in record["steps"].values())
    return 0 if ran and (met or dry) else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="folder for gpu_check.json and gpu_check.log (default outputs/gpu_check/<date>)")
    p.add_argument("--budget", type=float, help=f"wall-time budget of all steps in seconds (default {BUDGET_S}; "
                                                f"{DRY_RUN_BUDGET_S} with --dry-run-cpu)")
    p.add_argument("--only", help="comma-separated steps to run (default: all; see --list)")
    p.add_argument("--skip", help="comma-separated steps to leave out")
    p.add_argument("--set", action="append", metavar="STEP:KEY=VALUE",
                   help="change one Hydra override of a step, e.g. frozen_gmf:bench.steps=100 (repeatable)")
    p.add_argument("--limit", action="append", metavar="STEP=SECONDS", help="a step's own time limit (repeatable)")
    p.add_argument("--dry-run-cpu", action="store_true",
                   help="run every step on the CPU at tiny sizes: proves the commands and the parsing, no GPU needed")
    p.add_argument("--markdown", action="store_true", help="print the summary as a Markdown table")
    p.add_argument("--summary", metavar="JSON", help="print the summary of an earlier check's gpu_check.json and exit")
    p.add_argument("--list", action="store_true", help="print the steps and their command lines and exit")
    p.add_argument("--python", help="the Python the steps run with (default: this one)")
    args = p.parse_args(argv)
    if args.summary:
        print_summary(json.loads(Path(args.summary).read_text()), args.markdown)
        return 0
    if args.list:
        work = Path(tempfile.gettempdir()) / "gmf_gpu_check_XXXX"
        extra, limits = step_options(args, select(args))
        for s in select(args):
            limit = limits.get(s.name, DRY_RUN_LIMIT_S if args.dry_run_cpu else s.limit_s)
            print(f"{s.name} ({limit:.0f} s): {s.title}\n  "
                  f"{shlex.join(command(s, 'python', work, args.dry_run_cpu, extra.get(s.name)))}")
        return 0
    if not args.dry_run_cpu:
        found, what = cuda_device()
        if not found:
            gpus = nvidia_smi("-L")
            if gpus:  # a GPU is there, but this Python cannot use it
                print(f"error: nvidia-smi lists {gpus.splitlines()[0]!r} but {what}: run the check with a Python "
                      f"whose torch is a CUDA build (make gpu-check GPU_PY=...)", file=sys.stderr)
                return 1
            print(f"{NO_CUDA} ({what})")
            return 0
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
