"""Our results beside the paper's, in the paper's table layouts (SPEC §5).

The report reads only ``results.json`` files (docs/architecture.md). Each file becomes one row of
one table; several runs of the same row are averaged; a run with ``"status" != "ok"`` or no
``metrics`` marks its row FAILED. Every cell holds our number, the paper's and the difference,
in the paper's units (accuracy/ACC/AUC in %, mAP as a fraction, params in M, FLOPs in G).
"""
from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import paper

TABLE_NAMES: tuple[str, ...] = ("table2_frozen", "table2_trainable", "table3", "table4", "table7")


def norm(key: object) -> str:
    """Lower-case alphanumerics only, so "mAP@10", "map_10" and "map10" meet, as do "A(uni)" and "A_uni"."""
    return re.sub(r"[^a-z0-9]", "", str(key).lower())


@dataclass(frozen=True)
class Column:
    """One column: where our number comes from in results.json and how it maps to the paper's units."""

    name: str
    conditions: tuple[str, ...] = ()  # accepted metrics-block names (normalized); () = any block
    metrics: tuple[str, ...] = ()  # accepted metric names (normalized)
    complexity: str | None = None  # key in results["complexity"] instead of a metric
    scale: float = 1.0  # ours * scale -> paper units
    paper_scale: float = 1.0  # paper.py value * paper_scale -> display units
    decimals: int = 2


@dataclass(frozen=True)
class TableSpec:
    """A paper table: its columns, its rows (paper order) and the columns claims read."""

    name: str
    title: str
    columns: tuple[Column, ...]
    paper_rows: dict[str, dict[str, float | None]]  # row key -> column -> value (paper.py units)
    labels: dict[str, str]
    main: str  # the column claims 1 and 3 compare ("AV" accuracy or its stand-in)
    missing: tuple[str, str] | None = None  # (A column, V column) for claims 2 and 3, if any
    tolerance: float = 2.0  # "close to the best" for claim 1, in the main column's units
    notes: tuple[str, ...] = ()


@dataclass
class Cell:
    ours: float | None
    paper: float | None

    @property
    def diff(self) -> float | None:
        return None if self.ours is None or self.paper is None else self.ours - self.paper


@dataclass
class Row:
    key: str
    label: str
    status: str  # "ok", "failed" or "not run"
    n_runs: int
    cells: dict[str, Cell]
    results: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Table:
    spec: TableSpec
    rows: list[Row]

    def row(self, key: str) -> Row:
        for r in self.rows:
            if r.key == key:
                return r
        raise KeyError(f"no row '{key}' in {self.spec.name}; rows: {[r.key for r in self.rows]}")


# ------------------------------------------------------------------------------ table specs
def _acc(name: str, condition: str) -> Column:
    return Column(name, conditions=(norm(condition),), metrics=("acc", "accuracy", "top1"), scale=100.0)


def _auc(name: str, condition: str) -> Column:
    return Column(name, conditions=(norm(condition),), metrics=("auroc", "auc"), scale=100.0)


_COMPLEXITY_COLUMNS = (
    Column("CPU s", complexity="cpu_latency_s", decimals=4),
    Column("Params (M)", complexity="params", scale=1e-6, paper_scale=1e-6),
    Column("FLOPs (G)", complexity="flops", scale=1e-9, paper_scale=1e-9),
)
_ACC_NOTE = "Accuracy in % (ours converted from the fraction in results.json)."
_CPLX_NOTES = (
    "FLOPs: ours are FlopCounterMode FLOPs (2 x MACs); the paper does not say whether its G means GFLOPs or GMACs.",
    "CPU s: ours on this machine (results.json complexity.threads threads); the paper's on a Ryzen 9 5900X.",
)
_UNI = {"A(uni)": ("A(uni)", "A_uni", "uni_A", "uni/A"), "V(uni)": ("V(uni)", "V_uni", "uni_V", "uni/V")}


def _with_complexity(rows: dict[str, dict[str, float | None]], complexity: dict) -> dict:
    out = {}
    for key, cols in rows.items():
        c = complexity.get(key, {})
        out[key] = {**cols, "CPU s": c.get("cpu_s"), "Params (M)": c.get("params"), "FLOPs (G)": c.get("flops")}
    return out


def _table3_rows() -> tuple[dict[str, dict[str, float | None]], dict[str, str]]:
    rows, labels = {}, {}
    for setting in paper.TABLE3_SETTINGS:
        for fuser, cols in paper.TABLE3[setting].items():
            c = paper.TABLE3_COMPLEXITY[setting][fuser]
            rows[f"{fuser}@{setting}"] = {**cols, "Params (M)": c["params"], "FLOPs (G)": c["flops"]}
            labels[f"{fuser}@{setting}"] = f"{paper.LABELS[fuser]} ({setting})"
    return rows, labels


def _build_specs() -> dict[str, TableSpec]:
    t3_rows, t3_labels = _table3_rows()
    map_cols = tuple(
        Column(c, conditions=(), metrics=(norm(c), norm(c.replace("@", "_at_"))), decimals=3)
        for c in paper.TABLE3_COLUMNS
    )
    return {
        "table2_frozen": TableSpec(
            "table2_frozen",
            "Table 2 (VGGSound), frozen extractor: accuracy % with one modality zeroed (A, V) or both given (AV)",
            (_acc("A", "A"), _acc("V", "V"), _acc("AV", "AV"), *_COMPLEXITY_COLUMNS),
            _with_complexity(paper.TABLE2_FROZEN, paper.PAPER_COMPLEXITY),
            dict(paper.LABELS),
            main="AV",
            missing=("A", "V"),
            notes=(_ACC_NOTE, *_CPLX_NOTES),
        ),
        "table2_trainable": TableSpec(
            "table2_trainable",
            "Table 2 (VGGSound), extractors trained end to end: accuracy %; (uni) = linear probe on one extractor",
            (
                Column("A(uni)", conditions=tuple(norm(c) for c in _UNI["A(uni)"]), metrics=("acc", "accuracy"),
                       scale=100.0),
                _acc("A", "A"),
                Column("V(uni)", conditions=tuple(norm(c) for c in _UNI["V(uni)"]), metrics=("acc", "accuracy"),
                       scale=100.0),
                _acc("V", "V"),
                _acc("AV", "AV"),
                *_COMPLEXITY_COLUMNS,
            ),
            _with_complexity(paper.TABLE2_TRAINABLE, paper.PAPER_COMPLEXITY),
            dict(paper.LABELS),
            main="AV",
            missing=("A", "V"),
            notes=(_ACC_NOTE, *_CPLX_NOTES),
        ),
        "table3": TableSpec(
            "table3",
            "Table 3 (ActivityNet image-to-video retrieval): mAP@k; (dims) = image-video feature dims",
            (*map_cols, _COMPLEXITY_COLUMNS[1], _COMPLEXITY_COLUMNS[2]),
            t3_rows,
            t3_labels,
            main="mAP@10",
            tolerance=0.02,
            notes=("mAP as a fraction, as the paper prints it.", _CPLX_NOTES[0]),
        ),
        "table4": TableSpec(
            "table4",
            "Table 4 (FakeAVCeleb, AV input): ACC and AUC %",
            (_acc("ACC", "AV"), _auc("AUC", "AV")),
            dict(paper.TABLE4),
            dict(paper.LABELS),
            main="AUC",
            notes=("ACC/AUC in %. Claims compare AUC: with 1:39 classes ACC sits near the majority rate.",),
        ),
        "table7": TableSpec(
            "table7",
            "Table 7 (FakeAVCeleb, missing modalities): ACC and AUC % for A, V, AV",
            (
                _acc("ACC A", "A"), _acc("ACC V", "V"), _acc("ACC AV", "AV"),
                _auc("AUC A", "A"), _auc("AUC V", "V"), _auc("AUC AV", "AV"),
            ),
            dict(paper.TABLE7),
            {k: f"{v} [{paper.TABLE7_EXTRACTORS[k]}]" for k, v in paper.LABELS.items() if k in paper.TABLE7},
            main="AUC AV",
            missing=("AUC A", "AUC V"),
            notes=("ACC/AUC in %. Claims compare AUC: with 1:39 classes ACC sits near the majority rate.",),
        ),
    }


TABLES: dict[str, TableSpec] = _build_specs()


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


def infer_table(res: dict[str, Any]) -> str:
    """The table a run belongs to: its ``group`` or ``experiment`` if it names one, else its data/task."""
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


def row_key(res: dict[str, Any], table: str) -> str:
    """The paper row a run fills: the fuser name, plus the retrieval setting or the MAE variant."""
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
    if column.complexity is not None:
        v = _number((res.get("complexity") or {}).get(column.complexity))
        return None if v is None else v * column.scale
    metrics = res.get("metrics") or {}
    blocks = {norm(k): v for k, v in metrics.items()}
    if column.conditions:
        candidates = [blocks.get(c) for c in column.conditions]
    else:  # retrieval: a flat metrics dict, or any block (preferring the usual names)
        candidates = [metrics] + [blocks.get(c) for c in ("iv", "vi", "av", "all", "test")] + list(blocks.values())
    for block in candidates:
        if isinstance(block, dict):
            values = {norm(k): v for k, v in block.items()}
            for m in column.metrics:
                v = _number(values.get(m))
                if v is not None:
                    return v * column.scale
    return None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def build_table(results: Sequence[dict[str, Any]], table: str, all_rows: bool = False) -> Table:
    """One table from the runs assigned to it: paper rows first (paper order), then rows the paper lacks."""
    if table not in TABLES:
        raise ValueError(f"unknown table '{table}': choose one of {', '.join(TABLE_NAMES)}")
    spec = TABLES[table]
    runs: dict[str, list[dict[str, Any]]] = {}
    for res in results:
        runs.setdefault(row_key(res, table), []).append(res)
    keys = [k for k in spec.paper_rows if all_rows or k in runs] + [k for k in runs if k not in spec.paper_rows]
    rows = []
    for key in keys:
        group = runs.get(key, [])
        ok = [r for r in group if is_ok(r)]
        status = "ok" if ok else ("failed" if group else "not run")
        cells = {}
        for col in spec.columns:
            p = spec.paper_rows.get(key, {}).get(col.name)
            ours = _mean([v for v in (our_value(r, col) for r in ok) if v is not None])
            cells[col.name] = Cell(ours, None if p is None else p * col.paper_scale)
        label = spec.labels.get(key) or spec.labels.get(key.split("@")[0]) or key
        rows.append(Row(key, label, status, len(ok), cells, list(group)))
    return Table(spec, rows)


def build_tables(
    results: Sequence[dict[str, Any]], table: str | None = None, all_rows: bool = False
) -> list[Table]:
    """All runs in ``table`` if given, else each run in the table its group/data names (paper order)."""
    if table is not None:
        return [build_table(results, table, all_rows)]
    by_table: dict[str, list[dict[str, Any]]] = {}
    for res in results:
        by_table.setdefault(infer_table(res), []).append(res)
    return [build_table(by_table[t], t, all_rows) for t in TABLE_NAMES if t in by_table]


# ------------------------------------------------------------------------------ rendering
def fmt(value: float | None, decimals: int, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def cell_text(row: Row, col: Column) -> str:
    """"ours / paper (ours - paper)"; FAILED replaces ours for a failed row."""
    cell = row.cells[col.name]
    ours = {"failed": "FAILED", "not run": "not run"}.get(row.status) or fmt(cell.ours, col.decimals)
    text = f"{ours} / {fmt(cell.paper, col.decimals)}"
    return text + (f" ({fmt(cell.diff, col.decimals, signed=True)})" if cell.diff is not None else "")


def row_label(row: Row) -> str:
    suffix = {"failed": " FAILED", "not run": " (not run)"}.get(row.status, "")
    return f"{row.label}{suffix}" + (f" [n={row.n_runs}]" if row.n_runs > 1 else "")


CELL_LEGEND = "Each cell: ours / paper (ours - paper)."


def to_markdown(table: Table) -> str:
    cols = table.spec.columns
    lines = [f"### {table.spec.title}", "", f"_{CELL_LEGEND}_", ""]
    lines.append("| method | " + " | ".join(c.name for c in cols) + " |")
    lines.append("|---" * (len(cols) + 1) + "|")
    for row in table.rows:
        lines.append(f"| {row_label(row)} | " + " | ".join(cell_text(row, c) for c in cols) + " |")
    lines += [""] + [f"- {n}" for n in table.spec.notes]
    return "\n".join(lines)


_LATEX_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    cols = table.spec.columns
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\caption{" + latex_escape(f"{table.spec.title}. {CELL_LEGEND}") + "}",
        r"\begin{tabular}{l" + "c" * len(cols) + "}",
        r"\hline",
        "method & " + " & ".join(latex_escape(c.name) for c in cols) + r" \\",
        r"\hline",
    ]
    for row in table.rows:
        lines.append(latex_escape(row_label(row)) + " & "
                     + " & ".join(latex_escape(cell_text(row, c)) for c in cols) + r" \\")
    lines += [r"\hline", r"\end{tabular}", r"\end{table}"]
    lines += ["% " + n for n in table.spec.notes]
    return "\n".join(lines)


CSV_FIELDS = ("table", "row", "label", "status", "n_runs", "column", "ours", "paper", "diff")


def to_csv(tables: Sequence[Table]) -> str:
    """Long format, one line per cell, full precision: easy to load into a dataframe."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for table in tables:
        for row in table.rows:
            for col in table.spec.columns:
                c = row.cells[col.name]
                writer.writerow([table.spec.name, row.key, row.label, row.status, row.n_runs, col.name,
                                 "" if c.ours is None else repr(c.ours), "" if c.paper is None else repr(c.paper),
                                 "" if c.diff is None else repr(c.diff)])
    return buf.getvalue()


def to_rich(table: Table) -> Any:
    """A rich.Table for the terminal (labels escaped: "[R(2+1)D-18]" is not markup)."""
    from rich.markup import escape
    from rich.table import Table as RichTable

    legend = "Each cell: ours, then paper (ours - paper)."
    out = RichTable(title=escape(table.spec.title), caption=escape(" ".join((legend, *table.spec.notes))),
                    show_lines=True)
    out.add_column("method", no_wrap=True)
    for col in table.spec.columns:
        out.add_column(escape(col.name), justify="right")
    for row in table.rows:
        style = "bold red" if row.status == "failed" else ("dim" if row.status == "not run" else None)
        cells = (escape(cell_text(row, c).replace(" / ", "\n", 1)) for c in table.spec.columns)
        out.add_row(escape(row_label(row)), *cells, style=style)
    return out
