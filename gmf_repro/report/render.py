"""Tables as text: markdown, LaTeX, long CSV and a rich terminal table.

Each metric cell: ``mean ± half-width (n=…) / paper (mean - paper)``, the interval being the 95%
t-interval over seeds (``stats``); ``(n=1, no interval)`` for a single seed. Complexity cells are the
same for every seed and show the number alone. Lines that say what the table compares come first.
A table of our runs alone (``TableSpec.vs_paper`` false, the demo's) shows ours only, a single seed's
value bare.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from .aggregate import Row, Table
from .specs import Column
from .stats import fmt_stat


def fmt(value: float | None, decimals: int, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def cell_text(row: Row, col: Column, vs_paper: bool = True) -> str:
    """"ours ± interval (n) / paper (ours - paper)", or ours alone; FAILED replaces ours for a failed row."""
    cell = row.cells[col.name]
    status = {"failed": "FAILED", "not run": "not run"}.get(row.status)
    if not vs_paper:
        return status or fmt_stat(cell.stat, col.decimals, exact=cell.exact or cell.n == 1)
    ours = status or fmt_stat(cell.stat, col.decimals, exact=cell.exact)
    text = f"{ours} / {fmt(cell.paper, col.decimals)}"
    return text + (f" ({fmt(cell.diff, col.decimals, signed=True)})" if cell.diff is not None else "")


ERROR_CHARS = 60  # of a failed run's error in its row's label


def row_label(row: Row, error: bool = False) -> str:
    """Label, status, and how many runs it averages and how many failed, e.g. ``GMF [n=4, 1 failed]``;
    with ``error``, then the (first) failed run's error, on one line."""
    suffix = {"failed": " FAILED", "not run": " (not run)"}.get(row.status, "")
    counts = [f"n={row.n_runs}"] if row.n_runs > 1 else []
    counts += [f"{row.n_failed} failed"] if row.n_failed else []
    text = f"{row.label}{suffix}" + (f" [{', '.join(counts)}]" if counts else "")
    first_line = row.error.strip().split("\n")[0]
    return text + (f": {first_line[:ERROR_CHARS]}" if error and first_line else "")


CELL_LEGEND = "Each cell: ours / paper (ours - paper); ours = mean ± 95% t-interval half-width (n seeds)."
OURS_LEGEND = "Each cell: ours; over several seeds, mean ± 95% t-interval half-width (n seeds)."


def _legend(table: Table) -> str:
    return CELL_LEGEND if table.spec.vs_paper else OURS_LEGEND


def _label(table: Table, row: Row) -> str:
    return row_label(row, error=table.spec.show_errors)


def _cells(table: Table, row: Row) -> list[str]:
    return [cell_text(row, c, table.spec.vs_paper) for c in table.spec.columns]


def to_markdown(table: Table) -> str:
    cols = table.spec.columns
    lines = [f"### {table.spec.title}", ""] + [f"> {n}" for n in table.notes_above]
    lines += ([""] if table.notes_above else []) + [f"_{_legend(table)}_", ""]
    lines.append("| method | " + " | ".join(c.name for c in cols) + " |")
    lines.append("|---" * (len(cols) + 1) + "|")
    for row in table.rows:
        lines.append(f"| {_label(table, row)} | " + " | ".join(_cells(table, row)) + " |")
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
        r"\caption{" + latex_escape(" ".join([f"{table.spec.title}.", *table.notes_above, _legend(table)])) + "}",
        r"\begin{tabular}{l" + "c" * len(cols) + "}",
        r"\hline",
        "method & " + " & ".join(latex_escape(c.name) for c in cols) + r" \\",
        r"\hline",
    ]
    for row in table.rows:
        lines.append(latex_escape(_label(table, row)) + " & " + " & ".join(map(latex_escape, _cells(table, row)))
                     + r" \\")
    lines += [r"\hline", r"\end{tabular}", r"\end{table}"]
    lines += ["% " + n for n in table.spec.notes]
    return "\n".join(lines)


CSV_FIELDS = ("table", "row", "label", "status", "n_runs", "n_failed", "column", "ours", "ci_low", "ci_high", "n",
              "paper", "diff")


def to_csv(tables: Sequence[Table]) -> str:
    """Long format, one line per cell, full precision: easy to load into a dataframe."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for table in tables:
        for row in table.rows:
            for col in table.spec.columns:
                c = row.cells[col.name]
                stat = c.stat
                low, high = (None, None) if stat is None or c.exact else (stat.low, stat.high)
                writer.writerow([table.spec.name, row.key, row.label, row.status, row.n_runs, row.n_failed,
                                 col.name, _num(c.ours), _num(low), _num(high), c.n, _num(c.paper), _num(c.diff)])
    return buf.getvalue()


def _num(value: float | None) -> str:
    return "" if value is None else repr(value)


def _stacked(text: str) -> str:
    """A cell on three short lines for the terminal: mean ± half-width, (n=…), paper (difference)."""
    ours, _, paper = text.partition(" / ")
    return ours.replace(" (n=", "\n(n=", 1) + "\n" + paper


def to_rich(table: Table) -> Any:
    """A rich.Table for the terminal (labels escaped: "[R(2+1)D-18]" is not markup)."""
    from rich.markup import escape
    from rich.table import Table as RichTable

    stacked = table.spec.vs_paper  # ours, n and paper on three lines; ours alone fits one
    legend = ("Each cell: ours (mean ± 95% t-interval half-width, n seeds), then paper (ours - paper)."
              if stacked else OURS_LEGEND)
    out = RichTable(title=escape(" ".join([table.spec.title + ("." if table.notes_above else ""), *table.notes_above])),
                    caption=escape(" ".join((legend, *table.spec.notes))),
                    show_lines=stacked)
    if stacked:
        out.add_column("method", max_width=24)
    else:  # one line a cell while they fit (one seed); a failed row's error takes the room left
        out.add_column("method", min_width=12, max_width=None if table.spec.show_errors else 24)
    for col in table.spec.columns:
        out.add_column(escape(col.name), justify="right", no_wrap=stacked, min_width=13 if stacked else None)
    for row in table.rows:
        style = "bold red" if row.status == "failed" else ("dim" if row.status == "not run" else None)
        cells = (escape(_stacked(text) if stacked else text) for text in _cells(table, row))
        out.add_row(escape(_label(table, row)), *cells, style=style)
    return out
