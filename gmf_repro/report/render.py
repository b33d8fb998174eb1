"""Tables as text: markdown, LaTeX, long CSV and rich terminal tables.

Each metric cell: ``mean ± half-width (n=…) / paper (mean - paper)``, the interval being the 95%
t-interval over seeds (``stats``); ``(n=1, no interval)`` for a single seed. Complexity cells are the
same for every seed and show the number alone. Lines that say what the table compares come first.
A table of our runs alone (``Table.vs_paper`` false: the demo's, own data, or runs that are not on the
paper's dataset) shows ours only, a single seed's value bare.

In the terminal the method column is in every table printed: columns that do not fit the width go to
a continuation table that repeats it, so no width blanks or drops it.
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
    """Label, status, and how many runs it averages and how many failed, e.g. ``GMF n=2 [4 runs, 1 failed]``
    (``n=2`` is the fuser's setting, not a count); with ``error``, then the (first) failed run's error, on one line."""
    suffix = {"failed": " FAILED", "not run": " (not run)"}.get(row.status, "")
    counts = [f"{row.n_runs} runs"] if row.n_runs > 1 else []
    counts += [f"{row.n_failed} failed"] if row.n_failed else []
    text = f"{row.label}{suffix}" + (f" [{', '.join(counts)}]" if counts else "")
    first_line = row.error.strip().split("\n")[0]
    return text + (f": {first_line[:ERROR_CHARS]}" if error and first_line else "")


CELL_LEGEND = "Each cell: ours / paper (ours - paper); ours = mean ± 95% t-interval half-width (n seeds)."
OURS_LEGEND = "Each cell: ours; over several seeds, mean ± 95% t-interval half-width (n seeds)."


def _legend(table: Table) -> str:
    return CELL_LEGEND if table.vs_paper else OURS_LEGEND


def _label(table: Table, row: Row) -> str:
    return row_label(row, error=table.spec.show_errors)


def _cells(table: Table, row: Row) -> list[str]:
    return [cell_text(row, c, table.vs_paper) for c in table.spec.columns]


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
                writer.writerow([table.name, row.key, row.label, row.status, row.n_runs, row.n_failed,
                                 col.name, _num(c.ours), _num(low), _num(high), c.n, _num(c.paper), _num(c.diff)])
    return buf.getvalue()


def _num(value: float | None) -> str:
    return "" if value is None else repr(value)


def _stacked(text: str) -> str:
    """A cell on three short lines for the terminal: mean ± half-width, (n=…), paper (difference)."""
    ours, _, paper = text.partition(" / ")
    return ours.replace(" (n=", "\n(n=", 1) + "\n" + paper


LABEL_WIDTH = 28  # the method column's widest, longer labels fold onto more lines
LABEL_MIN = 12  # and its narrowest: never blanked


def _chunks(widths: list[int], label_width: int, width: int | None) -> list[list[int]]:
    """Column indices per printed table: as many as fit ``width`` beside the method column (at least one)."""
    if width is None:
        return [list(range(len(widths)))]
    out: list[list[int]] = [[]]
    used = 1 + label_width + 3  # left border, then the method column with its padding and border
    for i, w in enumerate(widths):
        if out[-1] and used + w + 3 > width:
            out.append([])
            used = 1 + label_width + 3
        out[-1].append(i)
        used += w + 3
    return out


def to_rich(table: Table, width: int | None = None) -> Any:
    """rich tables for the terminal (labels escaped: "[R(2+1)D-18]" is not markup). With ``width``, the
    columns that do not fit go to continuation tables, each with the method column."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table as RichTable

    stacked = table.vs_paper  # ours, n and paper on three lines; ours alone fits one
    legend = ("Each cell: ours (mean ± 95% t-interval half-width, n seeds), then paper (ours - paper)."
              if stacked else OURS_LEGEND)
    columns = table.spec.columns
    texts = {row.key: [_stacked(t) if stacked else t for t in _cells(table, row)] for row in table.rows}
    widths = [max([len(c.name), *(len(line) for row in table.rows for line in texts[row.key][i].split("\n"))])
              for i, c in enumerate(columns)]
    labels = [_label(table, row) for row in table.rows]
    longest = max([len("method"), *map(len, labels)])
    # a failed run's error (the demo's) may take a third of the width
    widest = max(LABEL_WIDTH, (width or 3 * longest) // 3) if table.spec.show_errors else LABEL_WIDTH
    label_width = max(LABEL_MIN, min(longest, widest))
    chunks = _chunks(widths, label_width, width)
    title = " ".join([table.spec.title + ("." if table.notes_above else ""), *table.notes_above])
    out = []
    for n, chunk in enumerate(chunks):
        more = f"{table.spec.title} (continued: {', '.join(columns[i].name for i in chunk)})"
        part = RichTable(
            title=escape(title if n == 0 else more),
            caption=escape(" ".join((legend, *table.spec.notes))) if n == len(chunks) - 1 else None,
            show_lines=stacked)
        part.add_column("method", min_width=min(label_width, longest), max_width=label_width, overflow="fold")
        for i in chunk:
            part.add_column(escape(columns[i].name), justify="right", no_wrap=stacked, min_width=widths[i])
        for row, label in zip(table.rows, labels, strict=True):
            style = "bold red" if row.status == "failed" else ("dim" if row.status == "not run" else None)
            part.add_row(escape(label), *(escape(texts[row.key][i]) for i in chunk), style=style)
        out.append(part)
    return out[0] if len(out) == 1 else Group(*out)
