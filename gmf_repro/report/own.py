"""Runs on your own data (``data=features``, ``data=clips``): one table per dataset, a column per condition.

The paper's tables would put them beside VGGSound numbers and read their ``A`` block as the paper's
audio column even when ``A`` means another modality; here the columns are the conditions the runs
have (e.g. ``TIA, TI, …, A``), accuracy in %, with our complexity and no paper numbers.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .aggregate import Cell, Row, Table, is_ok, per_seed, setting_of
from .specs import _ACC_NOTE, _COMPLEXITY_COLUMNS, Column, TableSpec, norm

OWN_DATA = ("features", "clips")


def is_own_data(res: dict[str, Any]) -> bool:
    return norm(res.get("data") or "") in OWN_DATA


def own_tables(results: Sequence[dict[str, Any]]) -> list[Table]:
    """One table per ``data`` name, rows = fusers in run order (one per setting: seed repeats averaged, with
    their t-interval), columns = conditions in run order."""
    by_data: dict[str, list[dict[str, Any]]] = {}
    for res in results:
        by_data.setdefault(str(res.get("data")), []).append(res)
    return [_table(name, runs) for name, runs in by_data.items()]


def _table(data: str, runs: list[dict[str, Any]]) -> Table:
    conditions: list[str] = []
    for res in runs:
        conditions += [c for c in (res.get("metrics") or {}) if c not in conditions]
    columns = tuple(Column(c, conditions=(norm(c),), metrics=("acc",), scale=100.0) for c in conditions)
    spec = TableSpec(f"own_{data}", f"data={data}: accuracy % per condition (the letters name the modalities kept)",
                     (*columns, *_COMPLEXITY_COLUMNS), paper_rows={}, labels={},
                     main=conditions[0] if conditions else "", notes=(_ACC_NOTE, "The paper has no numbers here."))
    by_row: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for res in runs:
        by_row.setdefault((str(res.get("fuser") or "unknown"), setting_of(res)), []).append(res)
    settings: dict[str, int] = {}
    for fuser, _ in by_row:
        settings[fuser] = settings.get(fuser, 0) + 1
    rows = []
    for (fuser, setting), group in by_row.items():
        ok = [r for r in group if is_ok(r)]
        cells = {c.name: Cell(per_seed(ok, c), None, exact=c.complexity is not None) for c in spec.columns}
        key = fuser if settings[fuser] == 1 else f"{fuser}#{setting[:6]}"
        rows.append(Row(key, key, "ok" if ok else "failed", len(ok), cells, list(group),
                        n_failed=len(group) - len(ok), setting=setting))
    return Table(spec, rows)
