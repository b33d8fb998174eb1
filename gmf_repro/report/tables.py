"""Our results beside the paper's, in the paper's table layouts (SPEC §5).

The report reads only ``results.json`` files (docs/architecture.md). Three parts:
``specs`` (the tables: columns and the paper's rows), ``aggregate`` (runs -> rows: seeds, settings,
failures, unimodal baselines) and ``render`` (markdown, LaTeX, CSV, rich). This module gathers
their public names.
"""
from __future__ import annotations

from .aggregate import (
    Cell,
    Row,
    Table,
    build_table,
    build_tables,
    infer_table,
    is_ok,
    load_results,
    our_value,
    row_key,
    setting_of,
    unimodal_letter,
)
from .render import CELL_LEGEND, cell_text, fmt, row_label, to_csv, to_latex, to_markdown, to_rich
from .specs import TABLE_NAMES, TABLES, Column, TableSpec, norm

__all__ = [
    "CELL_LEGEND", "Cell", "Column", "Row", "TABLES", "TABLE_NAMES", "Table", "TableSpec", "build_table",
    "build_tables", "cell_text", "fmt", "infer_table", "is_ok", "load_results", "norm", "our_value", "row_key",
    "row_label", "setting_of", "to_csv", "to_latex", "to_markdown", "to_rich", "unimodal_letter",
]
