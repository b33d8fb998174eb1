"""Reading runs: every results.json under the given paths, what is wrong in them, and the jobs without one.

Nothing is lost silently. A file that is not valid JSON becomes a failed record (its row counts it);
a metric that is NaN, infinite, not a number, or a fraction outside [0, 1] (accuracy 1.7, AUC -0.2) is
left out and named; a job folder (a folder with Hydra's ``.hydra/``, e.g. a sweep's numbered
subfolders) without results.json is named as unfinished. Each such line goes to ``notes``.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .specs import norm


def _where(path: Path, roots: list[Path]) -> str:
    """A run's name in notes: its folder relative to the path given, else the file's path."""
    for root in roots:
        try:
            rel = path.parent.relative_to(root)
        except ValueError:
            continue
        return str(root / rel) if str(rel) == "." else str(rel)
    return str(path)


def results_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    """The results.json files under ``paths`` (a directory is searched recursively) and the directories given."""
    files: list[Path] = []
    roots: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            roots.append(p)
            files.extend(sorted(p.rglob("results.json")))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"no such file or directory: {p} (give results.json files or a run/multirun dir)")
    return files, roots


def load_results(paths: Iterable[str | Path], notes: list[str] | None = None) -> list[dict[str, Any]]:
    """Every results.json under the given paths, each with ``_path`` (the file) and ``_where`` (its name in
    notes). An unreadable file is a failed record; bad values are left out. What was wrong goes to ``notes``."""
    notes = [] if notes is None else notes
    files, roots = results_files(paths)
    out = []
    for f in files:
        where = _where(f, roots)
        try:
            res = json.loads(f.read_text())
            if not isinstance(res, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as err:
            notes.append(f"{where}: results.json is unreadable ({err}); counted as a failed run")
            res = {"fuser": f.parent.name, "status": "failed", "error": f"unreadable results.json: {err}"}
        res["_path"], res["_where"] = str(f), where
        bad = clean(res)
        if bad:
            notes.append(f"{where}: {'; '.join(bad)}: left out")
        out.append(res)
    return out


# metrics that are fractions (accuracy, AUC, mAP): outside [0, 1] they are a bug, not a result
def is_fraction(metric: str) -> bool:
    name = norm(metric)
    return name in ("acc", "auroc") or name.startswith("map")


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def clean(res: dict[str, Any]) -> list[str]:
    """Remove the values the report must not average, in place; one phrase per value removed.

    Metrics: every value a finite number, fractions (``is_fraction``) within [0, 1], ``ce`` (cross-entropy,
    nats) >= 0. Complexity and timings: finite numbers (other entries, e.g. a note, are kept as they are).
    """
    bad: list[str] = []
    metrics = res.get("metrics")
    if isinstance(metrics, dict):
        for cond, block in list(metrics.items()):
            if not isinstance(block, dict):
                bad.append(f"metrics.{cond} = {block!r} is not a block of metrics")
                del metrics[cond]
                continue
            for name, value in list(block.items()):
                why = None
                if not _finite(value):
                    why = "not a finite number"
                elif is_fraction(name) and not 0 <= value <= 1:
                    why = "outside [0, 1]"
                elif norm(name) == "ce" and value < 0:
                    why = "a negative cross-entropy"
                if why:
                    bad.append(f"metrics.{cond}.{name} = {value!r} is {why}")
                    del block[name]
            if not block:
                del metrics[cond]
    for section in ("complexity", "timings"):
        block = res.get(section)
        if isinstance(block, dict):
            for name, value in list(block.items()):
                if isinstance(value, float) and not math.isfinite(value):
                    bad.append(f"{section}.{name} = {value!r} is not a finite number")
                    del block[name]
    return bad


def job_folders(roots: Iterable[Path]) -> list[Path]:
    """Folders holding one Hydra job: those with a ``.hydra/`` folder (a sweep's numbered subfolders, a run dir)."""
    found = set()
    for root in roots:
        found |= {h.parent for h in root.rglob(".hydra") if h.is_dir()}
    return sorted(found, key=lambda p: [int(x) if x.isdigit() else x for x in p.parts])


def unfinished(paths: Iterable[str | Path]) -> str | None:
    """``2 of 8 jobs have no results.json …: 3 (fuser.n=4 seed=2), 5 (…)``, or None when every job has one.

    Each job is named by its folder and the overrides that set it apart from the other jobs (its
    ``.hydra/overrides.yaml``: the swept values, the seed included)."""
    _, roots = results_files(paths)
    jobs = job_folders(roots)
    missing = [j for j in jobs if not (j / "results.json").exists()]
    if not missing:
        return None
    typed = {job: _typed(job) for job in jobs}
    keys = list(dict.fromkeys(k for o in typed.values() for k in o))
    differing = [k for k in keys if len({o.get(k) for o in typed.values()}) > 1] if len(jobs) > 1 else keys
    names = []
    for job in missing:
        shown = " ".join(f"{k}={typed[job][k]}" for k in differing if k in typed[job])
        names.append(_where(job / "results.json", roots) + (f" ({shown})" if shown else ""))
    verb = "has" if len(missing) == 1 else "have"
    return (f"{len(missing)} of {len(jobs)} jobs {verb} no results.json (unfinished: still running, killed, or "
            f"stopped before writing it), so no row counts {'it' if len(missing) == 1 else 'them'}: "
            f"{', '.join(names)}")


def _typed(job: Path) -> dict[str, str]:
    """The job's overrides, key -> value, the seed included (it tells the jobs of a sweep apart)."""
    import yaml

    from ..naming import parse_override

    try:
        listed = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) or []
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    return dict(parse_override(o) for o in listed) if isinstance(listed, list) else {}
