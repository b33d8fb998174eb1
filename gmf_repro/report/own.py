"""Our runs alone: runs on your own data (``data=features``, ``data=clips``) and runs that recorded no paper
table, one table per dataset, a column per condition the runs have.

The paper's tables would put them beside VGGSound numbers and read their ``A`` block as the paper's
audio column even when ``A`` means another modality; here the columns are the conditions the runs
have (e.g. ``TIA, TI, …, A``), accuracy in %, with each run's own complexity and no paper numbers.
The claims read the condition with every modality as the main column and the conditions with one
modality missing (``TI, TA, IA``) as the missing-modality columns.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import paper
from .aggregate import Table, assemble, data_of
from .specs import _ACC_NOTE, Column, TableSpec, norm

OWN_COMPLEXITY = (
    Column("CPU s", complexity="cpu_latency_s", decimals=5),
    Column("Params (M)", complexity="params", scale=1e-6, decimals=3),
    Column("FLOPs (G)", complexity="flops", scale=1e-9, decimals=3),
)
LABELS = {**paper.LABELS, "concat": "Concat"}


def own_tables(results: Sequence[dict[str, Any]]) -> list[Table]:
    """One table per ``data`` name, rows in run order (one per setting: seed repeats averaged, with their
    t-interval), columns = conditions in run order."""
    by_data: dict[str, list[dict[str, Any]]] = {}
    for res in results:
        by_data.setdefault(data_of(res), []).append(res)
    return [assemble(own_spec(name, runs), runs, data=name) for name, runs in by_data.items()]


def conditions_of(runs: Sequence[dict[str, Any]]) -> list[str]:
    """Every metrics block the runs have: conditions with more modalities first (``TIA, TI, …, A``), in the order
    found within one size, then other blocks (``A(uni)``)."""
    found: list[str] = []
    for res in runs:
        metrics = res.get("metrics")
        found += [c for c in (metrics if isinstance(metrics, dict) else {}) if c not in found]
    return sorted(found, key=lambda c: -len(set(c)) if c.isalpha() else 1)


def main_and_missing(conditions: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """The condition with every modality, and those with exactly one modality missing.

    A condition names the modalities kept, one letter each (``TIA``, ``TI``); other blocks (``A(uni)``) are
    not conditions. ``AV, A, V`` -> ``("AV", ("A", "V"))``; ``TIA, TI, TA, IA, T, I, A`` -> ``("TIA", ("TI",
    "TA", "IA"))``."""
    letters = [c for c in conditions if c.isalpha()]
    if not letters:
        return (conditions[0] if conditions else ""), ()
    every = set().union(*map(set, letters))
    main = next((c for c in letters if set(c) == every), max(letters, key=len))
    missing = tuple(c for c in letters if set(c) < set(main) and len(set(c)) == len(set(main)) - 1)
    return main, missing


def own_spec(data: str, runs: Sequence[dict[str, Any]]) -> TableSpec:
    conditions = conditions_of(runs)
    main, missing = main_and_missing(conditions)
    columns = tuple(Column(c, conditions=(norm(c),), metrics=("acc",), scale=100.0) for c in conditions)
    return TableSpec(
        f"own_{data}", f"Our runs on {data}: accuracy % per condition (the letters name the modalities kept)",
        (*columns, *OWN_COMPLEXITY), paper_rows={}, labels=LABELS, main=main, missing=missing or None,
        notes=(_ACC_NOTE, "Params, FLOPs and CPU s are each run's own fuser's; the paper has no numbers here."),
        vs_paper=False, plot=tuple(c for c in conditions if c.isalpha()))
