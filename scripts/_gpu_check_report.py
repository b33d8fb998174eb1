"""The figures of `make gpu-check` (scripts/gpu_check.py): read from each step's machine-readable output
(bench's ``bench.out`` JSON, a run's results.json, pytest's JUnit XML), judged against the targets for an
H100/H200-class card, and laid out as one table (figure, target, measured, met), plain or Markdown.

Standard library only: it runs before anything shows that the project's dependencies are there.
"""
from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The targets (H100/H200 class, docs/gpu.md): trainable VGGSound at 16-mixed, frozen features at VGGSound size,
# Lightning against the plain loop on both paths, and the end-to-end runs.
MFU_MIN = 0.40
DATA_WAIT_MAX = 0.05
LIGHTNING_MIN = 0.90
FROZEN_RUN_MAX_S = 120.0
E2E_ACC_MIN = 0.3  # the embedded data has 10 classes: chance is 0.1

YES, NO, NONE, NA = "yes", "no", "—", "n/a"


@dataclass
class Row:
    figure: str
    target: str
    measured: str
    met: str  # yes | no | — (no target) | n/a (the figure cannot be measured here)


# --- reading each step's output -----------------------------------------------------------------------------

def pytest_figures(junit_xml: Path) -> dict[str, Any]:
    """Counts of pytest's JUnit report, and the names of the tests that failed."""
    root = ET.parse(junit_xml).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    failing = [f"{c.get('classname', '')}.{c.get('name', '')}" for s in suites for c in s.iter("testcase")
               if c.find("failure") is not None or c.find("error") is not None]
    return {"passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
            "failed": counts["failures"], "errors": counts["errors"], "skipped": counts["skipped"],
            "failing": failing}


def bench_figures(r: dict[str, Any], table: str | None = None) -> dict[str, Any]:
    """The figures of one ``python -m gmf_repro.bench`` JSON; ``table``: its projection row (e.g. ``2 frozen``)
    gives the wall time of one run of that table (epochs x train clips at the measured rate)."""
    p, lt = r["plain"], r.get("lightning") or {}
    split = p["data_wait_s"] + p["h2d_s"] + p["compute_s"]
    f = {
        "experiment": r["experiment"], "fuser": r["fuser"], "precision": str(r["precision"]),
        "batch": int(round(p["clips_per_step"])), "device": r["device"], "device_name": r["device_name"],
        "clips_per_s": lt.get("clips_per_s", p["clips_per_s"]), "plain_clips_per_s": p["clips_per_s"],
        "lightning_ratio": lt.get("ratio_to_plain"), "step_ms": 1e3 * p["step_s"],
        "data_wait_ms": 1e3 * p["data_wait_s"], "h2d_ms": 1e3 * p["h2d_s"], "compute_ms": 1e3 * p["compute_s"],
        "data_wait_share": p["data_wait_s"] / split if split > 0 else None,
        "peak_memory_gib": r["peak_memory_gib"], "gflop_per_step": r["flops_per_step"] / 1e9,
        "achieved_tflops": r["achieved_tflops"], "peak_tflops": r["peak_tflops"], "mfu": r["mfu"],
        "final_loss_plain": p["final_loss"], "final_loss_lightning": lt.get("final_loss"),
    }
    if table is not None:
        rows = [row for row in r["projections"] if str(row["table"]) == table]
        if not rows or rows[0]["hours_per_run"] is None:
            raise ValueError(f"bench projected no run of table {table!r} for experiment={r['experiment']}")
        row = rows[0]
        f.update(run_s=row["hours_per_run"] * 3600, run_epochs=int(row["epochs"]), run_clips=int(row["train_clips"]))
    return f


BACKEND = re.compile(r"distributed_backend=(\w+)")


def run_figures(results_json: Path, output: str) -> dict[str, Any]:
    """A run's results.json (status, AV accuracy, fit time, versions) and, for DDP, the process group's backend
    as Lightning announces it (``distributed_backend=nccl``; no file records it)."""
    r = json.loads(Path(results_json).read_text())
    backend = BACKEND.findall(output)
    return {"status": r.get("status"), "av_acc": (r.get("metrics") or {}).get("AV", {}).get("acc"),
            "fit_s": (r.get("timings") or {}).get("fit_s"), "versions": r.get("versions"),
            "backend": backend[-1] if backend else None}


# --- the table ----------------------------------------------------------------------------------------------

def fmt_s(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "n/a"
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def fmt_loss(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}" if math.isfinite(x) else f"{x} (not finite)"


def verdict(ok: bool | None) -> str:
    return NA if ok is None else YES if ok else NO


def bench_title(f: dict[str, Any]) -> str:
    return f"bench {f['experiment']} fuser={f['fuser']}, batch {f['batch']}, {f['precision']}"


def speed_row(title: str, f: dict[str, Any]) -> Row:
    """Every figure of one bench, for the record (no target)."""
    parts = []
    if "run_s" in f:
        parts.append(f"{f['run_epochs']}-epoch run of {f['run_clips']:,} clips: {fmt_s(f['run_s'])}")
    ratio = "n/a" if f["lightning_ratio"] is None else f"{f['lightning_ratio']:.2f}x"
    parts.append(f"{f['clips_per_s']:.4g} clips/s (plain loop {f['plain_clips_per_s']:.4g}; Lightning {ratio})")
    parts.append(f"step {f['step_ms']:.2f} ms = data wait {f['data_wait_ms']:.2f} + host-to-device "
                 f"{f['h2d_ms']:.2f} + compute {f['compute_ms']:.2f} ms (synchronised)")
    mem = f["peak_memory_gib"]
    parts.append("peak memory n/a (CPU)" if mem is None else f"peak memory {mem:.2f} GiB")
    mfu = "n/a" if f["mfu"] is None else f"{100 * f['mfu']:.1f}%"
    parts.append(f"{f['gflop_per_step']:.4g} GFLOP/step, {f['achieved_tflops']:.4g} TFLOP/s, MFU {mfu}")
    parts.append(f"final loss plain {fmt_loss(f['final_loss_plain'])}, Lightning {fmt_loss(f['final_loss_lightning'])}")
    return Row(f"{title}: all figures", NONE, "; ".join(parts), NONE)


def mfu_row(title: str, f: dict[str, Any]) -> Row:
    if f["mfu"] is None:
        why = "CPU" if f["device"] == "cpu" else f"{f['device_name']} not in bench.PEAK_TFLOPS"
        return Row(f"{title}: MFU", f">= {MFU_MIN:.0%}", f"n/a ({why})", NA)
    return Row(f"{title}: MFU", f">= {MFU_MIN:.0%}",
               f"{100 * f['mfu']:.1f}% ({f['achieved_tflops']:.4g} of {f['peak_tflops']:g} TFLOP/s)",
               verdict(f["mfu"] >= MFU_MIN))


def data_wait_row(title: str, f: dict[str, Any]) -> Row:
    share = f["data_wait_share"]
    split = f["data_wait_ms"] + f["h2d_ms"] + f["compute_ms"]
    return Row(f"{title}: data wait, share of a step", f"< {DATA_WAIT_MAX:.0%}",
               "n/a" if share is None else f"{100 * share:.1f}% ({f['data_wait_ms']:.2f} of {split:.2f} ms)",
               verdict(None if share is None else share < DATA_WAIT_MAX))


def lightning_row(title: str, f: dict[str, Any]) -> Row:
    ratio = f["lightning_ratio"]
    return Row(f"{title}: Lightning / plain loop", f">= {LIGHTNING_MIN:.2f}x",
               "n/a" if ratio is None else
               f"{ratio:.2f}x ({f['clips_per_s']:.4g} / {f['plain_clips_per_s']:.4g} clips/s)",
               verdict(None if ratio is None else ratio >= LIGHTNING_MIN))


def frozen_run_row(title: str, f: dict[str, Any]) -> Row:
    return Row(f"{title}: {f['run_epochs']}-epoch run of {f['run_clips']:,} clips", f"< {fmt_s(FROZEN_RUN_MAX_S)}",
               fmt_s(f["run_s"]), verdict(f["run_s"] < FROZEN_RUN_MAX_S))


def tests_row(title: str, f: dict[str, Any]) -> Row:
    measured = f"{f['passed']} passed, {f['failed']} failed, {f['errors']} errors, {f['skipped']} skipped"
    if f["failing"]:
        measured += "; failing: " + ", ".join(f["failing"])
    ok = f["failed"] == f["errors"] == f["skipped"] == 0 and f["passed"] > 0
    return Row(title, "all pass, none skipped", measured, verdict(ok))


def e2e_row(title: str, f: dict[str, Any], backend: str | None = None) -> Row:
    acc = f["av_acc"]
    parts = [str(f["status"])]
    if backend:
        parts.append(f"backend {f['backend']}")
    parts += [f"AV acc {acc:.3f}" if acc is not None else "AV acc n/a", f"fit {fmt_s(f['fit_s'])}"]
    ok = f["status"] == "ok" and acc is not None and acc > E2E_ACC_MIN and (backend is None or f["backend"] == backend)
    target = f"status ok{f', backend {backend}' if backend else ''}, AV acc > {E2E_ACC_MIN}"
    return Row(title, target, ", ".join(parts), verdict(ok))


# Which rows each step gives: its targets first, then (bench) every figure for the record.
TARGET_ROWS = {
    "cuda_tests": ["tests"],
    "trainable_16": ["mfu", "data_wait", "lightning"],
    "trainable_bf16": [],
    "frozen_gmf": ["frozen_run", "lightning"],
    "frozen_perceiver": [],
    "fakeavceleb": [],
    "e2e_gpu": ["e2e"],
    "e2e_ddp": ["e2e"],
}
ROW_MAKERS = {"mfu": mfu_row, "data_wait": data_wait_row, "lightning": lightning_row, "frozen_run": frozen_run_row}
TARGET_TEXT = {"tests": "all pass, none skipped", "mfu": f">= {MFU_MIN:.0%}", "data_wait": f"< {DATA_WAIT_MAX:.0%}",
               "lightning": f">= {LIGHTNING_MIN:.2f}x", "frozen_run": f"< {fmt_s(FROZEN_RUN_MAX_S)}",
               "e2e": f"status ok, AV acc > {E2E_ACC_MIN}"}


def step_rows(name: str, step: dict[str, Any], ddp_backend: str) -> list[Row]:
    """The rows of one step's record ({title, kind, status, figures, error, ...}, as gpu_check.py writes it)."""
    title, kinds = step["title"], TARGET_ROWS.get(name, [])
    if step["status"] != "ok":
        why = step.get("error") or step["status"]
        rows = [Row(f"{title}: {k.replace('_', ' ')}", TARGET_TEXT[k], f"not measured ({step['status']})", NO)
                for k in kinds]
        return [Row(title, "runs", why, NO), *rows]
    f = step["figures"]
    if step["kind"] == "pytest":
        return [tests_row(title, f)]
    if step["kind"] == "run":
        return [e2e_row(title, f, ddp_backend if name == "e2e_ddp" else None)]
    head = bench_title(f)
    return [*(ROW_MAKERS[k](head, f) for k in kinds), speed_row(head, f)]


def summary_rows(record: dict[str, Any]) -> list[Row]:
    """Every row of a check's record (gpu_check.json), in the order the steps ran."""
    backend = "gloo" if record.get("dry_run") else "nccl"
    return [row for name, step in record["steps"].items() for row in step_rows(name, step, backend)]


def all_met(rows: list[Row]) -> bool:
    return all(r.met != NO for r in rows)


def plain_table(rows: list[Row]) -> str:
    head = ("figure", "target", "measured", "met")
    cells = [head, *((r.figure, r.target, r.measured, r.met) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(2)]
    lines = []
    for c in cells:
        lines.append(f"{c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  {c[3]:<4}  {c[2]}")
    lines.insert(1, "-" * (widths[0] + widths[1] + 10 + 40))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    def cell(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| figure | target | measured | met |", "|---|---|---|---|"]
    lines += [f"| {cell(r.figure)} | {cell(r.target)} | {cell(r.measured)} | {cell(r.met)} |" for r in rows]
    return "\n".join(lines)


def header(record: dict[str, Any]) -> str:
    """One line: where and when it ran (card, driver, torch, Lightning, date)."""
    env = record.get("environment", {})
    mode = "CPU dry run at tiny sizes (the targets are a GPU's: verdicts shown, not judged)" \
        if record.get("dry_run") else env.get("device_name", "?")
    return (f"{mode}; driver {env.get('driver', 'n/a')}; torch {env.get('torch', '?')} "
            f"(CUDA {env.get('cuda') or 'n/a'}); Lightning {env.get('pytorch_lightning', '?')}; "
            f"python {env.get('python', '?')}; {record.get('date', '?')}; commit {env.get('commit') or 'n/a'}; "
            f"{fmt_s(record.get('wall_s'))} of a {fmt_s(record.get('budget_s'))} budget")
