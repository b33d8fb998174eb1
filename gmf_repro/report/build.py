"""One report, everywhere: ``python -m gmf_repro.report``, the end-of-sweep report (``callback``), the
sweep's W&B report run (``hydra_callbacks``) and the plot all build it here, from the same paths.

A report is its tables (``aggregate``: one per table and dataset, our own runs apart) and the notes on
the runs read: jobs without results.json, values left out, unreadable files, runs that recorded no paper
table. The notes come first in every format.
"""
from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .aggregate import Table, build_tables, unplaced_note
from .claims import claims_text
from .protocol import protocol_text
from .render import to_csv, to_latex, to_markdown, to_rich
from .runs import load_results, unfinished

FORMATS = ("rich", "markdown", "latex", "csv")
NOTES_HEAD = "About the runs read:"


@dataclass
class Report:
    tables: list[Table]
    notes: list[str] = field(default_factory=list)  # what is missing or wrong in the runs read


def build_report(paths: Iterable[str | Path], table: str | None = None, all_rows: bool = False,
                 labels: str = "learned") -> Report:
    """The report of every results.json under ``paths`` (``table``: every run in that layout; ``labels``:
    ``learned`` or ``stream``, which labels FakeAVCeleb's columns are scored against, ``specs.with_labels``)."""
    paths = list(paths)
    notes: list[str] = []
    results = load_results(paths, notes)
    missing = unfinished(paths)
    if missing:
        notes.insert(0, missing)
    if table is None and (note := unplaced_note(results)):
        notes.append(note)
    return Report(build_tables(results, table, all_rows, labels) if results else [], notes)


def notes_text(notes: Sequence[str], fmt: str) -> str:
    if not notes:
        return ""
    if fmt == "markdown":
        return "\n".join([f"**{NOTES_HEAD}**", "", *(f"- {n}" for n in notes)])
    if fmt == "latex":
        return "\n".join([f"% {NOTES_HEAD}", *(f"% - {n}" for n in notes)])
    return "\n".join([NOTES_HEAD, *(f"  - {n}" for n in notes)])


def render(report: Report | Sequence[Table], fmt: str = "markdown", claims: bool = True, width: int = 200) -> str:
    """The whole report as text: notes, then each table with its Protocol section and claims. For csv the notes,
    Protocol sections and claims are left out (the CLI writes them to stderr)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}': choose one of {', '.join(FORMATS)}")
    tables, notes = (report.tables, report.notes) if isinstance(report, Report) else (list(report), [])
    if fmt == "csv":
        return to_csv(tables)
    parts = [notes_text(notes, fmt)] if notes and fmt != "rich" else []
    if notes and fmt == "rich":
        parts.append(_rich_text(notes_text(notes, fmt), width))
    for table in tables:
        protocol = protocol_text(table, markdown=fmt == "markdown")
        if fmt == "markdown":
            sections = [to_markdown(table), protocol, claims_text(table, markdown=True) if claims else ""]
            parts.append("\n\n".join(s for s in sections if s))
        elif fmt == "latex":
            text = to_latex(table)
            for extra in (protocol, claims_text(table) if claims else ""):
                if extra:
                    text += "\n" + "\n".join("% " + line for line in extra.splitlines())
            parts.append(text)
        else:
            from rich.console import Console

            buf = io.StringIO()
            console = Console(file=buf, width=width, force_terminal=False, color_system=None)
            console.print(to_rich(table, width))
            if protocol:
                console.print(protocol, markup=False, highlight=False)
            if claims:
                console.print(claims_text(table), markup=False, highlight=False)
            parts.append(buf.getvalue().rstrip("\n"))
    return "\n\n".join(parts) + "\n"


def _rich_text(text: str, width: int) -> str:
    """Plain text wrapped to ``width`` as the terminal would show it."""
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=False, color_system=None).print(text, markup=False,
                                                                                 highlight=False)
    return buf.getvalue().rstrip("\n")
