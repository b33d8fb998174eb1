"""Our results beside the paper's, in the paper's table layouts, and our own runs in tables of their own.

The report reads results.json files (and, beside them, the job's ``.hydra/`` folder for what was typed;
docs/report.md). Its parts: ``runs`` (reading, bad values, unfinished jobs), ``specs`` (the tables:
columns and the paper's rows), ``aggregate`` (runs -> rows: seeds, settings, failures, unimodal
baselines), ``own`` (tables of our runs alone), ``labels`` (rows named by their settings), ``render``
(markdown, LaTeX, CSV, rich) and ``build`` (the one report every view prints). This module gathers
their public names.
"""
from __future__ import annotations

from .aggregate import (
    Cell,
    Row,
    Table,
    build_table,
    build_tables,
    is_ok,
    our_value,
    paper_table,
    row_key,
    setting_of,
)
from .build import Report, build_report
from .render import CELL_LEGEND, cell_text, fmt, row_label, to_csv, to_latex, to_markdown, to_rich
from .runs import load_results
from .specs import TABLE_NAMES, TABLES, Column, TableSpec, norm

__all__ = [
    "CELL_LEGEND", "Cell", "Column", "Report", "Row", "TABLES", "TABLE_NAMES", "Table", "TableSpec", "build_report",
    "build_table", "build_tables", "cell_text", "fmt", "is_ok", "load_results", "norm", "our_value", "paper_table",
    "row_key", "row_label", "setting_of", "to_csv", "to_latex", "to_markdown", "to_rich",
]
