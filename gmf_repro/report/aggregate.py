"""From results.json files to the rows of a table: seeds, settings, failures, unimodal baselines.

- One row per (paper row, setting): runs are averaged only when their ``setting_digest`` (the config
  digest without the seed, results.py) is the same, so runs that differ in epochs, sizes or data are
  separate rows; a record without it falls back to ``config_digest`` (then only identical jobs meet).
- A cell keeps one value per seed (repeats of one seed are averaged first) and shows their mean with
  a 95% t-interval and n (``stats``). A failed job counts in its row as "k failed".
- Table 2's Baseline row takes A and V (A(uni)/V(uni) end to end) from the unimodal runs, as the
  paper prints them; concat's own numbers with one input zeroed are the row ``concat_zeroed``.
- Runs at demo size get paper-size Params/FLOPs (``paper_size``: what each run recorded in results.json's
  ``complexity.paper_size``), and the table says when its runs are on
  another dataset or at another size than the paper's. A table of our runs alone (``vs_paper=False``,
  the demo's) keeps each run's own complexity.
"""
from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import paper
from .specs import TABLE_NAMES, TABLES, Column, TableSpec, norm
from .stats import INTERVAL, Stat, t_interval


@dataclass
class Cell:
    """Our per-seed values for one column (paper units) and the paper's number."""

    values: dict[int, float]
    paper: float | None
    exact: bool = False  # complexity: the same for every seed, shown without an interval

    @property
    def stat(self) -> Stat | None:
        return t_interval(list(self.values.values()))

    @property
    def ours(self) -> float | None:
        stat = self.stat
        return None if stat is None else stat.mean

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def diff(self) -> float | None:
        ours = self.ours
        return None if ours is None or self.paper is None else ours - self.paper


@dataclass
class Row:
    key: str
    label: str
    status: str  # "ok", "failed" or "not run"
    n_runs: int  # successful runs
    cells: dict[str, Cell]
    results: list[dict[str, Any]] = field(default_factory=list)
    n_failed: int = 0
    setting: str = ""  # setting digest shared by the row's runs ("" = not recorded)

    @property
    def fuser(self) -> str:
        return self.key.split("@")[0].split("#")[0]

    @property
    def error(self) -> str:
        """The first failed run's error, "" when none recorded one."""
        return next((str(r["error"]) for r in self.results if not is_ok(r) and r.get("error")), "")


@dataclass
class Table:
    spec: TableSpec
    rows: list[Row]
    notes_above: list[str] = field(default_factory=list)  # what the table compares, before the table

    def row(self, key: str) -> Row:
        for r in self.rows:
            if r.key == key:
                return r
        raise KeyError(f"no row '{key}' in {self.spec.name}; rows: {[r.key for r in self.rows]}")


# ------------------------------------------------------------------------------ reading runs
def load_results(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Every results.json under the given paths (directories searched recursively), each with ``_path``.

    An unreadable file becomes a failed record named after its run directory, so it still shows up.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.rglob("results.json")))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"no such file or directory: {p} (give results.json files or a run/multirun dir)")
    out = []
    for f in files:
        try:
            res = json.loads(f.read_text())
            if not isinstance(res, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as err:
            print(f"warning: {f}: unreadable results ({err}); marked failed", file=sys.stderr)
            res = {"fuser": f.parent.name, "status": "failed", "error": str(err)}
        res["_path"] = str(f)
        out.append(res)
    return out


def is_ok(res: dict[str, Any]) -> bool:
    return res.get("status", "ok") == "ok" and isinstance(res.get("metrics"), dict) and bool(res["metrics"])


def placed(res: dict[str, Any]) -> bool:
    """Whether the run recorded its table (``report.table``, results.json's ``table``): placed, not guessed."""
    return res.get("table") in TABLE_NAMES


def infer_table(res: dict[str, Any]) -> str:
    """The table a run belongs to: the one it recorded (``table``).

    A run that recorded none (a one-off run outside the table experiments, or results.json written before
    runs recorded it) is placed by its ``group`` or ``experiment`` if it names a table, else its data/task;
    ``build_tables`` says how many were placed so.
    """
    if placed(res):
        return str(res["table"])
    for field_name in ("group", "experiment"):
        name = norm(res.get(field_name) or "")
        if "table2" in name:
            return "table2_trainable" if "trainable" in name else "table2_frozen"
        for t in ("table3", "table4", "table7"):
            if t in name:
                return t
    data, task, exp = norm(res.get("data") or ""), norm(res.get("task") or ""), norm(res.get("experiment") or "")
    if task == "retrieval" or "activitynet" in data:
        return "table3"
    if "fakeavceleb" in data:
        return "table7"
    if "trainable" in exp or any("trainable" in norm(t) for t in res.get("tags") or []):
        return "table2_trainable"
    return "table2_frozen"


def _retrieval_setting(res: dict[str, Any], fuser: str) -> str:
    dims = res.get("dims")
    if isinstance(dims, dict) and dims:
        values = sorted(int(v) for v in dims.values())
        if values[0] != values[-1]:
            return "128-4096"
        return "4096" if values[0] >= 4096 else "128"
    for field_name in ("setting", "experiment", "data", "group"):
        text = str(res.get(field_name) or "").lower()
        if re.search(r"128\D?4096", text):
            return "128-4096"
        if "4096" in text:
            return "4096"
        if "128" in text:
            return "128"
    homes = [s for s in paper.TABLE3_SETTINGS if fuser in paper.TABLE3[s]]
    return homes[0] if len(homes) == 1 else "128"


def _mentions_mae(res: dict[str, Any]) -> bool:
    texts = [res.get("experiment"), res.get("extractors"), res.get("tags")]
    return "mae" in json.dumps(texts, default=str).lower()


_LETTERS = {"audio": "A", "video": "V", "image": "I", "text": "T"}


def unimodal_letter(res: dict[str, Any]) -> str | None:
    """The condition letter of a unimodal baseline run (one extractor + head), else None.

    A unimodal run has one modality in ``dims``, or says ``unimodal`` in its experiment or tags
    (a failed run records no dims) and names the modality there.
    """
    dims = res.get("dims")
    words = [norm(t) for t in [res.get("experiment"), *(res.get("tags") or [])] if t]
    if isinstance(dims, dict) and len(dims) == 1:
        modality = str(next(iter(dims)))
    elif any("unimodal" in w for w in words):
        modality = next((m for m in _LETTERS for w in words if w.endswith(m) or w == m), "")
        if not modality:
            return None
    else:
        return None
    return _LETTERS.get(modality, modality[:1].upper())


def row_key(res: dict[str, Any], table: str) -> str:
    """The paper row a run fills: the ``row`` it recorded (``report.row``: the fuser's label, ``gmf@128``,
    ``unimodal_A``, ``gmf_mae`` ...).

    Without one (results.json written before runs recorded it): the fuser name, plus the retrieval setting
    or the MAE variant; unimodal baseline runs are ``unimodal_<letter>``.
    """
    if res.get("row"):
        return str(res["row"])
    letter = unimodal_letter(res)
    if letter is not None:
        return f"unimodal_{letter}"
    fuser = str(res.get("fuser") or "unknown")
    if table == "table3":
        return f"{fuser}@{_retrieval_setting(res, fuser)}"
    if table in ("table4", "table7") and fuser == "gmf" and _mentions_mae(res):
        return "gmf_mae"
    return fuser


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def our_value(res: dict[str, Any], column: Column) -> float | None:
    """Our number for one column, in the paper's units, or None when the run did not record it."""
    if column.minus:
        value = our_value(res, replace(column, minus=()))
        minus = our_value(res, replace(column, conditions=column.minus, minus=()))
        return None if value is None or minus is None else value - minus
    for block, key in (("complexity", column.complexity), ("timings", column.timing)):
        if key is not None:
            v = _number((res.get(block) or {}).get(key))
            return None if v is None else v * column.scale
    metrics = res.get("metrics") or {}
    blocks = {norm(k): v for k, v in metrics.items()}
    for block in (blocks.get(c) for c in column.conditions):
        if isinstance(block, dict):
            values = {norm(k): v for k, v in block.items()}
            for m in column.metrics:
                v = _number(values.get(m))
                if v is not None:
                    return v * column.scale
    return None


def paper_size(res: dict[str, Any]) -> tuple[int, int] | None:
    """(params, FLOPs) of the paper-size configuration of the run's fuser at its dims, as the run recorded it
    (``complexity.paper_size``); None if it recorded none."""
    size = (res.get("complexity") or {}).get("paper_size")
    return (int(size["params"]), int(size["flops"])) if isinstance(size, dict) else None


def at_paper_size(res: dict[str, Any]) -> bool | None:
    """True when the run's fuser has the paper-size parameter count, None when that cannot be told."""
    params = (res.get("complexity") or {}).get("params")
    size = paper_size(res) if isinstance(params, int | float) else None
    return None if size is None else int(params) == size[0]


def setting_of(res: dict[str, Any]) -> str:
    """The digest runs must share to be averaged: the setting without the seed, else the whole config."""
    return str(res.get("setting_digest") or res.get("config_digest") or "")


def seed_of(res: dict[str, Any]) -> int:
    seed = res.get("seed")
    return int(seed) if isinstance(seed, int | float) and not isinstance(seed, bool) else 0


def per_seed(runs: Sequence[dict[str, Any]], column: Column, sized: bool = False) -> dict[int, float]:
    """One value per seed (repeats of a seed averaged); with ``sized`` complexity is the paper size's."""
    by_seed: dict[int, list[float]] = {}
    for res in runs:
        value = our_value(res, column)
        if sized and column.complexity in ("params", "flops"):
            size = paper_size(res)
            value = None if size is None else size[0 if column.complexity == "params" else 1] * column.scale
        elif sized and column.complexity is not None:
            value = None  # latency of a demo-size model is not comparable with the paper's
        if value is not None:
            by_seed.setdefault(seed_of(res), []).append(value)
    return {s: sum(v) / len(v) for s, v in sorted(by_seed.items())}


def _groups(results: Sequence[dict[str, Any]], table: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """row key -> setting -> runs; a failed record without a digest joins its row's only setting."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for res in results:
        groups.setdefault(row_key(res, table), {}).setdefault(setting_of(res), []).append(res)
    for settings in groups.values():
        loose = settings.get("", [])
        named = [s for s in settings if s]
        if loose and len(named) == 1 and not any(is_ok(r) for r in loose):
            settings[named[0]].extend(settings.pop(""))
    return groups


def _row(spec: TableSpec, key: str, runs: list[dict[str, Any]], setting: str, label: str) -> Row:
    ok = [r for r in runs if is_ok(r)]
    failed = len(runs) - len(ok)
    status = "ok" if ok else ("failed" if runs else "not run")
    sized = spec.vs_paper and bool(ok) and any(at_paper_size(r) is False for r in ok)
    paper_key = key.split("#")[0]
    cells = {}
    for col in spec.columns:
        p = spec.paper_rows.get(paper_key, {}).get(col.name)
        cells[col.name] = Cell(per_seed(ok, col, sized), None if p is None else p * col.paper_scale,
                               exact=col.complexity is not None)
    return Row(key, label, status, len(ok), cells, list(runs), failed, setting)


def _label(spec: TableSpec, key: str) -> str:
    return spec.labels.get(key) or spec.labels.get(key.split("@")[0]) or key


def _baseline_from_unimodal(spec: TableSpec, rows: dict[str, Row], unimodal: dict[str, list[Row]]) -> list[str]:
    """Baseline (concat) A/V cells from the unimodal runs; concat's own zeroed-input numbers as their own row."""
    notes = []
    concat = rows.get("concat")
    if concat is not None and concat.status != "not run":
        zeroed = Row("concat_zeroed", "Concat, one input zeroed", concat.status, concat.n_runs,
                     {c: Cell(dict(cell.values), None, cell.exact) for c, cell in concat.cells.items()},
                     concat.results, concat.n_failed, concat.setting)
        rows["concat_zeroed"] = zeroed
    if concat is None and any(unimodal.values()):
        concat = rows["concat"] = _row(spec, "concat", [], "", _label(spec, "concat"))
    if concat is None:
        return notes
    for col in spec.columns:
        if col.name in (spec.missing or ()) and col.name not in spec.unimodal:
            concat.cells[col.name].values = {}  # the paper's Baseline has "-" here; see concat_zeroed
    for col_name, letter in spec.unimodal.items():
        candidates = unimodal.get(letter, [])
        cell = concat.cells[col_name]
        if not candidates:
            cell.values = {}
            continue
        best = max(candidates, key=lambda r: r.n_runs)
        if len(candidates) > 1:
            notes.append(f"{len(candidates)} settings of the unimodal {letter} runs; the Baseline uses the one "
                         f"with the most runs ({best.setting[:6]})")
        source = next(c for c in spec.columns if c.name == col_name)
        cell.values = per_seed([r for r in best.results if is_ok(r)], Column(
            col_name, conditions=(norm(letter),), metrics=source.metrics, scale=source.scale))
        concat.results = concat.results + best.results
        concat.n_failed += best.n_failed
        if concat.status == "not run":
            concat.status = best.status
    return notes


def _notes_above(spec: TableSpec, rows: list[Row]) -> list[str]:
    runs = [r for row in rows for r in row.results if is_ok(r)]
    notes = []
    datas = sorted({str(r.get("data")) for r in runs if r.get("data")} - set(spec.data_names))
    if datas and spec.dataset:
        notes.append(f"These runs are on {', '.join(datas)}, not {spec.dataset}: every ours / paper cell is shown, "
                     f"but the difference compares different data and is not a reproduction gap.")
    elif datas:
        notes.append(f"Data: {', '.join(datas)}.")
    if not spec.vs_paper:
        return notes  # our runs at their own size; the legend says what a cell is
    demo = sorted({row.label for row in rows for r in row.results if is_ok(r) and at_paper_size(r) is False})
    if demo:
        notes.append(f"Not at paper size: {', '.join(demo)}. Their accuracy is the smaller model's (not a "
                     f"reproduction gap); their Params/FLOPs cells are the paper-size configuration at the same "
                     f"input dims (gmf_repro.complexity), so those columns compare like with like; CPU s is left out.")
    if runs:
        notes.append(f"Cells: mean ± half-width of the {INTERVAL} (n = seeds); runs are averaged only when their "
                     f"settings differ by the seed alone.")
    return notes


def build_table(results: Sequence[dict[str, Any]], table: str, all_rows: bool = False) -> Table:
    """One table from the runs assigned to it: paper rows first (paper order; then ``row_order``), then the rest."""
    if table not in TABLES:
        raise ValueError(f"unknown table '{table}': choose one of {', '.join(TABLE_NAMES)}")
    spec = TABLES[table]
    groups = _groups(results, table)
    unimodal: dict[str, list[Row]] = {}
    if spec.unimodal:
        for key in [k for k in groups if k.startswith("unimodal_")]:
            unimodal[key.split("_", 1)[1]] = [_row(spec, key, runs, s, key) for s, runs in groups.pop(key).items()]
    listed = list(dict.fromkeys([*spec.paper_rows, *spec.row_order]))
    keys = [k for k in listed if k in groups or (all_rows and k in spec.paper_rows)] + [k for k in groups
                                                                                        if k not in listed]
    rows: dict[str, Row] = {}
    for key in keys:
        settings = groups.get(key, {"": []})
        for setting, runs in settings.items():
            row_id = key if len(settings) == 1 else f"{key}#{setting[:6] or 'none'}"
            label = _label(spec, key) + ("" if len(settings) == 1 else f" {{setting {setting[:6] or 'unrecorded'}}}")
            rows[row_id] = _row(spec, row_id, runs, setting, label)
    notes = _baseline_from_unimodal(spec, rows, unimodal) if spec.unimodal else []
    position = {k: float(i) for i, k in enumerate(dict.fromkeys([*listed, *keys]))}
    position["concat_zeroed"] = position.get("concat", -1.0) + 0.5
    ordered = sorted(rows.values(), key=lambda r: position[r.key.split("#")[0]])  # stable: settings in order
    return Table(spec, ordered, _notes_above(spec, ordered) + notes)


def build_tables(
    results: Sequence[dict[str, Any]], table: str | None = None, all_rows: bool = False
) -> list[Table]:
    """All runs in ``table`` if given, else each run in the table its group/data names (paper order)."""
    if table is not None:
        return [build_table(results, table, all_rows)]
    by_table: dict[str, list[dict[str, Any]]] = {}
    for res in results:
        by_table.setdefault(infer_table(res), []).append(res)
    guessed = sum(not placed(res) for res in results)
    if guessed:
        print(f"note: {guessed} of {len(results)} runs recorded no paper table (report.table); placed by their "
              f"group, experiment or data name (docs/report.md)", file=sys.stderr)
    return [build_table(by_table[t], t, all_rows) for t in TABLE_NAMES if t in by_table]
